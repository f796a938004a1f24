"""fleet_junit: a test case per node, failures naming the reasons, valid XML whatever the names hold."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from ansible.errors import AnsibleFilterError

from ansible_collections.nodeprep.cni.plugins.filter.fleet_junit import fleet_junit


def test_one_case_per_node_and_failures_name_the_reasons():
    text = fleet_junit(["node-b", "node-a", "node-c"],
                       not_ready={"node-b": ["netns", "coverage"], "node-c": ["no report (failed or unreachable)"]},
                       versions={"node-a": "1.9.1", "node-b": "1.8.0"}, timestamp=0)
    root = ET.fromstring(text.encode())
    suite = root.find("testsuite")
    assert (root.get("tests"), root.get("failures")) == ("3", "2")
    assert (suite.get("tests"), suite.get("failures"), suite.get("timestamp")) == ("3", "2", "1970-01-01T00:00:00")
    cases = suite.findall("testcase")
    assert [c.get("name") for c in cases] == ["node-a", "node-b", "node-c"]
    assert cases[0].find("failure") is None
    assert cases[0].find("properties/property").attrib == {"name": "cni_plugins_version", "value": "1.9.1"}
    assert cases[1].find("failure").get("message") == "netns; coverage"
    assert cases[1].find("failure").text == "node-b: netns\nnode-b: coverage"
    assert cases[2].find("failure").get("message") == "no report (failed or unreachable)"
    assert cases[2].find("properties") is None


def test_odd_characters_stay_well_formed():
    text = fleet_junit(['n<1>&"x"'], not_ready={'n<1>&"x"': ["bad\x01 <reason> & \"more\""]})
    case = ET.fromstring(text.encode()).find("testsuite/testcase")
    assert case.get("name") == 'n<1>&"x"'
    assert case.find("failure").get("message") == 'bad? <reason> & "more"'


def test_bad_input_is_one_clear_error():
    with pytest.raises(AnsibleFilterError, match="fleet_junit"):
        fleet_junit("node-a")
    with pytest.raises(AnsibleFilterError, match="not_ready"):
        fleet_junit(["a"], not_ready=["a"])


def test_reasons_by_key_and_the_wanted_version_are_named():
    text = fleet_junit(["node-a"], not_ready={"node-a": {"skew": "current 1.8.0, wanted 1.9.1", "netns": "not shared"}},
                       versions={"node-a": "1.8.0"}, wanted={"node-a": "1.9.1"}, timestamp=0)
    case = ET.fromstring(text.encode()).find("testsuite/testcase")
    assert case.find("failure").get("message") == "skew: current 1.8.0, wanted 1.9.1; netns: not shared"
    assert [p.attrib for p in case.findall("properties/property")] == [
        {"name": "cni_plugins_version", "value": "1.8.0"}, {"name": "cni_plugins_wanted", "value": "1.9.1"}]
