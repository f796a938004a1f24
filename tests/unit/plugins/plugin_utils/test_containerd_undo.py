"""Taking back containerd CNI edits: every file the editor changes comes back byte for byte.

Each case edits a real-shaped config with ``_containerd_config.edit`` (as the action plugin does),
records the change with ``record_edit``, then ``restore``s it: the text must equal the original,
for every dialect and shape (Debian's package file, ``config default`` of 2.2 and 2.3, a user's
file with comments and literal strings, a file without any CRI table, a bin_dir migrated to
bin_dirs, a new file, repeated edits with other dirs).
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from ansible_collections.nodeprep.cni.plugins.plugin_utils import _containerd_config as config
from ansible_collections.nodeprep.cni.plugins.plugin_utils import _containerd_undo as undo
# Debian's package file and a hand-written version-3 file with one bin_dir, as the editor's own tests use them.
from tests.unit.plugins.plugin_utils.test_containerd_config import DEBIAN_V2, USER_V3 as V3_BIN_DIR

USER_FILES = Path(__file__).resolve().parents[3] / "../molecule/user-config/files"
NO_CRI_V2 = '''# only the root dirs
version = 2
root = "/var/lib/containerd"
state = "/run/containerd"

[debug]
  level = "info"
'''
NO_CNI_V3 = '''version = 3

[plugins.'io.containerd.cri.v1.runtime']
  enable_selinux = false

[plugins.'io.containerd.cri.v1.images']
  snapshotter = 'overlayfs'
'''
CASES = {
    "debian-v2-on-1.6": (DEBIAN_V2, (1, 6, 20), None),
    "no-cri-v2-on-1.7": (NO_CRI_V2, (1, 7, 24), None),
    "no-cni-table-v3-on-2.2": (NO_CNI_V3, (2, 2, 9), None),
    "v3-bin_dir-migrated-on-2.4": (V3_BIN_DIR, (2, 4, 2), None),
    "user-v2": ("config-v2.toml", (1, 7, 24), None),
    "user-v3": ("config-v3.toml", (2, 2, 9), None),
    "user-v4": ("config-v4.toml", (2, 3, 7), None),
    "bom-v2": ("\ufeff" + DEBIAN_V2, (1, 6, 20), None),
}
PATH = "/etc/containerd/config.toml"


def text_of(source):
    if source.endswith(".toml"):
        return (USER_FILES / source).resolve().read_text()
    return source


def edit_and_record(text, version, dirs, entry=None):
    new_text, _facts = config.edit(text, PATH, dirs, "/etc/cni/net.d", version)
    return new_text, undo.record_edit(entry or {}, text, new_text, PATH)


@pytest.mark.parametrize("case", sorted(CASES))
def test_edit_then_restore_is_byte_identical(case):
    source, version, _unused = CASES[case]
    original = text_of(source)
    edited, entry = edit_and_record(original, version, ["/opt/cni/bin", "/usr/local/lib/cni"])
    assert edited != original
    # The record survives the trip through the node's JSON file.
    entry = json.loads(undo.dump_state({"files": {PATH: entry}}))["files"][PATH]
    restored, report, remaining = undo.restore(edited, PATH, entry)
    assert restored == original, report
    assert remaining is None and report["left"] == [], report
    assert report["restored"] or report["removed"]


def test_repeated_edits_keep_the_first_original():
    edited, entry = edit_and_record(DEBIAN_V2, (1, 6, 20), ["/opt/cni/bin"])
    again, entry = edit_and_record(edited, (1, 6, 20), ["/opt/nodeprep/bin"], entry)
    assert entry["keys"]["bin_dir"] == {"original": '"/usr/lib/cni"', "written": "/opt/nodeprep/bin"}
    restored, report, _remaining = undo.restore(again, PATH, entry)
    assert restored == DEBIAN_V2
    assert report["restored"] == [{"file": PATH, "key": "bin_dir", "value": "/usr/lib/cni"}]


def test_repeated_edits_of_a_file_without_cri_tables():
    edited, entry = edit_and_record(NO_CRI_V2, (1, 7, 24), ["/opt/cni/bin"])
    again, entry = edit_and_record(edited, (1, 7, 24), ["/opt/nodeprep/bin"], entry)
    assert entry["keys"]["bin_dir"] == {"original": None, "written": "/opt/nodeprep/bin"}
    restored, report, _remaining = undo.restore(again, PATH, entry)
    assert restored == NO_CRI_V2
    assert {"file": PATH, "table": 'plugins."io.containerd.grpc.v1.cri".cni'} in report["removed"]


def test_a_value_changed_since_is_left_and_reported():
    edited, entry = edit_and_record(NO_CRI_V2, (1, 7, 24), ["/opt/cni/bin"])
    by_user = edited.replace('bin_dir = "/opt/cni/bin"', 'bin_dir = "/srv/cni"')
    restored, report, remaining = undo.restore(by_user, PATH, entry)
    # conf_dir, ours, is removed; bin_dir, the user's now, stays with its table.
    assert 'bin_dir = "/srv/cni"' in restored and "conf_dir" not in restored
    assert [(item["key"], item["value"]) for item in report["left"]] == [("bin_dir", "/srv/cni")]
    assert "changed since" in report["left"][0]["reason"] and '"/opt/cni/bin"' in report["left"][0]["reason"]
    assert list(remaining["keys"]) == ["bin_dir"]


def test_a_user_change_between_runs_becomes_the_value_to_restore():
    edited, entry = edit_and_record(DEBIAN_V2, (1, 6, 20), ["/opt/cni/bin"])
    by_user = edited.replace('"/opt/cni/bin"', '"/srv/cni"')
    again, entry = edit_and_record(by_user, (1, 6, 20), ["/opt/cni/bin"], entry)
    restored, _report, _remaining = undo.restore(again, PATH, entry)
    assert restored == DEBIAN_V2.replace('"/usr/lib/cni"', '"/srv/cni"')


def test_a_new_file_and_a_new_drop_in_are_removed_whole():
    created, entry = edit_and_record(None, (2, 3, 7), ["/opt/cni/bin"])
    assert entry["created"] is True
    restored, report, remaining = undo.restore(created, PATH, entry)
    assert restored is None and remaining is None and {"file": PATH} in report["removed"]
    seed = config.drop_in_seed(NO_CNI_V3, PATH)
    drop_in, _facts = config.edit(seed, "/etc/containerd/conf.d/90-nodeprep-cni.toml", ["/opt/cni/bin"],
                                  "/etc/cni/net.d", (2, 2, 9))
    entry = undo.record_edit({}, None, drop_in, "/etc/containerd/conf.d/90-nodeprep-cni.toml")
    assert undo.restore(drop_in, "/etc/containerd/conf.d/90-nodeprep-cni.toml", entry)[0] is None


def test_a_created_file_that_someone_extended_is_kept():
    created, entry = edit_and_record(None, (1, 7, 24), ["/opt/cni/bin"])
    extended = created + '\n[debug]\n  level = "debug"\n'
    restored, report, _remaining = undo.restore(extended, PATH, entry)
    assert restored == 'version = 2\n\n[debug]\n  level = "debug"\n'
    assert report["left"] and "kept" in report["left"][0]["reason"]


def test_an_unrelated_change_elsewhere_is_kept():
    edited, entry = edit_and_record(DEBIAN_V2, (1, 6, 20), ["/opt/cni/bin"])
    extended = edited.replace('path = "/var/lib/containerd/opt"', 'path = "/srv/opt"')
    restored, _report, _remaining = undo.restore(extended, PATH, entry)
    assert restored == DEBIAN_V2.replace('path = "/var/lib/containerd/opt"', 'path = "/srv/opt"')


def test_a_state_file_that_is_not_ours_is_refused():
    with pytest.raises(config.ContainerdConfigError, match="not the JSON this collection writes"):
        undo.load_state("{", "/etc/containerd/" + undo.STATE_NAME)
    assert undo.load_state(None, "x")["files"] == {}
