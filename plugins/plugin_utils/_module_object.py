# Copyright: nodeprep.cni contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A module object for running a module's backend inside an action plugin, on the controller.

The backend gets what AnsibleModule would give it on a node: parameters validated and coerced by
the same argument spec (defaults filled, types converted, unknown or missing options refused),
``check_mode``, ``_diff``, ``warn``, ``no_log_values``, and ``exit_json``/``fail_json``. The
result comes back as a dict with the warnings in it and every no_log value masked, like the result
of a module that ran on a node.
"""

from __future__ import annotations

from ansible.module_utils.common.arg_spec import ArgumentSpecValidator
from ansible.module_utils.common.parameters import remove_values


class _Exit(Exception):
    """exit_json or fail_json was called: carries the result out of the backend."""

    def __init__(self, result):
        super().__init__(result.get("msg", ""))
        self.result = result


class ModuleObject:
    """Validated parameters and the calls a module backend makes, without a node."""

    def __init__(self, argument_spec: dict, params: dict, check_mode: bool = False, diff: bool = False, **rules):
        validated = ArgumentSpecValidator(argument_spec, **rules).validate(params)
        self.no_log_values = set(getattr(validated, "_no_log_values", ()))
        self.params = validated.validated_parameters
        self.check_mode = check_mode
        self._diff = diff
        # The validator's only warnings are an option given together with its alias.
        self._warnings = ["both option %(option)s and its alias %(alias)s are set" % item if isinstance(item, dict) else str(item)
                          for item in getattr(validated, "_warnings", [])]
        self._error = validated.error_messages[0] if validated.error_messages else None

    def warn(self, warning: str) -> None:
        self._warnings.append(warning)

    def exit_json(self, **result):
        raise _Exit(dict(result))

    def fail_json(self, msg: str, **result):
        raise _Exit(dict(result, failed=True, msg=msg))

    def run(self, main) -> dict:
        """Call ``main(self)`` and hand back its result: ``failed`` and ``msg`` when the arguments
        or the backend refused, ``warnings`` when it warned; no_log values masked throughout."""
        result = None
        try:
            if self._error:
                self.fail_json(msg=self._error)
            main(self)
        except _Exit as done:
            result = done.result
        if result is None:
            raise RuntimeError("the module backend returned without exit_json or fail_json")
        if self._warnings:
            result["warnings"] = list(self._warnings)
        return remove_values(result, self.no_log_values)
