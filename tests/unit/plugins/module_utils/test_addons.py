"""Telling our plugin files from adopted ones, add-on drops and drift, and naming the add-on."""
from __future__ import annotations

from ansible_collections.nodeprep.cni.plugins.module_utils._addons import addons_present, classify, guess_addon, takeover_summary


def link(directory, name, status):
    return {"dir": str(directory), "name": name, "path": "%s/%s" % (directory, name), "status": status, "target": None}


def test_kube_router_drop_named_by_its_four_plugins_alone(tmp_path):
    bin_dir, conf = tmp_path / "bin", tmp_path / "net.d"
    bin_dir.mkdir()
    conf.mkdir()
    links = [link(bin_dir, name, "foreign") for name in ("bridge", "host-local", "loopback", "portmap")]
    links.append(link(bin_dir, "macvlan", "ok"))
    found = classify(links, [], [str(bin_dir)], [str(conf)])
    assert [(e["name"], e["kind"], e["addon"]) for e in found] == [
        ("bridge", "dropped", "kube-router"), ("host-local", "dropped", "kube-router"),
        ("loopback", "dropped", "kube-router"), ("portmap", "dropped", "kube-router"), ("macvlan", "ours", None)]


def test_a_lone_dropped_file_is_not_guessed_without_marks(tmp_path):
    links = [link(tmp_path, "macvlan", "foreign")]
    assert classify(links, [], [str(tmp_path)], [])[0]["addon"] is None


def test_calico_named_for_drift_by_its_binary_and_for_its_config(tmp_path):
    bin_dir, conf = tmp_path / "bin", tmp_path / "net.d"
    bin_dir.mkdir()
    conf.mkdir()
    (bin_dir / "calico").write_text("x")
    (conf / "10-kuberouter.conflist").write_text("{}")
    assert addons_present([str(bin_dir)], [str(conf)]) == ["calico", "kube-router"]
    # Both copy host-local: two candidates, no guess; only calico copies tuning.
    assert guess_addon("host-local", ["calico", "kube-router"]) is None
    found = classify([link(bin_dir, "tuning", "drifted"), link(bin_dir, "bridge", "foreign")], [], [str(bin_dir)], [str(conf)])
    assert [(e["kind"], e["addon"]) for e in found] == [("drifted", "calico"), ("dropped", None)]
    # With kube-router's config alone, even one dropped plugin is put to its name.
    (bin_dir / "calico").unlink()
    found = classify([link(bin_dir, "portmap", "foreign")], [], [str(bin_dir)], [str(conf)])
    assert [(e["kind"], e["addon"]) for e in found] == [("dropped", "kube-router")]


def test_adopted_names_where_the_original_is_kept_and_other_statuses_are_left_out(tmp_path):
    adopted = [{"original": "%s/bridge" % tmp_path, "stored": "20261122T000000Z/bridge"}]
    found = classify([link(tmp_path, "bridge", "ok"), link(tmp_path, "ptp", "missing"), link(tmp_path, "vlan", "stale")],
                     adopted, [str(tmp_path)], [])
    assert found == [{"path": "%s/bridge" % tmp_path, "dir": str(tmp_path), "name": "bridge", "kind": "adopted",
                      "addon": None, "kept_at": "20261122T000000Z/bridge"}]


def test_takeover_summary_names_each_file_and_the_add_on(tmp_path):
    ops = [{"original": "%s/%s" % (tmp_path, name)} for name in ("bridge", "portmap")]
    text = takeover_summary(ops, [str(tmp_path)], [])
    assert "took over 2 plugin file(s)" in text
    assert "%s/bridge (from kube-router)" % tmp_path in text and "state=absent" in text
    assert takeover_summary([], [str(tmp_path)], []) == ""
