# Copyright: nodeprep.cni contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""CNI network configs, conflists and NetworkAttachmentDefinitions: parsing and plugin coverage.

A config is covered when every plugin type it names resolves in the runtime's plugin dirs and
one of the CNI versions it asks for is in that plugin's ``CNI_COMMAND=VERSION``
``supportedVersions``. Everything here reads; nothing writes.
"""

from __future__ import annotations

import json
import os
import socket

# libcni's ConfFiles() reads these suffixes from a conf dir, without descending into subdirs.
CONFIG_SUFFIXES = (".conf", ".conflist", ".json")
# libcni decodes a config without cniVersion as 0.1.0.
DEFAULT_CNI_VERSION = "0.1.0"
NAD_KIND = "NetworkAttachmentDefinition"
# Where the dhcp IPAM plugin finds its daemon unless the config says daemonSocketPath.
DHCP_SOCKET = "/run/cni/dhcp.sock"
# STATUS exists from this spec version on (libcni runs it only for such conflists).
STATUS_VERSION = (1, 1, 0)


class ConfigError(ValueError):
    """A config that cannot be read or is not a CNI config; the message names its source."""


def parse_config_text(text, source: str) -> dict:
    """The JSON object of one CNI config (bytes or str), or ConfigError naming ``source``."""
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ConfigError("%s is not UTF-8: %s" % (source, exc))
    try:
        config = json.loads(text)
    except ValueError as exc:
        raise ConfigError("%s is not valid JSON: %s" % (source, exc))
    if not isinstance(config, dict):
        raise ConfigError("%s is not a CNI config: its JSON is a %s, not an object" % (source, type(config).__name__))
    return config


def config_versions(config: dict, inherited=None) -> list:
    """The CNI versions a config asks for: ``cniVersions`` if given, else ``cniVersion``."""
    listed = config.get("cniVersions")
    if isinstance(listed, list) and listed:
        return [str(v) for v in listed]
    if isinstance(config.get("cniVersion"), str) and config["cniVersion"]:
        return [config["cniVersion"]]
    return list(inherited) if inherited else [DEFAULT_CNI_VERSION]


def plugin_uses(config: dict, inherited_versions=None, where: str = "") -> list:
    """Each plugin a config invokes: ``{"type", "versions", "where"}``.

    A conflist passes its version to every plugin (libcni injects it), an IPAM plugin gets the
    version of the plugin that calls it, and a Multus delegate is a config of its own that
    falls back to its parent's version.
    """
    uses = []
    versions = config_versions(config, inherited_versions)
    kind = config.get("type")
    if isinstance(kind, str) and kind:
        uses.append({"type": kind, "versions": versions, "where": where or "type"})
    ipam = config.get("ipam")
    if isinstance(ipam, dict) and isinstance(ipam.get("type"), str) and ipam["type"]:
        use = {"type": ipam["type"], "versions": versions, "where": (where + ".ipam" if where else "ipam")}
        if ipam["type"] == "dhcp":
            # The dhcp plugin only relays to its daemon: without one, every ADD fails.
            given = ipam.get("daemonSocketPath")
            use["daemon_socket"] = given if isinstance(given, str) and given else DHCP_SOCKET
        uses.append(use)
    plugins = config.get("plugins")
    if isinstance(plugins, list):
        for index, child in enumerate(plugins):
            if isinstance(child, dict):
                # Members of a conflist take the list's version, whatever they say themselves.
                uses.extend(plugin_uses(dict(child, cniVersion=None, cniVersions=None), versions,
                                        "%splugins[%d]" % (where + "." if where else "", index)))
    delegates = config.get("delegates")
    if isinstance(delegates, list):
        for index, child in enumerate(delegates):
            if isinstance(child, dict):
                uses.extend(plugin_uses(child, versions, "%sdelegates[%d]" % (where + "." if where else "", index)))
    return uses


def config_entry(source: str, kind: str, config=None, error=None) -> dict:
    entry = {"path": source, "kind": kind, "name": None, "cni_versions": [], "uses": [], "types": [],
             "missing_types": [], "version_mismatches": [], "probe_errors": [], "daemon_problems": [], "error": error,
             "covered": False, "config": config}
    if config is not None:
        entry["name"] = config.get("name") if isinstance(config.get("name"), str) else None
        entry["cni_versions"] = config_versions(config)
        entry["uses"] = plugin_uses(config)
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


def read_conf_dir(directory: str) -> list:
    """Every CNI config libcni would consider in ``directory``, parsed or with its error."""
    try:
        names = sorted(os.listdir(directory))
    except OSError:
        return []
    entries = []
    for name in names:
        path = os.path.join(directory, name)
        if not name.endswith(CONFIG_SUFFIXES) or not os.path.isfile(path):
            continue
        kind = "conflist" if name.endswith(".conflist") else "conf"
        try:
            with open(path, "rb") as handle:
                config = parse_config_text(handle.read(), path)
        except OSError as exc:
            entries.append(config_entry(path, kind, error="cannot read %s: %s" % (path, exc.strerror or exc)))
            continue
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
    if isinstance(raw, dict):
        return [config_entry(label, "nad", raw)]
    if not isinstance(raw, str):
        return [config_entry(label, "nad", error="%s: spec.config must be a JSON string" % label)]
    try:
        config = parse_config_text(raw, label + " spec.config")
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


def _version_tuple(text):
    try:
        return tuple(int(part) for part in str(text).split("."))
    except ValueError:
        return ()


def status_candidates(entry: dict) -> list:
    """The plugin configs libcni would send STATUS to, in order; [] when the conflist predates STATUS."""
    config = entry.get("config")
    if entry.get("kind") != "conflist" or not isinstance(config, dict) or not isinstance(config.get("plugins"), list):
        return []
    version = config.get("cniVersion")
    if not isinstance(version, str) or _version_tuple(version) < STATUS_VERSION:
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
