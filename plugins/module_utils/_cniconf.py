# Copyright: nodeprep.cni contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""CNI network configs, conflists and NetworkAttachmentDefinitions: parsing and plugin coverage.

A config is covered when every plugin type it names resolves in the runtime's plugin dirs and
one of the CNI versions it asks for is in that plugin's ``CNI_COMMAND=VERSION``
``supportedVersions``. Everything here reads; nothing writes.
"""

from __future__ import annotations

import errno
import json
import os
import re
import socket
import stat

from ansible_collections.nodeprep.cni.plugins.module_utils._versions import spec_version

# libcni's ConfFiles() reads these suffixes from a conf dir, without descending into subdirs.
CONFIG_SUFFIXES = (".conf", ".conflist", ".json")
# libcni decodes a config without cniVersion as 0.1.0.
DEFAULT_CNI_VERSION = "0.1.0"
NAD_KIND = "NetworkAttachmentDefinition"
# Go's encoding/json refuses a document nested deeper than this; Python's decoder recurses and
# gives up far earlier, so deeper documents are decoded without recursion.
MAX_JSON_DEPTH = 10000
# Multus delegates are configs of their own; nesting beyond this is refused rather than followed.
MAX_DELEGATE_DEPTH = 32
# Where the dhcp IPAM plugin finds its daemon unless the config says daemonSocketPath.
DHCP_SOCKET = "/run/cni/dhcp.sock"
# STATUS exists from this spec version on (libcni runs it only for such conflists).
STATUS_VERSION = (1, 1, 0)


class ConfigError(ValueError):
    """A config that cannot be read or is not a CNI config; the message names its source."""


def _object(pairs) -> dict:
    """A JSON object whose key order is that of each key's last occurrence, as Go decodes it."""
    found = {}
    for key, value in pairs:
        found.pop(key, None)
        found[key] = value
    return found


def _refuse_constant(name):
    # Python accepts NaN and Infinity; the runtime's decoder does not.
    raise ValueError("%s is not valid JSON" % name)


_WHITESPACE = re.compile(r"[ \t\n\r]*")
_SCALAR = re.compile(r"(-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][-+]?[0-9]+)?)|(true)|(false)|(null)")


class _OpenObject:  # pylint: disable=too-few-public-methods
    """An object being decoded and the key whose value comes next."""

    __slots__ = ("value", "key")

    def __init__(self, key):
        self.value, self.key = {}, key


def _decode_deep(text: str):
    """json.loads without recursion, for documents nested deeper than Python's stack allows."""
    def skip(pos):
        return _WHITESPACE.match(text, pos).end()

    def fail(message, pos):
        raise json.JSONDecodeError(message, text, pos)

    def key_at(pos):
        if text[pos:pos + 1] != '"':
            fail("Expecting property name enclosed in double quotes", pos)
        key, pos = json.decoder.scanstring(text, pos + 1, True)
        pos = skip(pos)
        if text[pos:pos + 1] != ":":
            fail("Expecting ':' delimiter", pos)
        return key, skip(pos + 1)

    stack = []  # open containers: a list or an _OpenObject
    pos = skip(0)
    while True:
        char = text[pos:pos + 1]
        if char in ("{", "["):
            if len(stack) >= MAX_JSON_DEPTH:
                fail("nested deeper than %d levels" % MAX_JSON_DEPTH, pos)
            pos = skip(pos + 1)
            if text[pos:pos + 1] == ("}" if char == "{" else "]"):
                value, pos = ({} if char == "{" else []), pos + 1
            elif char == "{":
                key, pos = key_at(pos)
                stack.append(_OpenObject(key))
                continue
            else:
                stack.append([])
                continue
        elif char == '"':
            value, pos = json.decoder.scanstring(text, pos + 1, True)
        else:
            match = _SCALAR.match(text, pos)
            if not match:
                fail("Expecting value", pos)
            number, true, false, _null = match.groups()
            if number is not None:
                value = float(number) if set(number) & set(".eE") else int(number)
            else:
                value = True if true else (False if false else None)
            pos = match.end()
        # Hand the value to the containers it completes, until one expects another value.
        while True:
            pos = skip(pos)
            if not stack:
                if pos != len(text):
                    fail("Extra data", pos)
                return value
            top = stack[-1]
            if isinstance(top, list):
                top.append(value)
                closing = "]"
            else:
                top.value.pop(top.key, None)
                top.value[top.key] = value
                closing = "}"
            char = text[pos:pos + 1]
            if char == ",":
                pos = skip(pos + 1)
                if closing == "}":
                    top.key, pos = key_at(pos)
                break
            if char != closing:
                fail("Expecting ',' delimiter", pos)
            value = stack.pop()
            value = value if closing == "]" else value.value
            pos += 1


