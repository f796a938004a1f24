"""containerd_cni against real containerd binaries, on config trees under tmp_path.

Each case runs the action plugin through ansible-playbook on this machine (local connection) with
a config tree of its own under tmp_path and a real containerd as ``containerd_binary``: Debian's
1.6 (this machine's), 1.7 and 2.1 (from the test bed's node roots). Validation runs containerd's
own ``config dump`` of main file plus imports with the candidate in place, in a private mount
namespace over the tree. containerd 2.2, 2.3 and 2.4 are the test bed's builds from their release tags
(testbed_lib/runtimes.py; built on first use, cached by version); the tests check that containerd's view names our dirs, that a refused
candidate leaves every file as it was, and what the user sees.
"""
from __future__ import annotations

import functools
import hashlib
import os
import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest
import yaml

from ansible_collections.nodeprep.cni.plugins.plugin_utils import _containerd_config as config
from testbed_lib import ansible_runner, runtimes
from testbed_lib.tree import snapshot

TESTBED = Path("/var/cache/nodeprep-testbed")
CONTAINERD = {
    "1.6": shutil.which("containerd") or "/usr/bin/containerd",
    "1.7": str(TESTBED / "rootfs-containerd-trixie/usr/bin/containerd"),
    "2.1": str(TESTBED / "rootfs-containerd-sid/usr/bin/containerd"),
}
TASK = "Point containerd at the plugins"
REGISTRY_SECRET = "s3cr3t-registry-password"


class Tree:
    """A containerd config dir under tmp_path: main file and conf.d (``snapshot(tree.root, owners=True)``: every byte)."""

    def __init__(self, root: Path):
        self.root = root
        self.etc = root / "etc" / "containerd"
        self.etc.mkdir(parents=True)
        self.main = self.etc / "config.toml"
        self.conf_d = self.etc / "conf.d"


@pytest.fixture
def tree(tmp_path):
    return Tree(tmp_path / "node")


def containerd(version: str) -> str:
    """Debian's binary, or the test bed's build of the newest pinned release of that line."""
    if version not in CONTAINERD:
        release = [v for v in runtimes.CONTAINERD_VERSIONS if v.startswith(version + ".")][-1]
        CONTAINERD[version] = str(runtimes.ensure_built(runtimes.containerd(release)) / "containerd")
    return CONTAINERD[version]


def run(tmp_path, version, check=False, diff=False, **options):
    binary = containerd(version)
    assert os.access(binary, os.X_OK), "the test bed's containerd %s is missing: run tools/bootstrap" % version
    options.setdefault("containerd_binary", binary)
    options.setdefault("bin_dirs", ["/opt/cni/bin"])
    play = [{"name": "containerd config", "hosts": "local", "gather_facts": False,
             "tasks": [{"name": TASK, "nodeprep.cni.containerd_cni": options}]}]
    playbook = tmp_path / "play.yml"
    playbook.write_text(yaml.safe_dump(play))
    inventory = tmp_path / "inventory.yml"
    inventory.write_text(yaml.safe_dump({"all": {"hosts": {"local": {
        "ansible_connection": "local", "ansible_python_interpreter": "/usr/bin/python3"}}}}))
    result = ansible_runner.run_playbook(playbook, inventory, check=check, diff=diff, cwd=tmp_path)
    task = [t for t in result.tasks if t.task == TASK]
    assert task, result.describe()
    return result, task[-1].result


def dump_cni(version, main: Path) -> dict:
    out = subprocess.run([containerd(version), "--config", str(main), "config", "dump"], capture_output=True,
                         text=True, check=True).stdout
    plugins = tomllib.loads(out)["plugins"]
    return (plugins.get("io.containerd.cri.v1.runtime") or plugins["io.containerd.grpc.v1.cri"])["cni"]


def v3_main(tree, cni_lines, version=3):
    tree.main.write_text("version = %d\nimports = ['%s/*.toml']\n\n[plugins.'io.containerd.cri.v1.runtime'.cni]\n%s"
                         % (version, tree.conf_d, cni_lines))


