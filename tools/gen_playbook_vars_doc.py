#!/usr/bin/env python
# Copyright: nodeprep.cni contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Generate docs/docsite/rst/playbook_variables.rst from playbooks/vars/argument_specs.yml.

The page is the spec's rendering (plugins/plugin_utils/_playbook_vars.py render_rst), so the playbooks'
variables are documented where they are declared; tests/unit/test_playbook_vars_spec.py fails when the
committed page differs from what this writes.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PAGE = REPO / "docs" / "docsite" / "rst" / "playbook_variables.rst"
sys.path.insert(0, str(REPO / ".cache" / "collections"))

from ansible_collections.nodeprep.cni.plugins.plugin_utils._playbook_vars import load_spec, render_rst  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only report whether the page is current")
    args = parser.parse_args()
    page = render_rst(load_spec())
    if args.check:
        current = PAGE.is_file() and PAGE.read_text() == page
        print("%s is %s" % (PAGE.relative_to(REPO), "current" if current else "out of date: run tools/gen_playbook_vars_doc.py"))
        return 0 if current else 1
    PAGE.write_text(page)
    print("wrote %s" % PAGE.relative_to(REPO))
    return 0


if __name__ == "__main__":
    sys.exit(main())