def decode_json(text: str):
    """The JSON value of ``text``, decoded as the runtime's Go decoder would accept it."""
    try:
        return json.loads(text, object_pairs_hook=_object, parse_constant=_refuse_constant)
    except RecursionError:
        return _decode_deep(text)


def parse_config_text(text, source: str) -> dict:
    """The JSON object of one CNI config (bytes or str), or ConfigError naming ``source``."""
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ConfigError("%s is not UTF-8: %s" % (source, exc))
    try:
        config = decode_json(text)
    except ValueError as exc:
        raise ConfigError("%s is not valid JSON: %s" % (source, exc))
    if not isinstance(config, dict):
        raise ConfigError("%s is not a CNI config: its JSON is a %s, not an object" % (source, type(config).__name__))
    return config


# What libcni decodes a plugin's config into (its PluginConf type): Go matches these names without
# regard to case, and a value of another JSON type makes the runtime refuse the whole file.
_PLUGIN_FIELDS = {
    "cniVersion": str, "name": str, "type": str, "capabilities": {bool},
    "ipam": {"type": str}, "prevResult": dict,
    "dns": {"nameservers": [str], "domain": str, "search": [str], "options": [str]},
}
_JSON_TYPE_NAMES = {str: "a string", bool: "a boolean", dict: "an object", list: "a list",
                    int: "a number", float: "a number", type(None): "null"}


def _fold_equal(key: str, name: str) -> bool:
    """Whether Go's decoder matches JSON key ``key`` to field ``name`` (simple case folding)."""
    if len(key) != len(name):
        return False
    extra = {"k": "\u212a", "s": "\u017f"}
    return all(a == b or (b.isalpha() and a in (b.lower(), b.upper(), extra.get(b.lower(), ""))) for a, b in zip(key, name))


def go_field(config: dict, name: str):
    """The value Go decodes into field ``name``: the last key that matches it, or None."""
    value = None
    for key in config:
        if _fold_equal(key, name):
            value = config[key]
    return value


def _type_problems(value, schema, where: str) -> list:
    if value is None:
        return []  # Go leaves a field at its zero value for null.
    if isinstance(schema, type):
        ok = isinstance(value, schema) and not (schema is not bool and isinstance(value, bool))
        return [] if ok else ["%s is %s, not %s" % (where, _JSON_TYPE_NAMES.get(type(value), "a value"), _JSON_TYPE_NAMES[schema])]
    if isinstance(schema, list):
        if not isinstance(value, list):
            return ["%s is %s, not a list" % (where, _JSON_TYPE_NAMES.get(type(value), "a value"))]
        return [p for index, item in enumerate(value) for p in _type_problems(item, schema[0], "%s[%d]" % (where, index))]
    if not isinstance(value, dict):
        return ["%s is %s, not an object" % (where, _JSON_TYPE_NAMES.get(type(value), "a value"))]
    if isinstance(schema, set):
        [member] = schema
        return [p for key, item in value.items() for p in _type_problems(item, member, "%s.%s" % (where, key))]
    return [p for key, item in value.items() for field, member in schema.items()
            if _fold_equal(key, field) for p in _type_problems(item, member, "%s.%s" % (where, key))]