def test_main_importing_conf_d_gets_a_drop_in_that_containerd_merges(tmp_path, tree):
    v3_main(tree, "  bin_dirs = ['/usr/lib/cni']\n  conf_dir = '/etc/cni/net.d'\n")
    main_before = tree.main.read_bytes()
    result, edit = run(tmp_path, "2.1", path=str(tree.main), bin_dirs=["/opt/cni/bin", "/opt/k3s/cni"])
    assert result.rc == 0 and edit["changed"] and edit["validated"], result.describe()
    drop_in = tree.conf_d / "90-nodeprep-cni.toml"
    assert edit["path"] == str(drop_in) and tree.main.read_bytes() == main_before
    assert tomllib.loads(drop_in.read_text())["plugins"]["io.containerd.cri.v1.runtime"]["cni"]["bin_dirs"] == [
        "/opt/cni/bin", "/opt/k3s/cni", "/usr/lib/cni"]
    cni = dump_cni("2.1", tree.main)
    assert cni["bin_dirs"] == ["/opt/cni/bin", "/opt/k3s/cni", "/usr/lib/cni"] and not cni["bin_dir"]
    again, edit = run(tmp_path, "2.1", path=str(tree.main), bin_dirs=["/opt/cni/bin", "/opt/k3s/cni"])
    assert again.rc == 0 and not edit["changed"] and edit["validated"], again.describe()
    # A later drop-in overrides what is already in place: every run says so, not only the first.
    (tree.conf_d / "95-addon.toml").write_text("version = 3\n[plugins.'io.containerd.cri.v1.runtime'.cni]\n"
                                               "  bin_dirs = ['/opt/addon/bin']\n")
    before = snapshot(tree.root, owners=True)
    overridden, edit = run(tmp_path, "2.1", path=str(tree.main), bin_dirs=["/opt/cni/bin", "/opt/k3s/cni"])
    assert overridden.rc != 0, overridden.describe()
    assert edit["msg"].startswith("containerd does not use the CNI settings in %s" % drop_in), edit["msg"]
    assert "%s sets cni.bin_dirs later in containerd's load order" % (tree.conf_d / "95-addon.toml") in edit["msg"]
    assert snapshot(tree.root, owners=True) == before


@pytest.mark.parametrize("version", ["2.1", "2.2", "2.3", "2.4"])
def test_main_holding_bin_dir_is_migrated_in_place_not_beside_a_drop_in(tmp_path, tree, version):
    v3_main(tree, "  bin_dir = '/usr/lib/cni'   # as 2.0 wrote it\n")
    result, edit = run(tmp_path, version, path=str(tree.main))
    assert result.rc == 0 and edit["path"] == str(tree.main), result.describe()
    assert not tree.conf_d.exists()
    assert "  bin_dirs = ['/opt/cni/bin', '/usr/lib/cni']   # as 2.0 wrote it\n" in tree.main.read_text()
    cni = dump_cni(version, tree.main)
    assert cni["bin_dirs"] == ["/opt/cni/bin", "/usr/lib/cni"] and not cni.get("bin_dir")


def test_drop_in_that_would_leave_both_keys_in_the_merge_is_refused(tmp_path, tree):
    # A user's later drop-in sets bin_dir: ours with bin_dirs would make containerd's CRI refuse to
    # start ("cannot be set at the same time"). Checking our drop-in alone cannot see that.
    v3_main(tree, "  conf_dir = '/etc/cni/net.d'\n")
    tree.conf_d.mkdir()
    (tree.conf_d / "99-user.toml").write_text("version = 3\n[plugins.'io.containerd.cri.v1.runtime'.cni]\n"
                                              "  bin_dir = '/usr/lib/cni'\n")
    before = snapshot(tree.root, owners=True)
    for check in (True, False):
        result, edit = run(tmp_path, "2.1", check=check, path=str(tree.main))
        assert result.rc != 0, result.describe()
        message = edit["msg"]
        assert str(tree.conf_d / "99-user.toml") in message and "bin_dir" in message, message
        assert "Nothing was written" in message
        assert snapshot(tree.root, owners=True) == before


