# Copyright: nodeprep.cni contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What the collection changed in a runtime's config, recorded so that it can be taken back.

Runs on the controller beside the tomlkit editor (``_containerd_config``). Pure functions over
texts and a JSON-ready record:

  * ``record_edit`` notes, the first time we change a CNI key of a file, the key's original
    value as the file wrote it (its exact TOML text, so quote style and array layout come back
    byte for byte), and every time the value we wrote, so a later change by someone else is
    seen; keys that did not exist and tables we created are noted as ours.
  * ``restore`` puts those original values back where the file still holds what we wrote,
    removes the keys and tables we added, leaves (and reports) a key someone changed since, and
    says when a file we created holds nothing of anyone else's any more (then it is removed).

The record lives on the node in ``STATE_NAME`` next to the main config file, so that it outlives
the run, the controller and the collection's own plugin directories.
"""

from __future__ import annotations

import json
import posixpath

from ansible_collections.nodeprep.cni.plugins.plugin_utils import _containerd_config as config

try:
    import tomlkit
except ImportError:  # the action plugin reports the missing library
    tomlkit = None

STATE_NAME = "nodeprep-cni-state.json"
SCHEMA_VERSION = 1
KEYS = config.BIN_KEYS + ("conf_dir",)


def state_path(main_path):
    """The record's place: next to the main config (k3s regenerates the file, never its dir)."""
    return posixpath.join(posixpath.dirname(main_path) or "/", STATE_NAME)


def load_state(text, path):
    """The record from the state file's text (None: no file), or an error naming the file."""
    if text is None:
        return {"schema_version": SCHEMA_VERSION, "files": {}}
    try:
        state = json.loads(text)
    except ValueError as exc:
        raise config.ContainerdConfigError(
            "%s is not the JSON this collection writes (%s): it records the containerd settings to restore; "
            "put back its content from a backup, or remove it (then the original values cannot be restored "
            "automatically), then run again; nothing was changed." % (path, exc)) from None
    if not isinstance(state, dict) or not isinstance(state.get("files"), dict):
        raise config.ContainerdConfigError(
            "%s does not hold a 'files' table: it is not this collection's record of the containerd settings to "
            "restore; move it away, then run again; nothing was changed." % path)
    return state


def dump_state(state):
    return json.dumps(state, indent=2, sort_keys=True) + "\n"


def _document(text, path):
    if text is None or not config.split_bom(text)[0].strip():
        return None
    return config.parse(text, path)


def _cni_table_of(document, path):
    """``(table path, table or None)`` of a parsed file's CRI CNI settings."""
    table_path = config.cni_table_path(config.file_dialect(document, path))
    return table_path, config.lookup(document, table_path, path)


def _plain(value):
    return value.unwrap() if hasattr(value, "unwrap") else value


def _items(document, path):
    if document is None:
        return None, {}
    table_path, table = _cni_table_of(document, path)
    if table is None:
        return table_path, {}
    return table_path, {key: table[key] for key in KEYS if key in table}


def _value_text(item):
    return item.as_string().strip()


def record_edit(entry, before_text, after_text, path, created_dirs=()):
    """The file's record *entry* (a dict from the state, or {}) updated for one edit.

    A key's original value is kept from the first change; when the file no longer holds what we
    wrote last (someone set it since), their value becomes the one to restore.
    """
    entry = dict(entry or {})
    before = _document(before_text, path)
    after = _document(after_text, path)
    if "created" not in entry:
        entry["created"] = before is None
    table_path, before_items = _items(before, path)
    table_path, after_items = _items(after, path)
    entry["table"] = list(table_path)
    keys = dict(entry.get("keys") or {})
    for key in KEYS:
        old, new = before_items.get(key), after_items.get(key)
        if (old is None) == (new is None) and (old is None or _value_text(old) == _value_text(new)):
            continue
        known = keys.get(key)
        if known is None or _plain(old) != known.get("written"):
            known = {"original": None if old is None else _value_text(old)}
        known = dict(known, written=None if new is None else _plain(new))
        keys[key] = known
    entry["keys"] = keys
    tables = [list(t) for t in entry.get("tables") or []]
    for depth in range(1, len(table_path) + 1):
        prefix = list(table_path[:depth])
        missing = before is None or config.lookup(before, tuple(prefix), path) is None
        if missing and prefix not in tables:
            tables.append(prefix)
    entry["tables"] = tables
    # Tables new to a file go to its end, with a blank line that tomlkit files under the table
    # before: what was appended is kept as text, so that taking it off gives back the exact bytes.
    base = before_text
    if base is not None and entry.get("appended") and base.endswith(entry["appended"]):
        base = base[:-len(entry["appended"])]
    entry.pop("appended", None)
    if tables and base is not None and after_text.startswith(base) and len(after_text) > len(base):
        entry["appended"] = after_text[len(base):]
    dirs = list(entry.get("created_dirs") or [])
    entry["created_dirs"] = dirs + [d for d in created_dirs if d not in dirs]
    return entry