def check_plugin_config(config, where: str) -> None:
    """Refuse a plugin config libcni refuses: not an object, a field of another type, no ``type``."""
    if not isinstance(config, dict):
        raise ConfigError("%s is %s, not a plugin config object" % (where, _JSON_TYPE_NAMES.get(type(config), "a value")))
    problems = _type_problems(config, _PLUGIN_FIELDS, where)
    if problems:
        raise ConfigError("; ".join(problems))
    if not go_field(config, "type"):
        raise ConfigError("%s has no plugin 'type'" % where)


def _conflist_flag(config: dict, key: str, where: str) -> bool:
    value = config.get(key, False)
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise ConfigError("%s.%s must be true or false" % (where, key))


def check_conflist(config: dict, source: str, conf_dir=None) -> list:
    """Refuse a conflist libcni refuses; return its plugins (inline, then from ``<conf_dir>/<name>/``).

    libcni 1.3 and later also load the ``.conf`` files of a subdir named after the list (unless
    ``loadOnlyInlinedPlugins``); earlier releases require the inline ``plugins`` list.
    """
    if not isinstance(config.get("name"), str):
        raise ConfigError("%s: a conflist needs a string 'name'" % source)
    if "cniVersion" in config and not isinstance(config["cniVersion"], str):
        raise ConfigError("%s: 'cniVersion' must be a string" % source)
    listed = config.get("cniVersions")
    if "cniVersions" in config and not (isinstance(listed, list) and all(isinstance(v, str) for v in listed)):
        raise ConfigError("%s: 'cniVersions' must be a list of strings" % source)
    for flag in ("disableCheck", "disableGC"):
        _conflist_flag(config, flag, source)
    inline_only = _conflist_flag(config, "loadOnlyInlinedPlugins", source)
    plugins = config.get("plugins")
    if "plugins" in config:
        if not isinstance(plugins, list):
            raise ConfigError("%s: 'plugins' is %s, not a list" % (source, _JSON_TYPE_NAMES.get(type(plugins), "a value")))
        if not plugins:
            raise ConfigError("%s: 'plugins' is an empty list; a conflist needs at least one plugin" % source)
    elif inline_only:
        raise ConfigError("%s: 'loadOnlyInlinedPlugins' is set but there is no 'plugins' list" % source)
    plugins = list(plugins or [])
    for index, plugin in enumerate(plugins):
        check_plugin_config(plugin, "%s: plugins[%d]" % (source, index))
    if conf_dir is not None and not inline_only:
        for path in conf_files(os.path.join(conf_dir, config["name"]), (".conf",)):
            plugin = parse_config_text(read_config_file(path), path)
            check_plugin_config(plugin, path)
            plugins.append(plugin)
    if not plugins:
        raise ConfigError("%s has no plugins: no 'plugins' list (and no .conf files in %s)"
                          % (source, os.path.join(conf_dir or ".", config["name"])))
    return plugins


def check_config(config: dict, source: str, kind: str, conf_dir=None) -> dict:
    """``config`` as the runtime loads it (plugins from a subdir included), or ConfigError."""
    if kind == "conflist" or (kind == "nad" and "plugins" in config):
        plugins = check_conflist(config, source, conf_dir)
        return dict(config, plugins=plugins) if plugins != config.get("plugins") else config
    check_plugin_config(config, source)
    return config


def config_versions(config: dict, inherited=None) -> list:
    """The CNI versions a config asks for: ``cniVersions`` if given, else ``cniVersion``."""
    listed = config.get("cniVersions")
    if isinstance(listed, list) and listed:
        return [str(v) for v in listed]
    if isinstance(config.get("cniVersion"), str) and config["cniVersion"]:
        return [config["cniVersion"]]
    return list(inherited) if inherited else [DEFAULT_CNI_VERSION]