@pytest.mark.parametrize("version", ["1.6", "1.7"])
def test_import_replacing_the_cri_table_on_containerd_1_is_refused(tmp_path, tree, version):
    # containerd 1.x replaces a whole plugin table with an imported one: our edit of the main file
    # would be silently overridden by the CRI defaults (a dir other than ours).
    tree.main.write_text('version = 2\nimports = ["%s/*.toml"]\n[plugins."io.containerd.grpc.v1.cri".cni]\n'
                         '  bin_dir = "/usr/lib/cni"\n' % tree.conf_d)
    tree.conf_d.mkdir()
    (tree.conf_d / "50-sandbox.toml").write_text('version = 2\n[plugins."io.containerd.grpc.v1.cri"]\n'
                                                 '  sandbox_image = "registry.k8s.io/pause:3.9"\n')
    before = snapshot(tree.root, owners=True)
    result, edit = run(tmp_path, version, path=str(tree.main), bin_dirs=["/opt/nodeprep/bin"])
    assert result.rc != 0, result.describe()
    message = edit["msg"]
    assert str(tree.conf_d / "50-sandbox.toml") in message and "whole CRI plugin table" in message, message
    assert snapshot(tree.root, owners=True) == before


@pytest.mark.parametrize("version", ["1.6", "1.7"])
def test_secret_config_keeps_mode_owner_and_its_diff_shows_no_secret(tmp_path, tree, version):
    text = ('version = 2\n[plugins."io.containerd.grpc.v1.cri".cni]\n  bin_dir = "/usr/lib/cni"\n'
            '  conf_dir = "/etc/cni/net.d"\n[plugins."io.containerd.grpc.v1.cri".registry.configs."registry.example".auth]\n'
            '  username = "robot"\n  password = "%s"\n' % REGISTRY_SECRET)
    tree.main.write_text(text)
    os.chmod(tree.main, 0o600)
    os.chown(tree.main, 1000, 1001)
    for check in (True, False):
        result, edit = run(tmp_path, version, check=check, diff=True, path=str(tree.main))
        assert result.rc == 0 and edit["changed"], result.describe()
        assert REGISTRY_SECRET not in result.stdout + result.stderr
        assert 'bin_dir = "/opt/cni/bin"' in edit["diff"]["after"] and "/usr/lib/cni" in edit["diff"]["before"]
    stat = tree.main.stat()
    assert (stat.st_mode & 0o7777, stat.st_uid, stat.st_gid) == (0o600, 1000, 1001)
    assert tree.main.read_text() == text.replace('"/usr/lib/cni"', '"/opt/cni/bin"')
    backup = Path(edit["backup_file"])
    stat = backup.stat()
    assert (stat.st_mode & 0o7777, stat.st_uid, stat.st_gid) == (0o600, 1000, 1001)
    assert backup.read_text() == text


def test_symlinked_config_gets_safe_advice_and_stays_a_link(tmp_path, tree):
    vendor = tree.root / "usr" / "share" / "containerd" / "config.toml"
    vendor.parent.mkdir(parents=True)
    vendor.write_text('version = 2\n[plugins."io.containerd.grpc.v1.cri".cni]\n  bin_dir = "/usr/lib/cni"\n')
    tree.main.symlink_to(vendor)
    before = snapshot(tree.root, owners=True)
    result, edit = run(tmp_path, "1.6", path=str(tree.main))
    assert result.rc != 0, result.describe()
    message = edit["msg"]
    assert "symbolic link to %s" % vendor in message and "copy of its target" in message, message
    assert "cp --remove-destination %s %s" % (vendor, tree.main) in message
    assert "move it away" not in message and snapshot(tree.root, owners=True) == before


def test_byte_order_mark_is_kept_where_containerd_reads_it(tmp_path, tree):
    text = '\ufeffversion = 2\n[plugins."io.containerd.grpc.v1.cri".cni]\n  bin_dir = "/usr/lib/cni"\n  conf_dir = "/c"\n'
    tree.main.write_text(text, encoding="utf-8")
    result, edit = run(tmp_path, "1.7", path=str(tree.main), conf_dir="/c")
    assert result.rc == 0 and edit["validated"], result.describe()
    assert tree.main.read_text(encoding="utf-8") == text.replace("/usr/lib/cni", "/opt/cni/bin")
    assert dump_cni("1.7", tree.main)["bin_dir"] == "/opt/cni/bin"


