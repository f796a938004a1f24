"""Plot of bench/compare.py's results: wall time, and the controller's CPU seconds, against node count.

Usage: python bench/plot.py RESULTS.json OUT.png (run with the tooling venv, which has matplotlib).
"""
from __future__ import annotations

import json
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (after the backend is chosen)

STYLES = {"baseline": {"color": "tab:red", "label": "get_url + unarchive (baseline)"},
          "ours": {"color": "tab:blue", "label": "nodeprep.cni.cni_plugins"}}


ROWS = (("wall", "wall time of ansible-playbook (s)"), ("cpu", "controller CPU, user + system (s)"))


def main(source: str, target: str) -> None:
    with open(source, encoding="utf-8") as handle:
        document = json.load(handle)
    transports = document["transports"]
    figure, axes = plt.subplots(len(ROWS), len(transports), figsize=(6 * len(transports), 4.5 * len(ROWS)), squeeze=False)
    for column, (transport, entry) in enumerate(sorted(transports.items())):
        for (key, label), axis in zip(ROWS, axes[:, column]):
            for phase, line in (("first", "-"), ("rerun", "--")):
                for approach, style in STYLES.items():
                    points = sorted((int(scenario.split("/")[1]), row[approach][key])
                                    for scenario, row in entry["table"].items()
                                    if scenario.startswith(phase + "/") and key in row.get(approach, {}))
                    if points:
                        axis.plot([p[0] for p in points], [p[1] for p in points], line, marker="o", color=style["color"],
                                  label="%s, %s" % (style["label"], "first install" if phase == "first" else "re-run"))
            axis.set_title("%s transport, median of %d rounds" % (transport, entry.get("rounds", document["rounds"])))
            axis.set_xlabel("nodes (forks = nodes)")
            axis.set_ylabel(label)
            axis.set_ylim(bottom=0)
            axis.grid(True, alpha=0.3)
            if axis.get_legend_handles_labels()[0]:  # results from before the CPU was measured have none
                axis.legend(fontsize=7)
    figure.tight_layout()
    figure.savefig(target, dpi=100)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
