# Copyright: nodeprep.cni contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""containerd's CNI settings: dialects and a format-preserving TOML edit.

Runs on the controller (the containerd_cni action plugin), where tomlkit keeps comments, key
order and every unrelated byte of the user's file. Pure functions: text in, text out.

Dialects follow the file's own ``version``, never the running containerd's:
  * ``version = 2`` (containerd 1.x; 2.x migrates it on load):
    ``[plugins."io.containerd.grpc.v1.cri".cni]`` ``bin_dir`` (one dir) and ``conf_dir``;
  * ``version = 3`` (containerd 2.0 to 2.2) and ``version = 4`` (2.3 and later), which keeps
    v3's CRI tables: ``[plugins."io.containerd.cri.v1.runtime".cni]`` ``conf_dir`` and
    ``bin_dirs`` (a list) where containerd reads it (2.1 and later), ``bin_dir`` on 2.0.
containerd's version (its release numbers, ``_versions.containerd_version(...).release``) only
decides what a new file looks like and which key a v3 file takes;
where containerd runs, its own ``config default`` says which keys it knows, which outranks any
version table (2.4 no longer reads ``bin_dir``).
"""

from __future__ import annotations

import re

try:
    import tomlkit
    from tomlkit.exceptions import ParseError
    from tomlkit.items import AoT, String
    HAS_TOMLKIT = True
    TOMLKIT_IMPORT_ERROR = None
except ImportError as exc:  # the action plugin turns this into one clear message
    HAS_TOMLKIT = False
    TOMLKIT_IMPORT_ERROR = exc

try:
    import tomllib  # a second, strict reader of what we write (Python 3.11+ controllers)
except ImportError:
    tomllib = None

V2_CRI = "io.containerd.grpc.v1.cri"
V3_RUNTIME = "io.containerd.cri.v1.runtime"
SUPPORTED_DIALECTS = (2, 3, 4)
BIN_KEYS = ("bin_dirs", "bin_dir")
# The first containerd release that reads each config version (a file never outranks its reader).
DIALECT_SINCE = {2: (1, 0, 0), 3: (2, 0, 0), 4: (2, 3, 0)}
# containerd's default plugin dir: its CRI drops a default bin_dirs in favour of an explicit bin_dir.
DEFAULT_BIN_DIRS = ["/opt/cni/bin"]
BOM = "\ufeff"


class ContainerdConfigError(Exception):
    """Bad input: the message names the file or option and the fix."""


def format_version(version):
    return ".".join(str(part) for part in version) if version else None


def _dump_cni_table(text):
    """The CRI CNI table of containerd's ``config default`` / ``config dump`` output (plain dict)."""
    data = tomlkit.parse(split_bom(text)[0]).unwrap()
    plugins = data.get("plugins")
    for name in (V3_RUNTIME, V2_CRI):
        table = plugins.get(name) if isinstance(plugins, dict) else None
        cni = table.get("cni") if isinstance(table, dict) else None
        if isinstance(cni, dict):
            return cni
    return None


def node_cni_defaults(default_config):
    """``(bin keys containerd knows, its default bin_dirs)`` from its ``config default`` output.

    That output lists every key of its CNI config struct (an unset ``bin_dir`` as ``''``), so a
    key missing there is one this containerd does not read. ``(None, None)`` when it says nothing.
    """
    try:
        cni = _dump_cni_table(default_config or "")
    except ParseError:
        cni = None
    if not cni:
        return None, None
    keys = frozenset(key for key in BIN_KEYS if key in cni)
    defaults = cni.get("bin_dirs") if isinstance(cni.get("bin_dirs"), list) else None
    return keys or None, defaults


def reader_dialect(containerd_version):
    """The newest config version a containerd reads (and writes for a new file)."""
    if containerd_version[0] < 2:
        return 2
    return 4 if containerd_version[:2] >= DIALECT_SINCE[4][:2] else 3


# --- reading ---------------------------------------------------------------------------------

def split_bom(text):
    """``(text without a UTF-8 byte order mark, the mark or '')``: containerd's reader skips it."""
    if text and text.startswith(BOM):
        return text[len(BOM):], BOM
    return text, ""