def test_wrong_typed_table_is_named_and_nothing_changes(tmp_path, tree):
    tree.main.write_text('version = 2\n[[plugins."io.containerd.grpc.v1.cri".cni]]\n  bin_dir = "/usr/lib/cni"\n')
    before = snapshot(tree.root, owners=True)
    result, edit = run(tmp_path, "1.6", path=str(tree.main))
    assert result.rc != 0
    assert edit["msg"].startswith("%s: 'plugins.\"io.containerd.grpc.v1.cri\".cni' is an array of tables" % tree.main)
    assert snapshot(tree.root, owners=True) == before


def config_default(version) -> str:
    return subprocess.run([containerd(version), "config", "default"], capture_output=True, text=True,
                          check=True).stdout


def test_containerd_23_default_file_gets_a_conf_d_drop_in(tmp_path, tree):
    default = config_default("2.3")
    assert default.startswith("version = 4\n") and "imports = ['/etc/containerd/conf.d/*.toml']" in default
    # The file 2.3 writes, importing this tree's conf.d instead of the machine's.
    tree.main.write_text(default.replace("/etc/containerd/conf.d", str(tree.conf_d)))
    main_before = tree.main.read_bytes()
    wanted = ["/opt/cni/bin", "/var/lib/rancher/k3s/data/cni"]
    checked, edit = run(tmp_path, "2.3", check=True, path=str(tree.main), bin_dirs=wanted)
    assert checked.rc == 0 and edit["changed"] and not tree.conf_d.exists(), checked.describe()
    result, edit = run(tmp_path, "2.3", path=str(tree.main), bin_dirs=wanted)
    assert result.rc == 0 and edit["validated"] and edit["dialect"] == 4, result.describe()
    drop_in = tree.conf_d / "90-nodeprep-cni.toml"
    assert edit["path"] == str(drop_in) and tree.main.read_bytes() == main_before
    assert tomllib.loads(drop_in.read_text()) == {"version": 4, "plugins": {"io.containerd.cri.v1.runtime": {
        "cni": {"bin_dirs": wanted, "conf_dir": "/etc/cni/net.d"}}}}
    cni = dump_cni("2.3", tree.main)
    assert cni["bin_dirs"] == wanted and not cni["bin_dir"] and cni["conf_dir"] == "/etc/cni/net.d"
    again, edit = run(tmp_path, "2.3", path=str(tree.main), bin_dirs=wanted)
    assert again.rc == 0 and not edit["changed"], again.describe()


def test_containerd_24_knows_no_bin_dir_and_a_v3_file_ends_with_bin_dirs_alone(tmp_path, tree):
    default_cni = tomllib.loads(config_default("2.4"))["plugins"]["io.containerd.cri.v1.runtime"]["cni"]
    assert "bin_dir" not in default_cni and default_cni["bin_dirs"] == ["/opt/cni/bin"]
    assert config.node_cni_defaults(config_default("2.4")) == ({"bin_dirs"}, ["/opt/cni/bin"])
    assert config.node_cni_defaults(config_default("2.3")) == ({"bin_dir", "bin_dirs"}, ["/opt/cni/bin"])
    tree.main.write_text("# ours\nversion = 3\n\n[plugins.'io.containerd.cri.v1.runtime'.cni]\n"
                         "  bin_dir = '/usr/lib/cni'  # as 2.0 took it\n  conf_dir = '/etc/cni/net.d'\n")
    # What containerd 2.4 makes of the file as it stands: bin_dir is ignored, the default searched.
    assert dump_cni("2.4", tree.main)["bin_dirs"] == ["/opt/cni/bin"]
    result, edit = run(tmp_path, "2.4", path=str(tree.main), bin_dirs=["/opt/nodeprep/bin"])
    assert result.rc == 0 and edit["validated"] and edit["bin_dir_key"] == "bin_dirs", result.describe()
    assert tree.main.read_text() == ("# ours\nversion = 3\n\n[plugins.'io.containerd.cri.v1.runtime'.cni]\n"
                                     "  bin_dirs = ['/opt/nodeprep/bin', '/usr/lib/cni']  # as 2.0 took it\n"
                                     "  conf_dir = '/etc/cni/net.d'\n")
    assert dump_cni("2.4", tree.main)["bin_dirs"] == ["/opt/nodeprep/bin", "/usr/lib/cni"]


