"""containerd's CNI keys: dialect rules, byte-for-byte edits, and the refusals.

Candidates are checked by the real containerd 1.6 that tools/bootstrap installs on this machine
(``containerd --config FILE config dump`` only reads FILE): what we write, containerd accepts.
"""
from __future__ import annotations

import shutil
import subprocess
import tomllib

import pytest

from ansible_collections.nodeprep.cni.plugins.plugin_utils import _containerd_config as config

DEBIAN_V2 = '''version = 2

[plugins]
  [plugins."io.containerd.grpc.v1.cri"]
    [plugins."io.containerd.grpc.v1.cri".cni]
      bin_dir = "/usr/lib/cni"
      conf_dir = "/etc/cni/net.d"
  [plugins."io.containerd.internal.v1.opt"]
    path = "/var/lib/containerd/opt"
'''
USER_V3 = '''# hand-written
version = 3

[plugins.'io.containerd.cri.v1.runtime'.cni]
  bin_dir = '/usr/lib/cni'   # one dir, as 2.0 took it
  conf_dir = '/etc/cni/net.d'

[debug]
  level = 'info'
'''


def dump(tmp_path, text):
    """containerd 1.6's own view of a v2 candidate."""
    path = tmp_path / "candidate.toml"
    path.write_text(text)
    result = subprocess.run([shutil.which("containerd"), "--config", str(path), "config", "dump"],
                            capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    return tomllib.loads(result.stdout)


def test_v2_file_changes_only_the_cni_values(tmp_path):
    text, facts = config.edit(DEBIAN_V2, "/etc/containerd/config.toml", ["/opt/cni/bin", "/var/lib/rancher/k3s/data/cni"],
                              "/etc/cni/net.d", (2, 1, 9))
    assert text == DEBIAN_V2.replace('"/usr/lib/cni"', '"/opt/cni/bin"')
    assert facts["dialect"] == 2 and facts["bin_dir_key"] == "bin_dir" and facts["bin_dirs"] == ["/opt/cni/bin"]
    assert dump(tmp_path, text)["plugins"]["io.containerd.grpc.v1.cri"]["cni"]["bin_dir"] == "/opt/cni/bin"


def test_second_edit_is_a_no_op():
    once, _facts = config.edit(DEBIAN_V2, "f", ["/opt/cni/bin"], "/etc/cni/net.d", (1, 6, 20))
    again, _facts = config.edit(once, "f", ["/opt/cni/bin"], "/etc/cni/net.d", (1, 6, 20))
    assert again == once


def test_v3_on_21_moves_bin_dir_into_bin_dirs_in_place():
    text, facts = config.edit(USER_V3, "f", ["/opt/cni/bin"], "/etc/cni/net.d", (2, 1, 9))
    assert text == USER_V3.replace("bin_dir = '/usr/lib/cni'", "bin_dirs = ['/opt/cni/bin', '/usr/lib/cni']")
    cni = tomllib.loads(text)["plugins"]["io.containerd.cri.v1.runtime"]["cni"]
    assert "bin_dir" not in cni and cni["bin_dirs"] == ["/opt/cni/bin", "/usr/lib/cni"]
    assert facts["bin_dir_key"] == "bin_dirs"


def test_v3_on_20_keeps_bin_dir():
    text, facts = config.edit(USER_V3, "f", ["/opt/cni/bin"], "/etc/cni/net.d", (2, 0, 4))
    assert text == USER_V3.replace("bin_dir = '/usr/lib/cni'", "bin_dir = '/opt/cni/bin'")
    assert facts["bin_dir_key"] == "bin_dir"


def test_v3_without_known_version_follows_the_file():
    with_bin_dirs = USER_V3.replace("bin_dir = '/usr/lib/cni'", "bin_dirs = ['/usr/lib/cni']")
    assert config.edit(with_bin_dirs, "f", ["/opt/cni/bin"], None, None)[1]["bin_dir_key"] == "bin_dirs"
    assert config.edit(USER_V3, "f", ["/opt/cni/bin"], None, None)[1]["bin_dir_key"] == "bin_dir"


@pytest.mark.parametrize("version, dialect, table", [
    ((1, 7, 24), 2, "io.containerd.grpc.v1.cri"),
    ((2, 1, 9), 3, "io.containerd.cri.v1.runtime"),
])
def test_new_file_for_the_detected_version(tmp_path, version, dialect, table):
    text, facts = config.edit(None, "f", ["/opt/cni/bin", "/usr/libexec/cni"], "/etc/cni/net.d", version)
    parsed = tomllib.loads(text)
    assert parsed["version"] == dialect and facts["created"]
    cni = parsed["plugins"][table]["cni"]
    assert cni["conf_dir"] == "/etc/cni/net.d"
    if dialect == 2:
        assert cni["bin_dir"] == "/opt/cni/bin"
        assert dump(tmp_path, text)["plugins"][table]["cni"]["bin_dir"] == "/opt/cni/bin"
    else:
        assert cni["bin_dirs"] == ["/opt/cni/bin", "/usr/libexec/cni"]


def test_missing_table_is_added_and_the_rest_kept(tmp_path):
    original = 'version = 2\n# only metrics here\n[metrics]\n  address = "127.0.0.1:1338"\n'
    text, _facts = config.edit(original, "f", ["/opt/cni/bin"], "/etc/cni/net.d", (1, 6, 20))
    assert text.startswith(original)
    assert dump(tmp_path, text)["plugins"]["io.containerd.grpc.v1.cri"]["cni"]["bin_dir"] == "/opt/cni/bin"


def test_new_file_without_any_version_asks_for_containerd_version():
    with pytest.raises(config.ContainerdConfigError, match="set containerd_version"):
        config.edit(None, "/etc/containerd/config.toml", ["/opt/cni/bin"], None, None)


def test_malformed_toml_names_file_and_line():
    broken = 'version = 2\n[plugins."io.containerd.grpc.v1.cri".cni\n  bin_dir = "/usr/lib/cni"\n'
    with pytest.raises(config.ContainerdConfigError) as error:
        config.edit(broken, "/etc/containerd/config.toml", ["/opt/cni/bin"], None, (1, 6, 20))
    message = str(error.value)
    assert "/etc/containerd/config.toml is not valid TOML" in message and "line 2" in message
    assert "nothing was changed" in message


@pytest.mark.parametrize("text, hint", [
    ('root = "/var/lib/containerd"\n', "no top-level 'version'"),
    ("version = 5\n", "version = 5"),
    ('version = "2"\n', 'version = "2"'),
])
def test_unknown_version_is_refused(text, hint):
    with pytest.raises(config.ContainerdConfigError) as error:
        config.edit(text, "/etc/containerd/config.toml", ["/opt/cni/bin"], None, (2, 3, 4))
    message = str(error.value)
    assert hint in message and "nothing was changed" in message
    # The advice names every version containerd reads, 4 (2.3 and later) included.
    assert "version = 2" in message or "'version = 2'" in message
    assert "4" in message and "2.3" in message


def test_drop_in_seed_copies_the_main_cni_dir_keys():
    seed = config.drop_in_seed(DEFAULT_V4, "config.toml")
    assert tomllib.loads(seed) == {"version": 4, "plugins": {"io.containerd.cri.v1.runtime": {"cni": {
        "bin_dir": "", "bin_dirs": ["/opt/cni/bin"], "conf_dir": "/etc/cni/net.d"}}}}
    text, _facts = config.edit(seed, "drop-in", ["/opt/nodeprep/bin"], "/etc/cni/net.d", (2, 3, 7))
    assert tomllib.loads(text)["plugins"]["io.containerd.cri.v1.runtime"]["cni"] == {
        "bin_dirs": ["/opt/nodeprep/bin", "/opt/cni/bin"], "conf_dir": "/etc/cni/net.d"}


def test_drop_in_seed_copies_the_main_cni_table():
    k3s = 'version = 3\n[plugins."io.containerd.cri.v1.runtime".cni]\n  bin_dir = "/var/lib/rancher/k3s/data/cni"\n'
    seed = config.drop_in_seed(k3s, "config.toml")
    text, facts = config.edit(seed, "drop-in", ["/var/lib/rancher/k3s/data/cni"], "/k3s/net.d", None)
    assert facts["bin_dir_key"] == "bin_dir"
    parsed = tomllib.loads(text)["plugins"]["io.containerd.cri.v1.runtime"]["cni"]
    assert parsed == {"bin_dir": "/var/lib/rancher/k3s/data/cni", "conf_dir": "/k3s/net.d"}


def test_imports_drop_in_dir():
    assert config.imports_drop_in_dir('version = 3\nimports = ["/etc/containerd/conf.d/*.toml"]\n') == "/etc/containerd/conf.d"
    assert config.imports_drop_in_dir("version = 3\n") is None


def test_version_3_file_on_containerd_1_is_refused():
    with pytest.raises(config.ContainerdConfigError, match="never converts a config between versions"):
        config.edit(USER_V3, "f", ["/opt/cni/bin"], None, (1, 7, 24))


# --- containerd 2.3+ (config version 4), the keys a containerd knows, files never left invalid -----

SID_CONTAINERD = "/var/cache/nodeprep-testbed/rootfs-containerd-sid/usr/bin/containerd"  # Debian's 2.1.9
# The shape of what 2.3's `containerd config default` writes (abridged): version 4, imports conf.d.
DEFAULT_V4 = """version = 4
root = '/var/lib/containerd'
state = '/run/containerd'
imports = ['/etc/containerd/conf.d/*.toml']

[plugins]
  [plugins.'io.containerd.cri.v1.runtime']
    enable_selinux = false

    [plugins.'io.containerd.cri.v1.runtime'.cni]
      bin_dir = ''
      bin_dirs = ['/opt/cni/bin']
      conf_dir = '/etc/cni/net.d'
      max_conf_num = 1
"""


def real_dump(binary, path):
    result = subprocess.run([binary, "--config", str(path), "config", "dump"], capture_output=True, text=True,
                            check=False)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_v4_file_is_edited_like_v3_in_place():
    text, facts = config.edit(DEFAULT_V4, "f", ["/opt/nodeprep/bin", "/opt/cni/bin"], "/etc/cni/net.d", (2, 3, 4))
    # 2.3 writes an unset bin_dir as ''; it is no directory to keep, and never left beside bin_dirs.
    assert text == DEFAULT_V4.replace("      bin_dir = ''\n", "").replace(
        "bin_dirs = ['/opt/cni/bin']", "bin_dirs = ['/opt/nodeprep/bin', '/opt/cni/bin']")
    assert not config.sets_bin_dir(DEFAULT_V4, "f") and config.sets_bin_dir(USER_V3, "f")
    assert facts["dialect"] == 4 and facts["bin_dir_key"] == "bin_dirs"
    assert facts["table"] == 'plugins."io.containerd.cri.v1.runtime".cni'


def test_v4_file_without_any_version_takes_bin_dirs():
    v4 = "version = 4\n[plugins.'io.containerd.cri.v1.runtime'.cni]\n  bin_dir = '/usr/lib/cni'\n"
    text, facts = config.edit(v4, "f", ["/opt/cni/bin"], None, None)
    assert facts["bin_dir_key"] == "bin_dirs"
    assert tomllib.loads(text)["plugins"]["io.containerd.cri.v1.runtime"]["cni"] == {
        "bin_dirs": ["/opt/cni/bin", "/usr/lib/cni"]}


@pytest.mark.parametrize("version, dialect", [((1, 7, 24), 2), ((2, 2, 9), 3), ((2, 3, 4), 4), ((2, 4, 2), 4)])
def test_new_file_speaks_the_newest_version_its_containerd_reads(version, dialect):
    text, facts = config.edit(None, "f", ["/opt/cni/bin"], "/etc/cni/net.d", version)
    assert tomllib.loads(text)["version"] == dialect == facts["dialect"]


def test_v4_file_on_containerd_22_is_refused_not_converted():
    with pytest.raises(config.ContainerdConfigError, match="version 4 config, which containerd 2.2.9 does not read"):
        config.edit(DEFAULT_V4, "f", ["/opt/cni/bin"], None, (2, 2, 9))


def test_the_key_is_what_the_nodes_containerd_knows_not_its_version():
    # A containerd whose `config default` no longer lists bin_dir (2.4) gets bin_dirs even where
    # the version table would say bin_dir, and the other way round.
    text, facts = config.edit(USER_V3, "f", ["/opt/cni/bin"], None, (2, 0, 4), frozenset({"bin_dirs"}))
    assert facts["bin_dir_key"] == "bin_dirs" and "bin_dir =" not in text
    _text, facts = config.edit(USER_V3, "f", ["/opt/cni/bin"], None, (2, 1, 9), frozenset({"bin_dir"}))
    assert facts["bin_dir_key"] == "bin_dir"


def test_node_cni_defaults_from_a_real_config_default():
    default = subprocess.run([SID_CONTAINERD, "config", "default"], capture_output=True, text=True, check=True).stdout
    keys, dirs = config.node_cni_defaults(default)
    assert keys == {"bin_dir", "bin_dirs"} and dirs == ["/usr/lib/cni", "/opt/cni/bin"]  # Debian's patched default
    old = subprocess.run([shutil.which("containerd"), "config", "default"], capture_output=True, text=True,
                         check=True).stdout
    assert config.node_cni_defaults(old)[0] == {"bin_dir"}  # 1.6
    assert config.node_cni_defaults("not toml [") == (None, None)


BOTH_KEYS = """version = 3
[plugins."io.containerd.cri.v1.runtime".cni]
  bin_dir = "/usr/lib/cni"
  bin_dirs = ["/usr/libexec/cni"]
  conf_dir = "/etc/cni/net.d"
"""


@pytest.mark.parametrize("version, known", [((2, 1, 9), None), (None, None), ((2, 4, 2), frozenset({"bin_dirs"}))])
def test_a_file_with_both_keys_ends_with_bin_dirs_alone(tmp_path, version, known):
    # Without a containerd to validate (a bake, containerd_version given), this used to write two
    # bin_dirs keys, a file no TOML reader accepts.
    text, facts = config.edit(BOTH_KEYS, "f", ["/opt/cni/bin"], "/etc/cni/net.d", version, known)
    cni = tomllib.loads(text)["plugins"]["io.containerd.cri.v1.runtime"]["cni"]
    assert cni == {"bin_dirs": ["/opt/cni/bin", "/usr/libexec/cni", "/usr/lib/cni"], "conf_dir": "/etc/cni/net.d"}
    assert facts["bin_dirs"] == cni["bin_dirs"]
    path = tmp_path / "config.toml"
    path.write_text(text)
    dumped = tomllib.loads(real_dump(SID_CONTAINERD, path))["plugins"]["io.containerd.cri.v1.runtime"]["cni"]
    assert dumped["bin_dirs"] == cni["bin_dirs"] and not dumped["bin_dir"]


def test_a_v3_file_with_both_keys_on_containerd_20_keeps_bin_dir_alone():
    text, facts = config.edit(BOTH_KEYS, "f", ["/opt/cni/bin"], None, (2, 0, 4))
    cni = tomllib.loads(text)["plugins"]["io.containerd.cri.v1.runtime"]["cni"]
    assert facts["bin_dir_key"] == "bin_dir" and cni == {"bin_dir": "/opt/cni/bin", "conf_dir": "/etc/cni/net.d"}


def test_what_does_not_parse_back_is_never_returned(monkeypatch):
    monkeypatch.setattr(config.tomlkit, "dumps", lambda document: 'version = 3\nversion = 3\n')
    with pytest.raises(config.ContainerdConfigError, match="does not parse back.*not written"):
        config.edit(USER_V3, "f", ["/opt/cni/bin"], None, (2, 1, 9))


# --- errors in the user's terms ---------------------------------------------------------------

@pytest.mark.parametrize("text, key, fix", [
    ('version = 2\nplugins = "x"\n', "'plugins' is a string", "make it a table, [plugins]"),
    ('version = 2\n[[plugins]]\n  a = 1\n', "'plugins' is an array of tables", "single brackets"),
    ('version = 2\n[[plugins."io.containerd.grpc.v1.cri".cni]]\n  bin_dir = "/x"\n',
     "'plugins.\"io.containerd.grpc.v1.cri\".cni' is an array of tables", "[plugins.\"io.containerd.grpc.v1.cri\".cni]"),
    ("version = 3\n[plugins.'io.containerd.cri.v1.runtime']\n  cni = 5\n",
     "'plugins.\"io.containerd.cri.v1.runtime\".cni' is a number", "make it a table"),
    ("version = 3\n[plugins.'io.containerd.cri.v1.runtime'.cni]\n  bin_dirs = '/x'\n",
     "'plugins.\"io.containerd.cri.v1.runtime\".cni.bin_dirs' is a string", "bin_dirs = ['/opt/cni/bin']"),
    ('version = 2\n[plugins."io.containerd.grpc.v1.cri".cni]\n  bin_dir = ["/x"]\n',
     "cni.bin_dir' is an array", "bin_dir = '/opt/cni/bin'"),
])
def test_wrong_typed_tables_name_file_key_and_fix(text, key, fix):
    with pytest.raises(config.ContainerdConfigError) as error:
        config.edit(text, "/etc/containerd/config.toml", ["/opt/cni/bin"], "/etc/cni/net.d", (2, 1, 9))
    message = str(error.value)
    assert message.startswith("/etc/containerd/config.toml: ") and key in message and fix in message, message
    assert "nothing was changed" in message


def test_parse_error_advice_never_suggests_losing_the_file():
    with pytest.raises(config.ContainerdConfigError) as error:
        config.edit('version = 2\n[plugins\n', "/etc/containerd/config.toml", ["/opt/cni/bin"], None, (1, 6, 20))
    message = str(error.value)
    assert "move the file away" not in message and "minimal config" not in message
    assert "Do not delete or move the file" in message


def test_byte_order_mark_is_read_and_kept(tmp_path):
    # containerd 1.x reads a file that starts with a UTF-8 byte order mark.
    text, facts = config.edit(config.BOM + DEBIAN_V2, "f", ["/opt/cni/bin"], "/etc/cni/net.d", (1, 6, 20))
    assert text == config.BOM + DEBIAN_V2.replace('"/usr/lib/cni"', '"/opt/cni/bin"')
    assert facts["dialect"] == 2
    path = tmp_path / "bom.toml"
    path.write_bytes(text.encode("utf-8"))
    assert dump(tmp_path, text)["plugins"]["io.containerd.grpc.v1.cri"]["cni"]["bin_dir"] == "/opt/cni/bin"


# --- the user's quote style is the product's decision, whatever tomlkit's version ---------------

@pytest.mark.parametrize("quote", ["'", '"'])
def test_replaced_strings_keep_their_quotes(quote):
    original = ("version = 2\n[plugins.\"io.containerd.grpc.v1.cri\".cni]\n  bin_dir = {q}/usr/lib/cni{q}\n"
                "  conf_dir = {q}/etc/cni/other{q}  # ours\n").format(q=quote)
    text, _facts = config.edit(original, "f", ["/opt/cni/bin"], "/etc/cni/net.d", (1, 7, 24))
    assert text == original.replace("/usr/lib/cni", "/opt/cni/bin").replace("/etc/cni/other", "/etc/cni/net.d")


@pytest.mark.parametrize("quote", ["'", '"'])
def test_migrated_and_added_keys_follow_the_files_quotes(quote):
    original = "version = 3\n[plugins.'io.containerd.cri.v1.runtime'.cni]\n  bin_dir = {q}/usr/lib/cni{q}\n".format(
        q=quote)
    text, _facts = config.edit(original, "f", ["/opt/cni/bin"], "/etc/cni/net.d", (2, 1, 9))
    assert text.endswith("  bin_dirs = [{q}/opt/cni/bin{q}, {q}/usr/lib/cni{q}]\nconf_dir = {q}/etc/cni/net.d{q}\n".format(
        q=quote))


# --- the diff shows the CNI keys, never the rest of the file -------------------------------------

def test_cni_keys_text_leaves_out_credentials():
    secret = DEBIAN_V2 + ('[plugins."io.containerd.grpc.v1.cri".registry.configs."r.example".auth]\n'
                          '  password = "hunter2"\n')
    shown = config.cni_keys_text(secret, "f")
    assert shown == 'version = 2\n[plugins."io.containerd.grpc.v1.cri".cni]\nbin_dir = "/usr/lib/cni"\n' \
                    'conf_dir = "/etc/cni/net.d"\n'
    assert config.cni_keys_text(None, "f") == ""


# --- containerd's own view after the merge -----------------------------------------------------

def test_effective_cni_follows_containerds_rules():
    def dump_of(cni):
        return "version = 3\n[plugins.'io.containerd.cri.v1.runtime'.cni]\n" + cni
    assert config.effective_cni(dump_of("bin_dir = ''\nbin_dirs = ['/a']\nconf_dir = '/c'\n")) == (["/a"], "/c", None)
    # an explicit bin_dir replaces the default bin_dirs (the build's default, from config default)
    assert config.effective_cni(dump_of("bin_dir = '/x'\nbin_dirs = ['/opt/cni/bin']\n"))[0] == ["/x"]
    assert config.effective_cni(dump_of("bin_dir = '/x'\nbin_dirs = ['/u', '/o']\n"), ["/u", "/o"])[0] == ["/x"]
    assert "both" in config.effective_cni(dump_of("bin_dir = '/x'\nbin_dirs = ['/a']\n"))[2]
    assert config.effective_cni('version = 2\n[plugins."io.containerd.grpc.v1.cri".cni]\nbin_dir = "/b"\n')[0] == ["/b"]


def test_cni_setters_in_load_order():
    files = [("main", 'version = 2\n[plugins."io.containerd.grpc.v1.cri".cni]\nbin_dir = "/a"\n'),
             ("10.toml", "version = 3\n[plugins.'io.containerd.cri.v1.runtime'.cni]\nbin_dirs = ['/b']\n"),
             ("20.toml", 'version = 2\n[plugins."io.containerd.grpc.v1.cri"]\nsandbox_image = "x"\n'),
             ("broken.toml", "[[[")]
    assert config.cni_setters(files, "bin_dirs") == ["10.toml"]
    assert config.cni_setters(files, "bin_dir") == ["main"]
    assert config.cni_setters(files, None) == ["main", "10.toml", "20.toml"]