def plugin_uses(config: dict, inherited_versions=None, where: str = "", depth: int = 0) -> list:
    """Each plugin a config invokes: ``{"type", "versions", "where"}``.

    A conflist passes its version to every plugin (libcni injects it), an IPAM plugin gets the
    version of the plugin that calls it, and a Multus delegate is a config of its own that
    falls back to its parent's version.
    """
    if depth > MAX_DELEGATE_DEPTH:
        raise ConfigError("delegates nest deeper than %d levels (at %s)" % (MAX_DELEGATE_DEPTH, where))
    uses = []
    versions = config_versions(config, inherited_versions)
    kind = go_field(config, "type")
    if isinstance(kind, str) and kind:
        uses.append({"type": kind, "versions": versions, "where": where or "type"})
    ipam = go_field(config, "ipam")
    ipam_type = go_field(ipam, "type") if isinstance(ipam, dict) else None
    if isinstance(ipam_type, str) and ipam_type:
        use = {"type": ipam_type, "versions": versions, "where": (where + ".ipam" if where else "ipam")}
        if ipam_type == "dhcp":
            # The dhcp plugin only relays to its daemon: without one, every ADD fails.
            given = go_field(ipam, "daemonSocketPath")
            use["daemon_socket"] = given if isinstance(given, str) and given else DHCP_SOCKET
        uses.append(use)
    plugins = config.get("plugins")
    if isinstance(plugins, list):
        for index, child in enumerate(plugins):
            if isinstance(child, dict):
                # Members of a conflist take the list's version, whatever they say themselves.
                uses.extend(plugin_uses(dict(child, cniVersion=None, cniVersions=None), versions,
                                        "%splugins[%d]" % (where + "." if where else "", index), depth + 1))
    delegates = config.get("delegates")
    if isinstance(delegates, list):
        for index, child in enumerate(delegates):
            if isinstance(child, dict):
                uses.extend(plugin_uses(child, versions, "%sdelegates[%d]" % (where + "." if where else "", index),
                                        depth + 1))
    return uses


def config_entry(source: str, kind: str, config=None, error=None) -> dict:
    entry = {"path": source, "kind": kind, "name": None, "cni_versions": [], "uses": [], "types": [],
             "missing_types": [], "version_mismatches": [], "probe_errors": [], "daemon_problems": [], "error": error,
             "covered": False, "config": config}
    if config is not None:
        entry["name"] = config.get("name") if isinstance(config.get("name"), str) else None
        entry["cni_versions"] = config_versions(config)
        try:
            entry["uses"] = plugin_uses(config)
        except ConfigError as exc:
            entry["error"] = "%s: %s" % (source, exc)
        entry["types"] = sorted(set(use["type"] for use in entry["uses"]))
    return entry


def required_entry(source: str, types) -> dict:
    """Plugin types that must be installed before any config names them (e.g. Multus delegates).

    They have no config, hence no CNI version to check: only their presence counts.
    """
    entry = config_entry(source, "required")
    entry["uses"] = [{"type": t, "versions": [], "where": "required"} for t in types]
    entry["types"] = sorted(set(types))
    return entry


def runtime_entry(runtime: str, types) -> dict:
    """Plugins the runtime itself runs for every pod, named by no config (containerd's ``loopback``)."""
    entry = required_entry("%s (runs it for every pod)" % runtime, types)
    entry["kind"] = "runtime"
    return entry


def _file_problem(path: str):
    """Why the runtime cannot read ``path`` as a config, without opening it; None for a regular file."""
    try:
        info = os.stat(path)
    except OSError as exc:
        if exc.errno == errno.ENOENT and os.path.islink(path):
            return "is a dangling symlink (to %s)" % os.readlink(path)
        if exc.errno == errno.ELOOP:
            return "is a symlink loop"
        return "cannot be read: %s" % (exc.strerror or exc)
    if stat.S_ISREG(info.st_mode):
        return None
    if stat.S_ISDIR(info.st_mode):
        return "is a symlink to a directory"
    if stat.S_ISFIFO(info.st_mode):
        return "is a FIFO (the runtime would block reading it)"
    return "is not a regular file (a socket or device)"