def test_containerd_24_is_never_given_bin_dir_even_when_told_20(tmp_path, tree):
    # containerd_version is only a fallback: the node's own containerd says which key it reads.
    tree.main.write_text("version = 3\n[plugins.'io.containerd.cri.v1.runtime'.cni]\n  bin_dir = '/usr/lib/cni'\n")
    result, edit = run(tmp_path, "2.4", path=str(tree.main), containerd_version="2.0")
    assert result.rc == 0 and edit["version_source"] == "node", result.describe()
    cni = tomllib.loads(tree.main.read_text())["plugins"]["io.containerd.cri.v1.runtime"]["cni"]
    assert cni == {"bin_dirs": ["/opt/cni/bin", "/usr/lib/cni"], "conf_dir": "/etc/cni/net.d"}


def test_drop_in_the_main_file_does_not_import_is_refused(tmp_path, tree):
    tree.main.write_text("version = 3\n[plugins.'io.containerd.cri.v1.runtime'.cni]\n  bin_dirs = ['/usr/lib/cni']\n")
    before = snapshot(tree.root, owners=True)
    drop_in = tree.etc / "elsewhere.d" / "90-nodeprep-cni.toml"
    result, edit = run(tmp_path, "2.1", path=str(tree.main), drop_in=str(drop_in), bin_dirs=["/opt/nodeprep/bin"])
    assert result.rc != 0, result.describe()
    assert "%s is not among the files %s imports" % (drop_in, tree.main) in edit["msg"], edit["msg"]
    assert snapshot(tree.root, owners=True) == before


def test_drop_in_beside_a_main_bin_dir_is_refused_without_a_containerd_to_ask(tmp_path, tree):
    # An image bake: no containerd runs, so nothing validates; the merge would still hold both keys.
    v3_main(tree, "  bin_dir = '/usr/lib/cni'\n")
    before = snapshot(tree.root, owners=True)
    result, edit = run(tmp_path, "2.1", path=str(tree.main), containerd_binary=str(tmp_path / "absent"),
                       containerd_version="2.3", drop_in=str(tree.conf_d / "90-nodeprep-cni.toml"))
    assert result.rc != 0, result.describe()
    assert edit["msg"].startswith("%s sets cni.bin_dir" % tree.main) and "Leave drop_in unset" in edit["msg"]
    assert snapshot(tree.root, owners=True) == before
    result, edit = run(tmp_path, "2.1", path=str(tree.main), containerd_binary=str(tmp_path / "absent"),
                       containerd_version="2.3")
    assert result.rc == 0 and edit["path"] == str(tree.main) and edit["validation_skipped"], result.describe()
    assert tomllib.loads(tree.main.read_text())["plugins"]["io.containerd.cri.v1.runtime"]["cni"] == {
        "bin_dirs": ["/opt/cni/bin", "/usr/lib/cni"], "conf_dir": "/etc/cni/net.d"}


# --- state: absent, on each dialect as its own containerd reads it ----------------------------
NO_CRI_V2 = '# only the root dirs\nversion = 2\nroot = "/var/lib/containerd"\n\n[debug]\n  level = "info"\n'
USER_FILES = Path(__file__).resolve().parents[2] / "molecule/user-config/files"
UNDO_CASES = {
    # Debian's package file, version 2, read by containerd 1.6.
    "v2-package-on-1.6": ("1.6", (TESTBED / "rootfs-containerd-bookworm/etc/containerd/config.toml").read_text),
    # A version-2 file without any CRI table: everything we add is a new table.
    "v2-no-cri-on-1.7": ("1.7", lambda: NO_CRI_V2),
    # containerd config default of 2.2 (version 3) and 2.3 (version 4, importing conf.d: a drop-in).
    "v3-default-on-2.2": ("2.2", functools.partial(config_default, "2.2")),
    "v4-default-on-2.3": ("2.3", functools.partial(config_default, "2.3")),
    # A user's commented version-4 file, and a version-3 one whose bin_dir 2.4 migrates to bin_dirs.
    "v4-user-on-2.4": ("2.4", (USER_FILES / "config-v4.toml").read_text),
    "v3-user-bin_dir-on-2.4": ("2.4", (USER_FILES / "config-v3.toml").read_text),
}
OURS = ["/opt/nodeprep-undo/bin", "/usr/local/lib/nodeprep-undo"]


