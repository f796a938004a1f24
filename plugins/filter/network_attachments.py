# Copyright: nodeprep.cni contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""NetworkAttachmentDefinitions read on the controller, in bounded time and memory.

YAML aliases share one value between many places; nested ones ("billion laughs") make a few
hundred bytes stand for billions of values, which every later step (templating, the module's
arguments) would expand. So a NAD's YAML may not use aliases, and only what the coverage check
reads of a definition goes on: its kind, name, namespace and ``spec.config``.
"""

from __future__ import annotations

import json

import yaml
from ansible.errors import AnsibleFilterError

from ansible_collections.nodeprep.cni.plugins.module_utils._cniconf import NAD_KIND

# Values walked in one inline definition's spec.config before it is refused as too large.
MAX_CONFIG_VALUES = 100000


class _NoAliasLoader(yaml.SafeLoader):  # pylint: disable=too-many-ancestors
    """PyYAML's safe loader, refusing every alias (merge keys ``<<: *x`` included)."""

    def compose_node(self, parent, index):
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise yaml.composer.ComposerError(None, None, "found an alias (*%s)" % event.anchor, event.start_mark)
        return super().compose_node(parent, index)


def _documents(text, source: str) -> list:
    try:
        return list(yaml.load_all(str(text), Loader=_NoAliasLoader))  # nosec B506 - a SafeLoader subclass
    except yaml.composer.ComposerError as exc:
        mark = exc.problem_mark
        where = " at line %d, column %d" % (mark.line + 1, mark.column + 1) if mark else ""
        raise AnsibleFilterError(
            "%s: YAML aliases are refused in a NetworkAttachmentDefinition (%s%s): nested aliases can stand for"
            " billions of values; write the definition out in full" % (source, exc.problem, where))
    except yaml.YAMLError as exc:
        raise AnsibleFilterError("%s is not valid YAML: %s" % (source, exc))
    except RecursionError:
        raise AnsibleFilterError("%s nests too deep to be read as YAML; write spec.config as a JSON string" % source)


def _config_text(config, label: str):
    """spec.config as the JSON text Multus reads; a mapping given inline is counted, then dumped."""
    if isinstance(config, str) or config is None:
        return config
    if not isinstance(config, dict):
        return []  # the check reports it: spec.config must be a JSON string
    pending, seen = [config], 0
    while pending:
        value = pending.pop()
        seen += 1
        if seen > MAX_CONFIG_VALUES:
            raise AnsibleFilterError("%s: spec.config holds more than %d values; give it as a JSON string"
                                     % (label, MAX_CONFIG_VALUES))
        if isinstance(value, dict):
            pending.extend(value.values())
        elif isinstance(value, list):
            pending.extend(value)
    try:
        return json.dumps(config)
    except (TypeError, ValueError, RecursionError) as exc:
        raise AnsibleFilterError("%s: spec.config cannot be written as JSON: %s" % (label, exc))


def _text(value):
    return str(value) if isinstance(value, str) else None


def _essentials(document, source: str):
    if not isinstance(document, dict):
        return 0  # not a mapping: the check names the source
    kind = _text(document.get("kind"))
    if kind in (NAD_KIND + "List", "List") and isinstance(document.get("items"), list):
        return {"kind": kind, "items": [_essentials(item, source) for item in document["items"]]}
    if kind != NAD_KIND:
        return {"kind": kind}
    metadata = document.get("metadata") if isinstance(document.get("metadata"), dict) else {}
    spec = document.get("spec") if isinstance(document.get("spec"), dict) else {}
    name, namespace = _text(metadata.get("name")), _text(metadata.get("namespace"))
    label = "%s#%s/%s" % (source, namespace or "default", name or "?")
    return {"kind": kind, "metadata": {"name": name, "namespace": namespace},
            "spec": {"config": _config_text(spec.get("config"), label)}}


def network_attachments(data, source="network_attachments"):
    """Each document of ``data`` (YAML text, or definitions already decoded), reduced."""
    documents = _documents(data, source) if isinstance(data, (str, bytes)) else (data if isinstance(data, list) else [data])
    return [_essentials(document, source) for document in documents if document is not None]


class FilterModule:
    """nodeprep.cni's NetworkAttachmentDefinition filter."""

    def filters(self):
        return {"network_attachments": network_attachments}
