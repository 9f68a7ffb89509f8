"""Forest plot of one model's claims: our effect with its interval per claim, the paper's effect beside it,
a zero line, the verdict and what decided it at the right. Claims not run are listed under the plot. Every
number drawn is in the claims CSV it is drawn from (its `reason` column says the same at length)."""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .claims import INCONCLUSIVE, INCREASE, NOT_REPRODUCED, NOT_RUN, REPRODUCED
from .plot import CHANCE_STYLE, FIGSIZE, _pyplot, _save

VERDICT_COLOURS = {REPRODUCED: "#2ca02c", NOT_REPRODUCED: "#d62728", INCONCLUSIVE: "#7f7f7f"}
ROW_HEIGHT = 0.42  # inches per claim
MIN_HEIGHT = 2.6


def _label(row: dict[str, Any]) -> str:
    return textwrap.fill(row["claim"], 46)


def short_reason(row: dict[str, Any]) -> str:
    """What decided a checked claim's verdict, in a few words (the CSV's `reason` at length): where the
    interval lies against 0 and the paper's effect, or answers outside the answer format."""
    verdict, low, high = row["verdict"], row["ci_low"], row["ci_high"]
    rates = [r for r in (row.get("invalid_rate_treatment"), row.get("invalid_rate_reference")) if r is not None]
    limit = row.get("max_invalid_rate")
    if verdict == INCONCLUSIVE and limit is not None and rates and max(rates) > limit:
        return f"{max(rates):.0%} answers off-format"
    if verdict == INCONCLUSIVE:
        return "interval includes 0"
    if verdict == REPRODUCED:
        return "interval excludes 0"
    wrong_side = high < 0 if row.get("direction") == INCREASE else low > 0
    return "opposite to the paper" if wrong_side else "far from paper's effect"


def draw_forest(rows: Sequence[dict[str, Any]], *, png: str | Path, pdf: str | Path, title: str) -> None:
    """One row per checked claim (in the claims' order, first on top): a dot at our effect with its interval
    as a bar, coloured by verdict; an open diamond at the paper's effect where it has one; a line at 0."""
    plt = _pyplot()
    checked = [r for r in rows if r["verdict"] != NOT_RUN and r.get("effect") is not None]
    not_run = [r for r in rows if r not in checked]
    height = max(MIN_HEIGHT, ROW_HEIGHT * len(checked) + 1.8)
    fig, ax = plt.subplots(figsize=(FIGSIZE[0], height), layout="constrained")
    positions = list(range(len(checked)))[::-1]
    for y, row in zip(positions, checked, strict=True):
        colour = VERDICT_COLOURS.get(row["verdict"], "#333333")
        effect, low, high = row["effect"], row["ci_low"], row["ci_high"]
        ax.errorbar(
            [effect], [y], xerr=[[effect - low], [high - effect]], fmt="o", color=colour, markersize=4, capsize=3
        )
        if row.get("paper_effect") is not None:
            ax.scatter([row["paper_effect"]], [y], marker="D", s=30, facecolors="none", edgecolors="black", zorder=4)
        ax.annotate(
            f"{row['verdict']}\n{short_reason(row)}",
            xy=(1.0, y),
            xycoords=("axes fraction", "data"),
            xytext=(4, 0),
            textcoords="offset points",
            va="center",
            fontsize=6.5,
            linespacing=1.1,
            color=colour,
        )
    ax.axvline(0.0, **{**CHANCE_STYLE, "zorder": 1})
    ax.set_yticks(positions, [_label(r) for r in checked], fontsize=7)
    ax.set_ylim(-0.7, max(len(checked), 1) - 0.3)
    ax.set_xlabel("Effect: treatment − reference, in the claim's metric (see the claims CSV)")
    ax.xaxis.grid(True, linewidth=0.3, alpha=0.5)
    ax.set_axisbelow(True)
    ax.set_title(title, fontsize=10)
    confidence = next((r["confidence"] for r in checked if r.get("confidence")), 0.95)
    handles = [
        ax.errorbar([], [], xerr=[], fmt="o", color=colour, markersize=4, capsize=3, label=verdict)
        for verdict, colour in VERDICT_COLOURS.items()
        if any(r["verdict"] == verdict for r in checked)
    ]
    if any(r.get("paper_effect") is not None for r in checked):
        handles.append(
            ax.scatter([], [], marker="D", s=30, facecolors="none", edgecolors="black", label="paper's effect")
        )
    if checked:
        # Under the x label (the pad is in font sizes); an axes legend stays inside the layout's rectangle.
        ax.legend(
            handles=handles,
            title=f"ours: effect, {confidence:.0%} interval (hierarchical bootstrap)",
            title_fontsize=7.5,
            loc="upper center",
            bbox_to_anchor=(0.5, 0.0),
            borderaxespad=4.5,
            ncol=len(handles),
            frameon=False,
        )
    else:
        ax.set_yticks([])
        ax.text(0.5, 0.5, "No claim could be checked on these results", transform=ax.transAxes, ha="center")
    if not_run:
        listed = textwrap.fill(
            f"Not run ({len(not_run)}; reasons in the CSV): " + ", ".join(r["claim_id"] for r in not_run), 150
        )
        # Room at the foot of the figure for the list (the layout places everything else above it).
        foot = (listed.count("\n") + 1) * 0.13 + 0.08
        fig.get_layout_engine().set(rect=(0, foot / height, 1, 1 - foot / height))
        fig.text(0.01, 0.01, listed, fontsize=6, va="bottom")
    _save(fig, png, pdf)
    plt.close(fig)