def without_backups(root: Path) -> dict:
    return {rel: entry for rel, entry in snapshot(root, owners=True).items() if not rel.endswith("~")}


def run_steps(tmp_path, trees, steps):
    """One ansible-playbook run for every case: each step a task looping over the trees (path and
    containerd binary per tree). Returns {step name: [result per tree]}."""
    cases = [{"path": str(tree.main), "binary": containerd(version)} for version, tree in trees]
    tasks = [{"name": name, "check_mode": check, "loop": cases, "loop_control": {"label": "{{ item.path }}"},
              "nodeprep.cni.containerd_cni": dict({"containerd_binary": "{{ item.binary }}"}, **options,
                                                  path="{{ item.path }}")}
             for name, check, options in steps]
    playbook, inventory = tmp_path / "steps.yml", tmp_path / "steps-inventory.yml"
    playbook.write_text(yaml.safe_dump([{"name": "containerd configs", "hosts": "local", "gather_facts": False,
                                         "tasks": tasks}]))
    inventory.write_text(yaml.safe_dump({"all": {"hosts": {"local": {
        "ansible_connection": "local", "ansible_python_interpreter": "/usr/bin/python3"}}}}))
    result = ansible_runner.run_playbook(playbook, inventory, diff=True, cwd=tmp_path)
    assert result.rc == 0, result.describe()
    return {name: result.result(name, "local")["results"] for name, _check, _options in steps}


def config_dump_text(version, main: Path) -> str:
    return subprocess.run([containerd(version), "--config", str(main), "config", "dump"], capture_output=True,
                          text=True, check=True).stdout


def test_absent_gives_back_the_users_file_byte_for_byte(tmp_path):
    """Every dialect on the containerd that reads it: configured twice (other dirs the second time),
    then check mode predicts the undo and writes nothing, the undo gives back every byte (mode and
    owner too) and leaves nothing of ours, containerd's dump no longer names our dirs, and a second
    undo changes nothing. Three ansible-playbook runs for all cases."""
    trees, originals = [], {}
    for case, (version, source) in sorted(UNDO_CASES.items()):
        tree = Tree(tmp_path / case)
        tree.main.write_text(source().replace("/etc/containerd/conf.d", str(tree.conf_d)))
        os.chmod(tree.main, 0o600)
        trees.append((version, tree))
        originals[case] = (without_backups(tree.root), hashlib.sha256(tree.main.read_bytes()).hexdigest())
    configured = run_steps(tmp_path, trees, [("present", False, {"bin_dirs": OURS}),
                                             ("again, other dirs", False, {"bin_dirs": OURS[::-1]})])
    for (version, tree), first, second in zip(trees, configured["present"], configured["again, other dirs"]):
        assert first["changed"] and first["validated"] and second["changed"], (first, second)
        assert OURS[1] in config_dump_text(version, tree.main)
    snapshots = [snapshot(tree.root, owners=True) for _version, tree in trees]

    predicted = run_steps(tmp_path, trees, [("predict", True, {"state": "absent"})])["predict"]
    assert [snapshot(tree.root, owners=True) for _version, tree in trees] == snapshots
    undone = run_steps(tmp_path, trees, [("absent", False, {"state": "absent"}),
                                         ("absent again", False, {"state": "absent"})])
    results = zip(sorted(UNDO_CASES), trees, predicted, undone["absent"], undone["absent again"])
    for case, (version, tree), plan, report, again in results:
        assert plan["changed"] and plan["left"] == [], (case, plan)
        assert any(OURS[1] in diff["before"] and OURS[1] not in diff["after"] for diff in plan["diff"]), (case, plan)
        assert report["changed"], (case, report)
        assert [report[kind] for kind in ("restored", "removed", "left")] == \
            [plan[kind] for kind in ("restored", "removed", "left")], (case, plan, report)
        tree_before, sha_before = originals[case]
        assert hashlib.sha256(tree.main.read_bytes()).hexdigest() == sha_before, (case, tree.main.read_text())
        # Mode and owner too, and nothing else of ours: no record, no drop-in, no conf.d we made.
        assert without_backups(tree.root) == tree_before, case
        assert "nodeprep-undo" not in config_dump_text(version, tree.main), case
        assert not again["changed"], (case, again)