def read_config_file(path: str) -> bytes:
    """The bytes of a regular file; never blocks on a FIFO swapped in after it was checked."""
    problem = _file_problem(path)
    if problem:
        raise ConfigError("%s %s" % (path, problem))
    try:
        descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except OSError as exc:
        raise ConfigError("cannot read %s: %s" % (path, exc.strerror or exc))
    with os.fdopen(descriptor, "rb") as handle:
        if not stat.S_ISREG(os.fstat(descriptor).st_mode):
            raise ConfigError("%s is not a regular file" % path)
        return handle.read()


def conf_files(directory: str, suffixes=CONFIG_SUFFIXES) -> list:
    """The entries libcni's ConfFiles() lists: every name with a suffix that is not a directory
    itself (a link to one, a dangling link or a FIFO is listed, and fails the runtime's read)."""
    try:
        with os.scandir(directory) as listing:
            return sorted(entry.path for entry in listing
                          if entry.name.endswith(suffixes) and not entry.is_dir(follow_symlinks=False))
    except FileNotFoundError:
        return []
    except OSError as exc:
        raise ConfigError("conf dir %s %s" % (directory, _dir_problem(directory, exc)))


def _dir_problem(directory: str, exc: OSError) -> str:
    if exc.errno == errno.ELOOP:
        return "is a symlink loop"
    if exc.errno == errno.ENOTDIR:
        return "is not a directory"
    return "cannot be listed: %s" % (exc.strerror or exc)


def read_conf_dir(directory: str) -> list:
    """Every CNI config libcni would consider in ``directory``, parsed or with its error.

    A missing dir holds no configs; a dir that cannot be listed is one entry (kind ``conf_dir``)
    naming the problem, as is each listed file the runtime could not load.
    """
    try:
        paths = conf_files(directory)
    except ConfigError as exc:
        return [config_entry(directory, "conf_dir", error=str(exc))]
    entries = []
    for path in paths:
        kind = "conflist" if path.endswith(".conflist") else "conf"
        try:
            config = parse_config_text(read_config_file(path), path)
            config = check_config(config, path, kind, directory)
        except ConfigError as exc:
            entries.append(config_entry(path, kind, error=str(exc)))
            continue
        entries.append(config_entry(path, kind, config))
    return entries


def nad_entries(source: str, document) -> list:
    """Config entries of one NetworkAttachmentDefinition (already YAML-decoded, or its JSON text).

    A NAD without ``spec.config`` makes Multus read ``<name>.conf`` from its conf dir; that file is
    covered by the conf dir scan, so it yields nothing here.
    """
    if isinstance(document, (str, bytes)):
        try:
            document = parse_config_text(document, source)
        except ConfigError as exc:
            return [config_entry(source, "nad", error=str(exc))]
    if isinstance(document, list):
        # Every document of a multi-document YAML file; empty documents are None.
        found = []
        for item in document:
            if item is not None:
                found.extend(nad_entries(source, item))
        return found
    if not isinstance(document, dict):
        return [config_entry(source, "nad", error="%s is not a NetworkAttachmentDefinition: not a mapping" % source)]
    if document.get("kind") in (NAD_KIND + "List", "List") and isinstance(document.get("items"), list):
        found = []
        for item in document["items"]:
            found.extend(nad_entries(source, item))
        return found
    if document.get("kind") != NAD_KIND:
        return [config_entry(source, "nad", error="%s is a %r, not a %s" % (source, document.get("kind"), NAD_KIND))]
    metadata = document.get("metadata") if isinstance(document.get("metadata"), dict) else {}
    label = "%s#%s/%s" % (source, metadata.get("namespace") or "default", metadata.get("name") or "?")
    spec = document.get("spec") if isinstance(document.get("spec"), dict) else {}
    raw = spec.get("config")
    if raw in (None, ""):
        return []
    if not isinstance(raw, (str, dict)):
        return [config_entry(label, "nad", error="%s: spec.config must be a JSON string" % label)]
    try:
        config = raw if isinstance(raw, dict) else parse_config_text(raw, label + " spec.config")
        # Multus names a config without a name after its NetworkAttachmentDefinition.
        if "name" not in config and isinstance(metadata.get("name"), str):
            config = dict(config, name=metadata["name"])
        config = check_config(config, label + " spec.config", "nad")
    except ConfigError as exc:
        return [config_entry(label, "nad", error=str(exc))]
    return [config_entry(label, "nad", config)]


