"""The in-process module object the cni_plugins action runs the release backend through."""
from __future__ import annotations

from ansible_collections.nodeprep.cni.plugins.module_utils._release_backend import argument_spec as release_spec
from ansible_collections.nodeprep.cni.plugins.module_utils._release_backend import release_main
from ansible_collections.nodeprep.cni.plugins.plugin_utils._module_object import ModuleObject

SPEC = {
    "name": {"type": "str", "required": True},
    "count": {"type": "int", "default": 3},
    "token": {"type": "str", "no_log": True},
    "mode": {"type": "str", "default": "fast", "choices": ["fast", "slow"]},
}


def echo(module):
    module.warn("count is %d" % module.params["count"])
    module.exit_json(changed=False, params=module.params, check_mode=module.check_mode, diff=module._diff)


def test_parameters_are_validated_coerced_and_completed_with_defaults():
    result = ModuleObject(SPEC, {"name": "a", "count": "5"}, check_mode=True, diff=True).run(echo)
    assert result["params"] == {"name": "a", "count": 5, "token": None, "mode": "fast"}
    assert result["check_mode"] is True and result["diff"] is True
    assert result["warnings"] == ["count is 5"]
    assert not result.get("failed")


def test_bad_arguments_fail_naming_the_option_before_the_backend_runs():
    ran = []
    for params, word in (({"count": 1}, "name"), ({"name": "a", "count": "many"}, "count"),
                         ({"name": "a", "mode": "odd"}, "mode"), ({"name": "a", "colour": "red"}, "colour")):
        result = ModuleObject(SPEC, params).run(ran.append)
        assert result["failed"] is True and word in result["msg"], (params, result)
    assert ran == []


def test_no_log_values_are_masked_in_the_result_and_the_message():
    def leak(module):
        module.fail_json(msg="cannot use %s" % module.params["token"], echoed=module.params["token"])

    result = ModuleObject(SPEC, {"name": "a", "token": "s3cr3t-value"}).run(leak)
    assert result["failed"] is True
    assert "s3cr3t-value" not in repr(result)
    assert result["echoed"] == "VALUE_SPECIFIED_IN_NO_LOG_PARAMETER"


def test_the_release_backend_refuses_through_it_with_the_modules_messages(tmp_path):
    """The same validation and refusals as the cni_release module on a node, no request made."""
    spec = release_spec()
    cache = str(tmp_path / "cache")
    result = ModuleObject(spec, {"version": "1.9.1", "cache_dir": cache, "retries": "-1"}).run(release_main)
    assert result["failed"] is True and "retries=-1" in result["msg"]
    result = ModuleObject(spec, {"version": "1.6.1", "cache_dir": cache, "arch": "amd64"}).run(release_main)
    assert result["failed"] is True and "1.6.2" in result["msg"]
    result = ModuleObject(spec, {"cache_dir": cache}).run(release_main)
    assert result["failed"] is True and "version" in result["msg"]
    secret = "Bearer t0ken-never-shown"
    result = ModuleObject(spec, {"version": "1.9.1", "cache_dir": cache, "arch": "amd64", "require_pinned": True,
                                 "checksums": {}, "base_url": "", "headers": {"Authorization": secret}}).run(release_main)
    assert result["failed"] is True and "base_url" in result["msg"] and secret not in repr(result)
    assert not (tmp_path / "cache").exists()
