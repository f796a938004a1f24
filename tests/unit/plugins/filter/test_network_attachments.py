"""network_attachments: NADs read on the controller in bounded time, reduced to what the check reads."""

from __future__ import annotations

import json
import time

import pytest
import yaml
from ansible.errors import AnsibleFilterError

from ansible_collections.nodeprep.cni.plugins.filter.network_attachments import network_attachments
from ansible_collections.nodeprep.cni.plugins.module_utils._cniconf import nad_entries

NAD = """\
apiVersion: k8s.cni.cncf.io/v1
kind: NetworkAttachmentDefinition
metadata: {name: macvlan, namespace: apps, annotations: {note: kept out}}
spec:
  config: '{"cniVersion": "1.0.0", "type": "macvlan", "ipam": {"type": "static"}}'
"""


def test_only_kind_name_namespace_and_config_are_kept():
    [reduced] = network_attachments(NAD, "nads/m.yaml")
    assert reduced == {"kind": "NetworkAttachmentDefinition", "metadata": {"name": "macvlan", "namespace": "apps"},
                       "spec": {"config": '{"cniVersion": "1.0.0", "type": "macvlan", "ipam": {"type": "static"}}'}}
    [entry] = nad_entries("nads/m.yaml", [reduced])
    assert entry["path"] == "nads/m.yaml#apps/macvlan" and entry["types"] == ["macvlan", "static"]


@pytest.mark.parametrize("text, line", [
    ("a: &x [1, 2]\nb: *x\n", 2),
    ("base: &b {kind: x}\nnad:\n  <<: *b\n", 3),
])
def test_aliases_are_refused_naming_source_and_line(text, line):
    with pytest.raises(AnsibleFilterError) as caught:
        network_attachments(text, "nads/x.yaml")
    assert str(caught.value).startswith("nads/x.yaml: YAML aliases are refused in a NetworkAttachmentDefinition")
    assert "at line %d" % line in str(caught.value)


def test_a_billion_laughs_is_refused_at_once():
    lines = ["kind: NetworkAttachmentDefinition", "a: &a [lol,lol,lol,lol,lol,lol,lol,lol,lol]"]
    lines += ["%s: &%s [%s]" % (cur, cur, ",".join(["*" + prev] * 9)) for prev, cur in zip("abcdefgh", "bcdefghi")]
    started = time.monotonic()
    with pytest.raises(AnsibleFilterError):
        network_attachments("\n".join(lines), "lol.yaml")
    assert time.monotonic() - started < 1


def test_documents_lists_and_other_kinds_keep_what_the_check_names():
    text = NAD + "---\n---\nkind: ConfigMap\n---\n[1, 2]\n---\nkind: List\nitems: [{kind: NetworkAttachmentDefinition, metadata: {name: b}}]\n"
    assert network_attachments(text, "all.yaml")[1:] == [
        {"kind": "ConfigMap"}, 0,
        {"kind": "List", "items": [{"kind": "NetworkAttachmentDefinition", "metadata": {"name": "b", "namespace": None},
                                    "spec": {"config": None}}]}]


def test_an_inline_mapping_config_becomes_json_within_a_bound():
    inline = yaml.safe_load(NAD)
    inline["spec"]["config"] = {"cniVersion": "1.0.0", "type": "bridge"}
    [reduced] = network_attachments(inline, "multus_network_attachments[0]")
    assert json.loads(reduced["spec"]["config"]) == {"cniVersion": "1.0.0", "type": "bridge"}
    # Aliases Ansible already expanded into shared values: many references to one big list.
    shared = list(range(1000))
    inline["spec"]["config"] = {"type": "bridge", "x": [shared] * 200}
    with pytest.raises(AnsibleFilterError) as caught:
        network_attachments(inline, "multus_network_attachments[0]")
    assert "multus_network_attachments[0]#apps/macvlan: spec.config holds more than 100000 values" in str(caught.value)