def test_absent_keeps_a_key_someone_changed_since_and_says_so(tmp_path, tree):
    tree.main.write_text(NO_CRI_V2)
    result, _edit = run(tmp_path, "1.6", path=str(tree.main), bin_dirs=OURS)
    assert result.rc == 0, result.describe()
    tree.main.write_text(tree.main.read_text().replace('bin_dir = "%s"' % OURS[0], 'bin_dir = "/srv/cni"'))
    undone, report = run(tmp_path, "1.6", path=str(tree.main), state="absent")
    assert undone.rc == 0 and report["changed"], undone.describe()
    assert [(item["key"], item["value"]) for item in report["left"]] == [("bin_dir", "/srv/cni")], report
    assert "changed since" in report["left"][0]["reason"]
    assert report["removed"] == [{"file": str(tree.main), "key": "conf_dir"}]
    assert dump_cni("1.6", tree.main)["bin_dir"] == "/srv/cni"
    # The record of the key left stays, for a later look.
    assert "bin_dir" in (tree.etc / "nodeprep-cni-state.json").read_text()


def test_absent_removes_an_earlier_releases_drop_in_and_reports_a_main_file_without_record(tmp_path, tree):
    v3_main(tree, "  conf_dir = '/etc/cni/net.d'\n")
    tree.conf_d.mkdir()
    (tree.conf_d / "90-nodeprep-cni.toml").write_text(
        "version = 3\n[plugins.'io.containerd.cri.v1.runtime'.cni]\n  bin_dirs = ['%s']\n" % OURS[0])
    undone, report = run(tmp_path, "2.1", path=str(tree.main), state="absent")
    assert undone.rc == 0 and report["changed"], undone.describe()
    assert report["removed"] == [{"file": str(tree.conf_d / "90-nodeprep-cni.toml")}]
    assert not (tree.conf_d / "90-nodeprep-cni.toml").exists()
    # A main file naming our dir with no record of its values before is kept and reported.
    tree.main.write_text("version = 2\n[plugins.'io.containerd.grpc.v1.cri'.cni]\n  bin_dir = '%s'\n" % OURS[0])
    kept, report = run(tmp_path, "1.6", path=str(tree.main), state="absent", bin_dirs=OURS)
    assert kept.rc == 0 and not report["changed"], kept.describe()
    assert "no record" in report["left"][0]["reason"], report


def test_absent_takes_back_the_k3s_drop_in_and_its_dir(tmp_path):
    """k3s's generated config (both versions) is never edited: its drop-in and the drop-in dir we
    made go, and the generated file and its directory are as k3s left them."""
    k3s_files = Path(__file__).resolve().parents[2] / "molecule/k3s/files"
    trees = []
    for name in ("config-v2.toml", "config-v3.toml"):
        tree = Tree(tmp_path / name)
        tree.main.write_text((k3s_files / name).read_text())
        trees.append(("1.6", tree))
    before = [snapshot(tree.root, owners=True) for _version, tree in trees]
    by_dialect = {"2": "{{ item.path | dirname }}/config.toml.d/90-nodeprep-cni.toml",
                  "3": "{{ item.path | dirname }}/config-v3.toml.d/90-nodeprep-cni.toml"}
    # k3s embeds its containerd: nothing on the node can check the drop-in, as in a bake.
    options = {"bin_dirs": ["/var/lib/rancher/k3s/data/cni"], "drop_in_by_dialect": by_dialect, "validate": False,
               "containerd_binary": "/nonexistent/containerd"}
    steps = run_steps(tmp_path, trees, [("present", False, options), ("absent", False, dict(options, state="absent"))])
    for (_version, tree), tree_before, applied, undone in zip(trees, before, steps["present"], steps["absent"]):
        assert applied["changed"] and applied["path"] != str(tree.main), applied
        assert undone["changed"] and {"file": applied["path"]} in undone["removed"], undone
        assert snapshot(tree.root, owners=True) == tree_before
