# Copyright: nodeprep.cni contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Checks the nodeprep_* variables of every host of the play against the playbook's spec, on the controller.

It reads hostvars (inventory, -e, facts) rather than the task's own variables: the play's own
variables (the playbook's internals) are not inputs, and one run checks every host of the play,
so under ``serial`` a bad value in the last batch's inventory is refused before the first batch runs.
"""

from __future__ import annotations

from ansible.errors import AnsibleActionFail
from ansible.module_utils.common.arg_spec import ArgumentSpecValidator
from ansible.plugins.action import ActionBase
from ansible.utils.vars import load_extra_vars

from ansible_collections.nodeprep.cni.plugins.plugin_utils._playbook_vars import (
    PREFIX,
    SpecError,
    check,
    collection_set_names,
    load_spec,
)

ARGUMENT_SPEC = {"playbook": {"type": "str", "required": True}}


class ActionModule(ActionBase):
    # Reads the controller's variables only: no connection to any node.
    _requires_connection = False
    _supports_check_mode = True

    def run(self, tmp=None, task_vars=None):
        task_vars = task_vars or {}
        result = super().run(tmp, task_vars)
        checked = ArgumentSpecValidator(ARGUMENT_SPEC).validate(self._task.args)
        if checked.error_messages:
            raise AnsibleActionFail("; ".join(checked.error_messages))
        playbook = checked.validated_parameters["playbook"]
        try:
            spec = load_spec()
            own_names = collection_set_names()
        except (OSError, SpecError) as exc:
            raise AnsibleActionFail("cannot read the playbooks' variable spec: %s" % exc) from exc
        try:
            extra_vars = {name for name in load_extra_vars(self._loader) if name.startswith(PREFIX)}
        except Exception:  # pylint: disable=broad-except
            # Without the command line's -e (an API run), a name's origin is only not named in the message.
            extra_vars = set()
        hostvars = task_vars.get("hostvars") or {}
        hosts = task_vars.get("ansible_play_hosts_all") or [task_vars.get("inventory_hostname")]
        host_vars = {host: self._nodeprep_vars(hostvars[host]) for host in hosts}
        try:
            errors, warnings = check(playbook, spec, host_vars, extra_vars, own_names)
        except SpecError as exc:
            raise AnsibleActionFail(str(exc)) from exc
        for warning in warnings:
            self._display.warning(warning)
        result.update(changed=False, playbook=playbook, hosts=len(host_vars),
                      variables=sorted({name for values in host_vars.values() for name in values}))
        if errors:
            result.update(failed=True, errors=errors,
                          msg="%s.yml was given variables it cannot use, so nothing ran: %s" % (playbook, " ".join(errors)))
        else:
            result["msg"] = "%s.yml: variables of %d hosts checked" % (playbook, len(host_vars))
        return result

    @staticmethod
    def _nodeprep_vars(variables) -> dict:
        """The host's nodeprep_* variables, templated; an exception stands for a value that cannot be yet."""
        values = {}
        for name in list(variables):
            if not name.startswith(PREFIX):
                continue
            try:
                values[name] = variables[name]
            except Exception as exc:  # pylint: disable=broad-except
                values[name] = exc
        return values
