# Copyright: nodeprep.cni contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""containerd's CNI settings: version detection, dialects and a format-preserving TOML edit.

Runs on the controller (the containerd_cni action plugin), where tomlkit keeps comments, key
order and every unrelated byte of the user's file. Pure functions: text in, text out.

Dialects follow the file's own ``version``, never the running containerd's:
  * ``version = 2`` (containerd 1.x; 2.x migrates it on load):
    ``[plugins."io.containerd.grpc.v1.cri".cni]`` ``bin_dir`` (one dir) and ``conf_dir``;
  * ``version = 3`` (containerd 2.x): ``[plugins."io.containerd.cri.v1.runtime".cni]``
    ``conf_dir`` and ``bin_dirs`` (a list) on 2.1 and later, ``bin_dir`` on 2.0.
containerd's version only decides what a new file looks like and which key a v3 file takes.
"""

from __future__ import annotations

import re

try:
    import tomlkit
    from tomlkit.exceptions import ParseError
    HAS_TOMLKIT = True
    TOMLKIT_IMPORT_ERROR = None
except ImportError as exc:  # the action plugin turns this into one clear message
    HAS_TOMLKIT = False
    TOMLKIT_IMPORT_ERROR = exc

V2_CRI = "io.containerd.grpc.v1.cri"
V3_RUNTIME = "io.containerd.cri.v1.runtime"
SUPPORTED_DIALECTS = (2, 3)
_VERSION_RE = re.compile(r"(?<![\w/.])v?(\d+)\.(\d+)(?:\.(\d+))?")


class ContainerdConfigError(Exception):
    """Bad input: the message names the file or option and the fix."""


def parse_containerd_version(text):
    """``(major, minor, patch)`` from ``containerd --version`` output or a user string, else None.

    Debian prints e.g. ``containerd github.com/containerd/containerd/v2 2.1.9+unknown``: the
    ``/v2`` of the module path is not a version.
    """
    if not text:
        return None
    for line in str(text).splitlines():
        fields = line.split()
        candidates = fields[2:3] + fields if len(fields) >= 3 and fields[0] == "containerd" else fields
        for field in candidates:
            match = _VERSION_RE.match(field)
            if match:
                return int(match.group(1)), int(match.group(2)), int(match.group(3) or 0)
    return None


def format_version(version):
    return ".".join(str(part) for part in version) if version else None


def parse(text, path):
    """The tomlkit document of *text*; a syntax error names the file, line and column."""
    try:
        return tomlkit.parse(text)
    except ParseError as exc:
        raise ContainerdConfigError(
            "%s is not valid TOML: %s. Fix line %s (or move the file away so that a minimal config is "
            "written), then run again; nothing was changed." % (path, exc, exc.line)
        ) from None


def file_dialect(document, path):
    """The config ``version`` of an existing file (2 or 3)."""
    version = document.get("version")
    if version is None:
        raise ContainerdConfigError(
            "%s has no top-level 'version' key, which means containerd's deprecated version 1 format. Add "
            "'version = 2' (containerd 1.x) or 'version = 3' (containerd 2.x) with the matching keys, or "
            "regenerate it with 'containerd config default'; nothing was changed." % path)
    if isinstance(version, bool) or not isinstance(version, int) or int(version) not in SUPPORTED_DIALECTS:
        raise ContainerdConfigError(
            "%s has 'version = %s', which this collection does not write: use version = 2 (containerd 1.x) "
            "or version = 3 (containerd 2.x); nothing was changed." % (path, version))
    return int(version)


def new_file_dialect(containerd_version, path):
    if containerd_version is None:
        raise ContainerdConfigError(
            "%s does not exist and the node's containerd version is unknown (no 'containerd --version'): set "
            "containerd_version (e.g. '1.7' or '2.1') so that the right config dialect is written." % path)
    return 2 if containerd_version[0] < 2 else 3


def _cni_table_path(dialect):
    return ("plugins", V2_CRI if dialect == 2 else V3_RUNTIME, "cni")


def _lookup(document, keys):
    node = document
    for key in keys:
        if not hasattr(node, "get") or key not in node:
            return None
        node = node[key]
    return node


def bin_dir_key(dialect, containerd_version, existing_table, path):
    """``bin_dir`` or ``bin_dirs`` for this file (see the module docstring)."""
    if dialect == 2:
        return "bin_dir"
    if containerd_version is not None:
        return "bin_dirs" if containerd_version[:2] >= (2, 1) else "bin_dir"
    if existing_table is not None and "bin_dirs" in existing_table:
        return "bin_dirs"
    if existing_table is not None and "bin_dir" in existing_table:
        return "bin_dir"
    raise ContainerdConfigError(
        "%s is a version 3 config without bin_dir or bin_dirs and the node's containerd version is unknown: set "
        "containerd_version ('2.0' takes bin_dir, '2.1' and later take bin_dirs)." % path)


def _ensure_table(document, keys):
    """The table at *keys*, created (as a standard table header) where missing."""
    node = document
    for depth, key in enumerate(keys):
        if key not in node:
            last = depth == len(keys) - 1
            node[key] = tomlkit.table(is_super_table=not last)
        node = node[key]
    return node


def _replace_key(table, old, new, value):
    """Puts *new* where *old* was, with its indentation and comment (tomlkit would append it)."""
    old_item = table[old]
    item = tomlkit.item(value)
    item.trivia.indent = old_item.trivia.indent
    item.trivia.comment_ws = old_item.trivia.comment_ws
    item.trivia.comment = old_item.trivia.comment
    item.trivia.trail = old_item.trivia.trail
    table.value._replace(old, new, item)


def _as_list(value):
    return [str(item) for item in value] if isinstance(value, list) else [str(value)]


def wanted_bin_dirs(bin_dirs, existing_table):
    """Our dirs first, then any other dir the file already names (an old bin_dir is migrated)."""
    wanted = list(bin_dirs)
    if existing_table is not None:
        for key in ("bin_dirs", "bin_dir"):
            if key in existing_table:
                for item in _as_list(existing_table[key]):
                    if item not in wanted:
                        wanted.append(item)
    return wanted


def edit(text, path, bin_dirs, conf_dir, containerd_version):
    """Returns ``(new_text, facts)``; *text* None means the file does not exist yet.

    *bin_dirs*: every directory the plugins are linked into, the main one first.
    """
    if not bin_dirs:
        raise ContainerdConfigError("bin_dirs is empty: give at least the directory the CNI plugins are linked into.")
    if text is None or not text.strip():
        dialect = new_file_dialect(containerd_version, path)
        document = tomlkit.document()
        document.add("version", dialect)
        created = True
    else:
        document = parse(text, path)
        dialect = file_dialect(document, path)
        created = False
        if dialect == 3 and containerd_version is not None and containerd_version[0] < 2:
            raise ContainerdConfigError(
                "%s is a version 3 config, which containerd %s does not read (1.x reads version 2); this collection "
                "never converts a config between versions: write it as version = 2, or upgrade containerd; nothing "
                "was changed." % (path, format_version(containerd_version)))
    table_path = _cni_table_path(dialect)
    existing = _lookup(document, table_path)
    key = bin_dir_key(dialect, containerd_version, existing, path)
    table = _ensure_table(document, table_path)
    if key == "bin_dirs":
        wanted = wanted_bin_dirs(bin_dirs, existing)
        if "bin_dir" in table:
            # containerd 2.1+ refuses a file that sets both: bin_dirs takes bin_dir's place.
            _replace_key(table, "bin_dir", "bin_dirs", wanted)
        elif "bin_dirs" not in table or _as_list(table["bin_dirs"]) != wanted:
            table["bin_dirs"] = wanted
        searched = wanted
    else:
        if "bin_dir" not in table or str(table["bin_dir"]) != bin_dirs[0]:
            table["bin_dir"] = bin_dirs[0]
        searched = [bin_dirs[0]]
    if conf_dir and ("conf_dir" not in table or str(table["conf_dir"]) != conf_dir):
        table["conf_dir"] = conf_dir
    new_text = tomlkit.dumps(document)
    facts = {
        "dialect": dialect,
        "table": 'plugins."%s".cni' % table_path[1],
        "bin_dir_key": key,
        "bin_dirs": searched,
        "conf_dir": conf_dir,
        "created": created,
    }
    return new_text, facts


def imports_drop_in_dir(text):
    """The directory of a ``<dir>/*.toml`` entry in the file's top-level ``imports``, if any."""
    if not text:
        return None
    try:
        document = tomlkit.parse(text)
    except ParseError:
        return None
    imports = document.get("imports") or []
    for entry in imports if isinstance(imports, list) else []:
        entry = str(entry)
        if entry.endswith("/*.toml") and entry.startswith("/"):
            return entry[: -len("/*.toml")]
    return None


def drop_in_seed(main_text, path):
    """The start of a new drop-in: the main file's ``version`` and a copy of its CNI table.

    Copying the table keeps what the main file already sets (k3s points bin_dir at its static
    dir) and tells a version-3 drop-in which key this containerd takes.
    """
    main = parse(main_text, path)
    dialect = file_dialect(main, path)
    seed = tomlkit.document()
    seed.add("version", dialect)
    existing = _lookup(main, _cni_table_path(dialect))
    if existing is not None:
        table = _ensure_table(seed, _cni_table_path(dialect))
        for key, value in existing.items():
            if not hasattr(value, "items"):
                table[key] = value
    return tomlkit.dumps(seed)