def parse(text, path):
    """The tomlkit document of *text*; a syntax error names the file, line and column."""
    try:
        return tomlkit.parse(split_bom(text)[0])
    except ParseError as exc:
        raise ContainerdConfigError(
            "%s is not valid TOML: %s. Fix that line in the file (containerd cannot load it either), then run "
            "again; nothing was changed. Do not delete or move the file: its other settings would be lost."
            % (path, exc)) from None


def _kind(value):
    if isinstance(value, AoT):
        return "an array of tables ([[...]])"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, list):
        return "an array"
    return "a %s" % type(value).__name__


def dotted(keys):
    """A key path as TOML writes it: ``plugins."io.containerd.grpc.v1.cri".cni``."""
    return ".".join(key if re.match(r"^[A-Za-z0-9_-]+$", key) else '"%s"' % key for key in keys)


def _not_a_table(path, keys, value):
    name = dotted(keys)
    fix = ("write it as one table, [%s] with single brackets" % name if isinstance(value, AoT)
           else "remove that value or make it a table, [%s]" % name)
    return ContainerdConfigError(
        "%s: '%s' is %s, but containerd reads it as a table of settings: %s, then run again; nothing was "
        "changed." % (path, name, _kind(value), fix))


def lookup(document, keys, path):
    """The table at *keys*, or None where it is missing; a non-table on the way is an error."""
    node = document
    for depth, key in enumerate(keys):
        if key not in node:
            return None
        node = node[key]
        if not isinstance(node, dict):
            raise _not_a_table(path, keys[:depth + 1], node)
    return node


def file_dialect(document, path):
    """The config ``version`` of an existing file (2, 3 or 4)."""
    version = document.get("version")
    if version is None:
        raise ContainerdConfigError(
            "%s has no top-level 'version' key, which means containerd's deprecated version 1 format. Add "
            "'version = 2' (containerd 1.x) or the version containerd 2.x writes with 'containerd config default' "
            "(3 up to 2.2, 4 from 2.3) with that version's keys; nothing was changed." % path)
    if isinstance(version, bool) or not isinstance(version, int) or int(version) not in SUPPORTED_DIALECTS:
        raise ContainerdConfigError(
            "%s has 'version = %s', which containerd does not read: a containerd config is version = 2 "
            "(containerd 1.x), version = 3 (containerd 2.0 to 2.2) or version = 4 (containerd 2.3 and later); "
            "fix the version line to the one your containerd's 'containerd config default' writes; nothing was "
            "changed." % (path, version.as_string() if hasattr(version, "as_string") else version))
    return int(version)


def new_file_dialect(containerd_version, path):
    if containerd_version is None:
        raise ContainerdConfigError(
            "%s does not exist and the node's containerd version is unknown (no 'containerd --version'): set "
            "containerd_version (e.g. '1.7' or '2.3') so that the right config dialect is written." % path)
    return reader_dialect(containerd_version)


def check_reader(dialect, containerd_version, path):
    """Refuses a file its containerd cannot read (we never convert between versions)."""
    if containerd_version is None or containerd_version >= DIALECT_SINCE[dialect]:
        return
    readable = reader_dialect(containerd_version)
    raise ContainerdConfigError(
        "%s is a version %d config, which containerd %s does not read (it reads version %s); this collection never "
        "converts a config between versions: write it as version = %d (what 'containerd config default' of that "
        "containerd writes), or upgrade containerd; nothing was changed." % (
            path, dialect, format_version(containerd_version),
            "2" if readable == 2 else "2 and 3" if readable == 3 else "2 to 4", readable))


def cni_table_path(dialect):
    return ("plugins", V2_CRI if dialect == 2 else V3_RUNTIME, "cni")


def string_list(table, key, path, table_path):
    """The dirs a bin key names: a string or an array of strings, else an error naming the key."""
    value = table[key]
    items = value if isinstance(value, list) and not isinstance(value, AoT) else [value]
    is_list = isinstance(value, list)
    if not all(isinstance(item, str) for item in items) or is_list != (key == "bin_dirs"):
        want = "a list of directories, e.g. %s = ['/opt/cni/bin']" if key == "bin_dirs" else \
            "one directory, e.g. %s = '/opt/cni/bin'"
        raise ContainerdConfigError(
            "%s: '%s.%s' is %s, but containerd reads %s: fix that line, then run again; nothing was changed." % (
                path, dotted(table_path), key, _kind(value), want % key))
    return [str(item) for item in items]


