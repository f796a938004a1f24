"""The cni_plugins role's download side on a real node: the controller fetch runs without become,
the controller cache is no change, and headers, ca_path, the checksum algorithm and the
broken-release table reach the download."""
from __future__ import annotations

import subprocess

import pytest
import yaml

from tests.reliability.downloads_support import BASE, SITE, Runner, boot, checksums_for, role_vars
from testbed_lib.http_server import LocalServer
from testbed_lib.releases import build_release
from testbed_lib.tree import node_state, temp_leftovers

# The role has one task: it asks the node, fetches on the controller only when needed, installs.
ROLE_TASK = "Install the wanted release unless the node has it intact, and link it"


@pytest.fixture(scope="module")
def releases(mirror):
    root = mirror.root
    return dict((version, build_release(root, version, plugins=["bridge", "host-local", "loopback", "portmap"]))
                for version in ("9.5.1", "9.5.2"))


@pytest.fixture(scope="module")
def runner(rootfs, tmp_path_factory):
    node = boot(rootfs, tmp_path_factory, "role")
    try:
        yield Runner(node, tmp_path_factory.mktemp("role-runs"))
    finally:
        node.stop()


def task(result, name):
    matches = [t for t in result.task_results() if t.task.split(" : ")[-1] == name]
    assert matches, "no task %r ran" % name
    return matches[-1]


def failures(result):
    return [(t.task.split(" : ")[-1], t.result.get("msg", "")) for t in result.task_results() if t.failed]


def test_controller_side_runs_without_become_and_filling_its_cache_is_no_change(runner, mirror, tmp_path):
    """The play runs with --become; the node becomes root with su, while localhost's become user
    is "nobody" (whose shell refuses every command): only a controller task without become works."""
    inventory = yaml.safe_load(runner.inventory.read_text())
    inventory["all"]["children"]["nodes"]["hosts"][runner.node.name]["ansible_become_method"] = "ansible.builtin.su"
    inventory["all"]["hosts"] = {"localhost": {"ansible_connection": "local", "ansible_python_interpreter": "/usr/bin/python3",
                                               "ansible_become_method": "ansible.builtin.su", "ansible_become_user": "nobody"}}
    become_inventory = tmp_path / "become.yml"
    become_inventory.write_text(yaml.safe_dump(inventory))
    controller_cache = tmp_path / "controller-cache"
    extra = dict(role_vars(mirror, controller_cache), nodeprep_hosts="nodes")

    def play(cache, **kwargs):
        from testbed_lib import ansible_runner
        values = dict(extra, cni_plugins_controller_cache_dir=str(cache))
        return ansible_runner.run_playbook(SITE, become_inventory, extra_vars=values, args=["--become"], cwd=tmp_path, **kwargs)

    converged = play(controller_cache)
    assert converged.rc == 0, converged.describe()
    fetched = task(converged, ROLE_TASK).result["release"]
    assert fetched["downloaded"] is True and fetched["where"] == "controller"
    cached = controller_cache / mirror.releases[BASE].filename
    assert cached.stat().st_uid == 0  # written by the controller's own user, not "nobody"
    assert converged.changed(runner.node.name) > 0

    # An AWX job starts with an empty controller cache: the node already has BASE, so no request.
    mirror.clear()
    fresh_cache = tmp_path / "empty-controller-cache"
    again = play(fresh_cache)
    assert again.rc == 0, again.describe()
    assert again.changed(runner.node.name) == 0
    assert mirror.requests == [] and not fresh_cache.exists()

    checked = play(fresh_cache, check=True, diff=True)
    assert checked.rc == 0, checked.describe()
    assert checked.changed(runner.node.name) == 0 and mirror.requests == []


def test_headers_and_the_checksum_algorithm_reach_the_download(runner, mirror, releases, tmp_path):
    """9.5.1 is pinned nowhere, so its .sha512 file verifies it; the token goes with every request
    to the mirror and never into the output."""
    release = releases["9.5.1"]
    token = "mirror-token-0042"
    values = role_vars(mirror, tmp_path / "controller-cache", release.version, cni_plugins_checksum_algorithm="sha512",
                       cni_plugins_headers={"X-Token": token})
    done = runner.playbook(SITE, values)
    assert done.rc == 0, done.describe()
    fetched = task(done, ROLE_TASK).result["release"]
    assert fetched["checksum_source"] == "checksum_file" and fetched["sha256"] == release.sha256
    log = [(path, headers.get("X-Token")) for path, headers in mirror.request_log]
    assert log == [(release.url_path + ".sha512", token), (release.url_path, token)]
    assert token not in done.stdout and token not in done.stderr
    assert node_state(runner.node)["opt"]["cni/versions/current"] == ("link", "v" + release.version)


@pytest.fixture
def tls_mirror(mirror, tmp_path):
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True)
    with LocalServer(mirror.root, tls=(str(cert), str(key))) as server:
        yield server, cert


def test_ca_path_reaches_the_download(runner, mirror, releases, tls_mirror, tmp_path):
    server, cert = tls_mirror
    release = releases["9.5.2"]
    values = role_vars(mirror, tmp_path / "controller-cache", release.version, cni_plugins_base_url=server.base_url,
                       cni_plugins_checksums=checksums_for(release))
    before = node_state(runner.node)
    untrusted = runner.playbook(SITE, values)
    assert untrusted.rc != 0
    (name, message), = failures(untrusted)
    assert name == ROLE_TASK and "TLS verification failed" in message and "set ca_path" in message
    assert node_state(runner.node) == before

    trusted = runner.playbook(SITE, dict(values, cni_plugins_ca_path=str(cert)))
    assert trusted.rc == 0, trusted.describe()
    # The refused attempt never got past the TLS handshake: the only request is the trusted one.
    assert server.requests == [release.url_path]
    assert node_state(runner.node)["opt"]["cni/versions/current"] == ("link", "v" + release.version)


def test_the_one_broken_release_table_reaches_the_module(runner, mirror, tmp_path):
    """The role's table refuses before the node is asked or any request is made, naming the
    replacement."""
    values = role_vars(mirror, tmp_path / "controller-cache", "9.1.0", cni_plugins_broken_versions={"9.1.0": "9.2.0"})
    before = node_state(runner.node)
    refused = runner.playbook(SITE, values)
    (name, message), = failures(refused)
    assert name == ROLE_TASK and message == "CNI plugins 9.1.0 is a known-broken release; use 9.2.0"
    assert mirror.requests == []
    assert node_state(runner.node) == before and temp_leftovers(runner.node) == []