def resolve_plugin(plugin_type: str, plugin_dirs) -> str | None:
    """The first executable ``plugin_type`` in ``plugin_dirs``, as libcni's FindInPath looks."""
    if not plugin_type or "/" in plugin_type or plugin_type in (".", ".."):
        return None
    for directory in plugin_dirs:
        path = os.path.join(directory, plugin_type)
        if os.path.isfile(path) and os.access(path, os.X_OK):
            return path
    return None


def supported_versions(answer: dict) -> list:
    """supportedVersions from a VERSION answer; a pre-0.3 plugin only states its cniVersion."""
    listed = answer.get("supportedVersions")
    if isinstance(listed, list):
        return [str(v) for v in listed]
    return [str(answer["cniVersion"])] if answer.get("cniVersion") else []


class Coverage:
    """Checks config entries against the plugin dirs, probing each plugin binary once."""

    def __init__(self, plugin_dirs, probe=None, daemon_problem=None):
        self.plugin_dirs = list(plugin_dirs)
        # probe(path) -> VERSION answer dict, or raises with a message; None skips version checks.
        self.probe = probe
        # daemon_problem(socket_path) -> None when the dhcp daemon answers there, else why not.
        self.daemon_problem = daemon_problem
        self._answers = {}

    def _supported(self, path: str):
        key = os.path.realpath(path)
        if key not in self._answers:
            try:
                self._answers[key] = (supported_versions(self.probe(path)), None)
            except Exception as exc:  # pylint: disable=broad-exception-caught
                # Any probe failure is a finding about that plugin, not a crash of the report.
                self._answers[key] = (None, str(exc))
        return self._answers[key]

    def check(self, entry: dict) -> dict:
        if entry["error"]:
            return entry
        missing, mismatches, probe_errors, daemons = [], [], [], []
        for use in entry["uses"]:
            if use.get("daemon_socket") and self.daemon_problem is not None:
                problem = self.daemon_problem(use["daemon_socket"])
                if problem and problem not in daemons:
                    daemons.append(problem)
            path = resolve_plugin(use["type"], self.plugin_dirs)
            if path is None:
                if use["type"] not in missing:
                    missing.append(use["type"])
                continue
            if self.probe is None or not use["versions"]:
                continue
            supported, problem = self._supported(path)
            if problem:
                probe_errors.append({"type": use["type"], "plugin": path, "error": problem})
            elif not any(version in supported for version in use["versions"]):
                mismatches.append({"type": use["type"], "where": use["where"], "plugin": path,
                                   "wanted": use["versions"], "supported": supported})
        entry["missing_types"] = sorted(missing)
        entry["version_mismatches"] = mismatches
        entry["probe_errors"] = probe_errors
        entry["daemon_problems"] = daemons
        entry["covered"] = not (missing or mismatches or probe_errors or daemons)
        return entry