def _parse_value(text):
    return tomlkit.parse("value = %s\n" % text).item("value")


def _put(table, key, text, in_place_of=None):
    """Sets *key* to the TOML value *text* where *in_place_of* (or *key*) stands, keeping its
    indentation and comment; appends it otherwise."""
    item = _parse_value(text)
    here = in_place_of if in_place_of and in_place_of in table else key if key in table else None
    if here is None:
        table[key] = item
        return
    old = table.item(here)
    item.trivia.indent = old.trivia.indent
    item.trivia.comment_ws = old.trivia.comment_ws
    item.trivia.comment = old.trivia.comment
    item.trivia.trail = old.trivia.trail
    table.value._replace(here, key, item)  # pylint: disable=protected-access


def _describe(value):
    return "unset" if value is None else json.dumps(value)


def restore(text, path, entry):
    """Takes back what *entry* records in the file's *text*.

    Returns ``(new_text, report, remaining)``: *new_text* None when the file is to be removed (a
    file we created that holds nothing else), the same text when nothing is to be done;
    *report* lists what was ``restored``, ``removed`` and ``left`` (with the reason); *remaining*
    is the part of the record still standing (a key left as someone else set it), or None.
    """
    report = {"restored": [], "removed": [], "left": []}
    document = _document(text, path)
    keys = dict(entry.get("keys") or {})
    if document is None:
        if text is None and entry.get("created"):
            return None, report, None
        return text, report, None
    table_path, table = _cni_table_of(document, path)
    if list(table_path) != list(entry.get("table") or table_path):
        report["left"].append({"file": path, "reason": "its config version changed since this collection edited it, "
                               "so the recorded keys no longer apply; review its CNI settings by hand"})
        return text, report, entry
    remaining = {}
    plans = []
    for key, known in keys.items():
        current = table.get(key) if table is not None else None
        written, original = known.get("written"), known.get("original")
        original_plain = None if original is None else _plain(_parse_value(original))
        if _plain(current) == original_plain and (current is None) == (original is None):
            continue
        if (current is None) != (written is None) or (current is not None and _plain(current) != written):
            report["left"].append({
                "file": path, "key": key, "value": _plain(current),
                "reason": "changed since this collection set it to %s, so it is kept; the value before this collection "
                          "was %s" % (_describe(written), _describe(original_plain))})
            remaining[key] = known
            continue
        plans.append((key, original, original_plain))
    removing = [key for key, original, _plain_value in plans if original is None]
    for key, original, original_plain in plans:
        if original is None:
            continue
        # A key we replaced by another (bin_dir migrated to bin_dirs) goes back to that place.
        in_place_of = None if key in table else next((other for other in removing if other in table), None)
        _put(table, key, original, in_place_of)
        if in_place_of:
            removing.remove(in_place_of)
            report["removed"].append({"file": path, "key": in_place_of})
        report["restored"].append({"file": path, "key": key, "value": original_plain})
    for key in removing:
        if key in table:
            del table[key]
            report["removed"].append({"file": path, "key": key})
    for prefix in sorted((tuple(t) for t in entry.get("tables") or []), key=len, reverse=True):
        parent = config.lookup(document, prefix[:-1], path) if len(prefix) > 1 else document
        node = parent.get(prefix[-1]) if parent is not None else None
        if isinstance(node, dict) and len(node) == 0:
            del parent[prefix[-1]]
            report["removed"].append({"file": path, "table": config.dotted(prefix)})
    leftover = dict(entry, keys=remaining) if remaining else None
    if entry.get("created") and not remaining and not [name for name in document if name != "version"]:
        report["removed"].append({"file": path})
        return None, report, None
    if entry.get("created") and leftover is None:
        report["left"].append({"file": path, "reason": "created by this collection but holds settings of someone "
                               "else's now, so it is kept"})
    new_text = config.split_bom(text)[1] + tomlkit.dumps(document)
    appended = entry.get("appended")
    if leftover is None and appended and text.endswith(appended) and len(text) > len(appended):
        new_text = text[:-len(appended)]
    return new_text, report, leftover