def bin_dir_key(dialect, containerd_version, known_keys, existing_table, path):
    """``bin_dir`` or ``bin_dirs`` for this file (see the module docstring)."""
    if dialect == 2:
        return "bin_dir"
    if known_keys:
        return "bin_dirs" if "bin_dirs" in known_keys else "bin_dir"
    if dialect == 4:
        return "bin_dirs"
    if containerd_version is not None:
        return "bin_dirs" if containerd_version[:2] >= (2, 1) else "bin_dir"
    if existing_table is not None and "bin_dirs" in existing_table:
        return "bin_dirs"
    if existing_table is not None and "bin_dir" in existing_table:
        return "bin_dir"
    raise ContainerdConfigError(
        "%s is a version 3 config without bin_dir or bin_dirs and the node's containerd version is unknown: set "
        "containerd_version ('2.0' takes bin_dir, '2.1' and later take bin_dirs)." % path)


# --- writing ---------------------------------------------------------------------------------

def _ensure_table(document, keys, path):
    """The table at *keys*, created (as a standard table header) where missing."""
    node = document
    for depth, key in enumerate(keys):
        if key not in node:
            last = depth == len(keys) - 1
            node[key] = tomlkit.table(is_super_table=not last)
        node = node[key]
        if not isinstance(node, dict):
            raise _not_a_table(path, keys[:depth + 1], node)
    return node


def _is_literal(item):
    return isinstance(item, String) and item.as_string().startswith("'")


def quote_style(table):
    """Whether the table's strings are literal (``'…'``): the first string decides."""
    for value in table.values():
        for item in (value if isinstance(value, list) and not isinstance(value, AoT) else [value]):
            if isinstance(item, String):
                return _is_literal(item)
    return False


def _string(value, literal):
    # A literal string cannot hold a quote or a newline: those values stay basic.
    if literal and "'" not in value and "\n" not in value:
        return tomlkit.string(value, literal=True)
    return tomlkit.string(value)


def _value(value, literal):
    if isinstance(value, list):
        array = tomlkit.array()
        for item in value:
            array.append(_string(item, literal))
        return array
    return _string(value, literal)


def _set(table, key, value, literal):
    """Sets *key* keeping its place, indentation and comment (tomlkit would append a new one)."""
    item = _value(value, literal)
    if key in table:
        old = table.item(key) if hasattr(table, "item") else table[key]
        item.trivia.indent = old.trivia.indent
        item.trivia.comment_ws = old.trivia.comment_ws
        item.trivia.comment = old.trivia.comment
        item.trivia.trail = old.trivia.trail
        table.value._replace(key, key, item)  # pylint: disable=protected-access
    else:
        table[key] = item


def _replace_key(table, old, new, value, literal):
    """Puts *new* where *old* was, with its indentation and comment."""
    old_item = table[old]
    item = _value(value, literal)
    item.trivia.indent = old_item.trivia.indent
    item.trivia.comment_ws = old_item.trivia.comment_ws
    item.trivia.comment = old_item.trivia.comment
    item.trivia.trail = old_item.trivia.trail
    table.value._replace(old, new, item)  # pylint: disable=protected-access


def wanted_bin_dirs(bin_dirs, existing_table, path, table_path):
    """Our dirs first, then any other dir the file already names (an old bin_dir is migrated)."""
    wanted = list(bin_dirs)
    if existing_table is not None:
        for key in BIN_KEYS:
            if key in existing_table:
                for item in string_list(existing_table, key, path, table_path):
                    # An empty bin_dir is containerd's "unset" (2.3's default file writes bin_dir = '').
                    if item and item not in wanted:
                        wanted.append(item)
    return wanted


def _is_literal_value(value):
    if isinstance(value, list):
        return bool(value) and all(_is_literal(item) for item in value)
    return _is_literal(value)


