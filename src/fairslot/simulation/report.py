"""Presenting a run: the metrics table for the terminal and the plot of who held the hot
slots over time (matplotlib, Agg backend, so it works without a display)."""

from __future__ import annotations

import pathlib
from collections.abc import Mapping

from fairslot.simulation.engine import RunResult
from fairslot.simulation.metrics import summary_rows

__all__ = ["render_table", "write_plot"]


def render_table(scenario: str, seed: int, results: Mapping[str, RunResult],
                 elapsed: float, cpu: float) -> str:
    rows = summary_rows({p: r.metrics for p, r in results.items()})
    width = max(len(name) for name, _ in rows)
    head = f"{'metric':<{width}}  " + "  ".join(f"{p:>12}" for p in results)
    lines = [f"scenario {scenario}, seed {seed}: {elapsed:.1f} s wall, {cpu:.1f} s CPU", head,
             "-" * len(head)]
    lines += [f"{name:<{width}}  " + "  ".join(f"{v:>12}" for v in values)
              for name, values in rows]
    for policy, result in results.items():
        held = ", ".join(f"{k} {v}" for k, v in result.metrics.held_by.items())
        lines.append(f"{policy}: final holders of the hot slots: {held}")
    for policy, result in results.items():
        for agent, figures in result.gains.items():
            shown = ", ".join(f"{k} {v:g}" for k, v in figures.items())
            lines.append(f"{policy}: {agent}: {shown}")
    return "\n".join(lines)


def write_plot(results: Mapping[str, RunResult], path: pathlib.Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(results), figsize=(6 * len(results), 4), squeeze=False)
    for ax, (policy, result) in zip(axes[0], results.items(), strict=True):
        hours = [h for h, _ in result.timeline]
        for key in ("genuine", "t9_client", "buyer", "scalper"):
            ax.step(hours, [c.get(key, 0) for _, c in result.timeline], where="post",
                    label=key)
        ax.set_xscale("symlog", linthresh=0.01)
        ax.set_title(f"{policy}: who holds the hot slots")
        ax.set_xlabel("hours since release")
        ax.set_ylabel("slots held")
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