def summarize(entries: list) -> dict:
    """One verdict for a set of checked entries, each finding named by the file it came from."""
    problems = []
    for entry in entries:
        if entry["error"]:
            problems.append(entry["error"])
            continue
        if entry["missing_types"]:
            problems.append("%s: plugin type(s) not installed in any plugin dir: %s"
                            % (entry["path"], ", ".join(entry["missing_types"])))
        for mismatch in entry["version_mismatches"]:
            problems.append("%s: %s (%s) wants CNI version %s but %s supports only %s" % (
                entry["path"], mismatch["type"], mismatch["where"], " or ".join(mismatch["wanted"]),
                mismatch["plugin"], ", ".join(mismatch["supported"]) or "nothing"))
        for failure in entry["probe_errors"]:
            problems.append("%s: %s" % (entry["path"], failure["error"]))
        for problem in entry.get("daemon_problems") or []:
            problems.append("%s: %s" % (entry["path"], problem))
    return {
        "ok": not problems,
        "configs": len(entries),
        "missing_types": sorted(set(t for e in entries for t in e["missing_types"])),
        "version_mismatches": sum(len(e["version_mismatches"]) for e in entries),
        "errors": [e["path"] for e in entries if e["error"]],
        "problems": problems,
    }


def dhcp_daemon_problem(socket_path: str, timeout: float = 2.0):
    """None when something accepts connections on the dhcp daemon's socket, else why not and the fix."""
    client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    client.settimeout(timeout)
    try:
        client.connect(socket_path)
    except OSError as exc:
        return ("uses dhcp IPAM but no CNI dhcp daemon answers at %s (%s), so every pod ADD fails; start the dhcp "
                "plugin's daemon (`dhcp daemon`, e.g. as a systemd unit) or use another IPAM type"
                % (socket_path, exc.strerror or exc))
    finally:
        client.close()
    return None


def status_candidates(entry: dict) -> list:
    """The plugin configs libcni would send STATUS to, in order; [] when the conflist predates STATUS."""
    config = entry.get("config")
    if entry.get("kind") != "conflist" or not isinstance(config, dict) or not isinstance(config.get("plugins"), list):
        return []
    version = config.get("cniVersion")
    asked = spec_version(version)
    if asked is None or asked.release < STATUS_VERSION:
        return []
    found = []
    for plugin in config["plugins"]:
        if isinstance(plugin, dict) and isinstance(plugin.get("type"), str):
            # libcni's buildOneConfig: the list's name and version go into each plugin's config.
            found.append(dict(plugin, name=config.get("name"), cniVersion=version))
    return found


def cni_status(entry: dict, plugin_dirs, invoke) -> dict:
    """CNI STATUS (spec 1.1.0) of one covered conflist, as a runtime asks it.

    *invoke(path, stdin_bytes, cni_path)* runs the plugin with ``CNI_COMMAND=STATUS`` and returns
    ``(rc, stdout, stderr)``. The answer is ``{"path", "ran", "ok", "message"}``.
    """
    answer = {"path": entry["path"], "ran": False, "ok": None, "message": ""}
    plugins = status_candidates(entry)
    if not plugins:
        answer["message"] = "not asked: STATUS needs a conflist of CNI version 1.1.0 or later"
        return answer
    if not entry.get("covered"):
        answer["message"] = "not asked: the conflist is not covered (see its coverage findings)"
        return answer
    answer["ran"] = True
    for plugin in plugins:
        path = resolve_plugin(plugin["type"], plugin_dirs)
        rc, out, err = invoke(path, json.dumps(plugin).encode("utf-8"), ":".join(plugin_dirs))
        if rc != 0:
            try:
                error = json.loads(out)
                detail = "code %s: %s%s" % (error.get("code"), error.get("msg"),
                                            (" (%s)" % error["details"]) if error.get("details") else "")
            except (ValueError, AttributeError):
                detail = (err or out or "exit %d" % rc).strip()[:300]
            answer.update(ok=False, message="%s: %s" % (plugin["type"], detail))
            return answer
    answer.update(ok=True, message="ok")
    return answer