def edit(text, path, bin_dirs, conf_dir, containerd_version, known_keys=None):
    """Returns ``(new_text, facts)``; *text* None means the file does not exist yet.

    *bin_dirs*: every directory the plugins are linked into, the main one first. *known_keys*:
    the bin keys the node's containerd knows (``node_cni_defaults``), when it could be asked.
    """
    if not bin_dirs:
        raise ContainerdConfigError("bin_dirs is empty: give at least the directory the CNI plugins are linked into.")
    text, bom = split_bom(text)
    if text is None or not text.strip():
        dialect = new_file_dialect(containerd_version, path)
        document = tomlkit.document()
        document.add("version", dialect)
        created = True
    else:
        document = parse(text, path)
        dialect = file_dialect(document, path)
        created = False
        check_reader(dialect, containerd_version, path)
    table_path = cni_table_path(dialect)
    existing = lookup(document, table_path, path)
    key = bin_dir_key(dialect, containerd_version, known_keys, existing, path)
    table = _ensure_table(document, table_path, path)
    literal = quote_style(table) if existing is not None else quote_style_of_document(document)
    other = "bin_dir" if key == "bin_dirs" else "bin_dirs"
    if key == "bin_dirs":
        wanted = wanted_bin_dirs(bin_dirs, existing, path, table_path)
        if "bin_dirs" in table:
            if string_list(table, "bin_dirs", path, table_path) != wanted:
                _set(table, "bin_dirs", wanted, _is_literal_value(table["bin_dirs"]) or literal)
        elif "bin_dir" in table:
            # Never both keys (containerd 2.1+ refuses that): bin_dirs takes bin_dir's place.
            _replace_key(table, "bin_dir", "bin_dirs", wanted, _is_literal(table["bin_dir"]) or literal)
        else:
            _set(table, "bin_dirs", wanted, literal)
        searched = wanted
    else:
        if other in table:
            string_list(table, other, path, table_path)
        if "bin_dir" not in table or string_list(table, "bin_dir", path, table_path) != [bin_dirs[0]]:
            _set(table, "bin_dir", bin_dirs[0], _is_literal(table.get("bin_dir")) or literal)
        searched = [bin_dirs[0]]
    if other in table:
        del table[other]
    if conf_dir and ("conf_dir" not in table or table["conf_dir"] != conf_dir):
        if "conf_dir" in table and not isinstance(table["conf_dir"], str):
            raise ContainerdConfigError(
                "%s: '%s.conf_dir' is %s, but containerd reads one directory: fix that line, then run again; "
                "nothing was changed." % (path, dotted(table_path), _kind(table["conf_dir"])))
        _set(table, "conf_dir", conf_dir, _is_literal(table.get("conf_dir")) or literal)
    new_text = bom + tomlkit.dumps(document)
    verify_written(new_text, path, dialect, key, searched, conf_dir)
    facts = {
        "dialect": dialect,
        "table": 'plugins."%s".cni' % table_path[1],
        "bin_dir_key": key,
        "bin_dirs": searched,
        "conf_dir": conf_dir,
        "created": created,
    }
    return new_text, facts


def quote_style_of_document(document):
    """Whether a new table should use literal strings: the file's first string decides."""
    stack = [document]
    while stack:
        node = stack.pop(0)
        for value in node.values():
            if isinstance(value, String):
                return _is_literal(value)
            if isinstance(value, dict):
                stack.append(value)
    return False


def verify_written(new_text, path, dialect, key, bin_dirs, conf_dir):
    """Parses what we are about to write back, with every reader at hand, and checks the CNI keys.

    A text we cannot read back (a duplicated key, both bin keys) is never written.
    """
    body = split_bom(new_text)[0]
    try:
        readers = [tomlkit.parse(body).unwrap()]
        if tomllib is not None:
            readers.append(tomllib.loads(body))
    except (ParseError, ValueError) as exc:
        raise ContainerdConfigError(
            "the edit of %s does not parse back (%s), so it was not written; nothing was changed. Please report this "
            "with the file." % (path, exc)) from None
    want = {key: bin_dirs if key == "bin_dirs" else bin_dirs[0]}
    if conf_dir:
        want["conf_dir"] = conf_dir
    for parsed in readers:
        table = parsed
        for part in cni_table_path(dialect):
            table = table.get(part, {}) if isinstance(table, dict) else {}
        got = {name: table.get(name) for name in want}
        both = all(name in table for name in BIN_KEYS)
        if got != want or both or parsed.get("version") != dialect:
            raise ContainerdConfigError(
                "the edit of %s reads back as %s instead of %s, so it was not written; nothing was changed. Please "
                "report this with the file." % (path, {name: table.get(name) for name in ("version",) + BIN_KEYS + (
                    "conf_dir",) if name in table}, want))


