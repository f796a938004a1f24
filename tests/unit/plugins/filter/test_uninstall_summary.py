"""uninstall_summary: each part's removed, restored and left entries as lines, long lists capped."""

from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.nodeprep.cni.plugins.filter.uninstall_summary import uninstall_summary


def test_lines_per_part_with_reasons_and_capped_lists():
    links = ["/opt/cni/bin/p%02d" % index for index in range(12)]
    lines = uninstall_summary({
        "runtime": {"removed": [{"file": "/etc/containerd/conf.d/90-nodeprep-cni.toml"}],
                    "restored": [{"file": "/etc/containerd/config.toml", "key": "bin_dir"}], "left": []},
        "netns": {"removed": [], "restored": [], "left": [{"path": "/run/netns", "why": "still mounted"}]},
        "multus": {"removed": [], "restored": [], "left": []},
        "cni_plugins": {"removed": links, "restored": ["/opt/cni/bin/bridge"], "left": []},
    }, "n1")
    assert lines == [
        "n1: uninstall",
        "runtime: removed 1: /etc/containerd/conf.d/90-nodeprep-cni.toml",
        "runtime: restored 1: /etc/containerd/config.toml bin_dir",
        "netns: left /run/netns: still mounted",
        "multus: nothing of nodeprep's found",
        "cni_plugins: removed 12: %s and 4 more" % ", ".join(links[:8]),
        "cni_plugins: restored 1: /opt/cni/bin/bridge",
    ]


def test_check_mode_says_what_would_happen():
    lines = uninstall_summary({"netns": {"removed": ["/etc/systemd/system/run-netns.mount"], "left": []}}, "n1", check_mode=True)
    assert lines == ["n1: uninstall (check mode: nothing changed)", "netns: would remove 1: /etc/systemd/system/run-netns.mount"]


def test_not_a_dict_is_refused_by_name():
    with pytest.raises(AnsibleFilterError, match="uninstall_summary expects a dict"):
        uninstall_summary(["x"], "n1")