def cni_keys_text(text, path):
    """The file's CNI settings alone, as TOML lines (for a diff that shows no other setting)."""
    if not text:
        return ""
    document = parse(text, path)
    version = document.get("version")
    lines = ["version = %s" % version] if version is not None else []
    dialects = [int(version)] if isinstance(version, int) and int(version) in SUPPORTED_DIALECTS else [2, 3]
    for dialect in dialects:
        keys = cni_table_path(dialect)
        try:
            table = lookup(document, keys, path)
        except ContainerdConfigError:
            table = None
        if table is None:
            continue
        lines.append("[%s]" % dotted(keys))
        for name, value in table.items():
            if not isinstance(value, dict):
                lines.append("%s = %s" % (name, value.as_string().strip()))
    return "\n".join(lines) + "\n"


# --- what containerd loads -------------------------------------------------------------------

def imports_of(text):
    """The file's top-level ``imports`` entries (strings), or [] (also for a file we cannot read)."""
    if not text:
        return []
    try:
        document = tomlkit.parse(split_bom(text)[0])
    except ParseError:
        return []
    imports = document.get("imports") or []
    return [str(entry) for entry in imports if isinstance(entry, str)] if isinstance(imports, list) else []


def imports_drop_in_dir(text):
    """The directory of a ``<dir>/*.toml`` entry in the file's top-level ``imports``, if any."""
    for entry in imports_of(text):
        if entry.endswith("/*.toml") and entry.startswith("/"):
            return entry[: -len("/*.toml")]
    return None


def sets_bin_dir(text, path):
    """Whether a v3/v4 file's own CNI table holds the deprecated ``bin_dir``."""
    document = parse(text, path)
    dialect = file_dialect(document, path)
    if dialect == 2:
        return False
    table = lookup(document, cni_table_path(dialect), path)
    return table is not None and "bin_dir" in table and bool(string_list(table, "bin_dir", path, cni_table_path(dialect))[0])


def drop_in_seed(main_text, path):
    """The start of a new drop-in: the main file's ``version`` and a copy of its CNI dir keys.

    Copying them keeps what the main file already sets (k3s points bin_dir at its static dir)
    and tells a version-3 drop-in which key this containerd takes.
    """
    main = parse(main_text, path)
    dialect = file_dialect(main, path)
    seed = tomlkit.document()
    seed.add("version", dialect)
    existing = lookup(main, cni_table_path(dialect), path)
    if existing is not None:
        table = _ensure_table(seed, cni_table_path(dialect), path)
        for key, value in existing.items():
            if key in BIN_KEYS + ("conf_dir",):
                table[key] = value
    return tomlkit.dumps(seed)


def effective_cni(dump_text, default_bin_dirs=None):
    """``(bin dirs containerd searches, conf_dir, problem)`` from its ``config dump`` output.

    The dump is containerd's merged, migrated view; its CRI then applies one more rule: an
    explicit ``bin_dir`` replaces the default ``bin_dirs``, and both set is a start-up error.
    """
    cni = _dump_cni_table(dump_text)
    if cni is None:
        return [], "", "containerd's dump has no CRI CNI table"
    bin_dir = cni.get("bin_dir") or ""
    bin_dirs = list(cni.get("bin_dirs") or [])
    conf_dir = cni.get("conf_dir") or ""
    if bin_dir:
        if not bin_dirs or bin_dirs == (default_bin_dirs or DEFAULT_BIN_DIRS):
            return [bin_dir], conf_dir, None
        return bin_dirs, conf_dir, "sets both cni.bin_dir and cni.bin_dirs, which containerd's CRI refuses to start with"
    return bin_dirs, conf_dir, None


def cni_setters(files, key):
    """The files (path, text), in load order, whose own CNI table sets *key* (or, on containerd 1.x
    where an import replaces a whole plugin table, defines that table at all: key None)."""
    found = []
    for path, text in files:
        try:
            document = tomlkit.parse(split_bom(text)[0])
            version = document.get("version")
            dialect = int(version) if isinstance(version, int) and int(version) in SUPPORTED_DIALECTS else 2
            keys = cni_table_path(dialect)
            table = lookup(document, keys if key else keys[:2], path)
        except (ParseError, ContainerdConfigError):
            continue
        if table is not None and (key is None or key in table):
            found.append(path)
    return found
