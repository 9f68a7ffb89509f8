"""Which figures of the released data can be drawn, and the authors' own figures redrawn from their lists.

`plan_figures` decides, per model the release holds (and per model configured under `release.figures`),
which of the paper's figures have data and gives the reason for every one skipped; `plan_authors_figures`
does the same for each list of result files in the authors' plotting scripts. `draw_authors_figure` draws one
such list: a bar per entry, the mean ± sd over the bar's files of each file's re-scored number.
"""

from __future__ import annotations

import textwrap
from collections.abc import Iterable, Mapping
from pathlib import Path, PurePosixPath
from typing import Any

from .. import chains
from ..aggregate import mean_sd
from ..io import read_csv, read_json

PLAN_COLUMNS = ["figure_set", "model", "figure", "status", "reason", "self_recognition"]
DRAW, SKIP = "draw", "skip"
MODEL_FIGURES, AUTHORS_FIGURES = "paper", "authors"
# The paper's figures drawn per model and the per-condition rows each one needs.
NEEDS = {
    "fig1_self_recognition": "self_recognition",
    "fig2_truthfulqa": "truthfulqa",
    "fig3a_prevention": "prevention",
    "fig3b_reversal": "reversal",
}


def model_settings(release: Mapping[str, Any], model: str) -> dict[str, Any]:
    """A model's figure settings: its Figure 1 evaluation and the conditions its figures draw, in order."""
    own = release.get("figures", {}).get(model) or {}
    return {
        "self_recognition": own.get("self_recognition", release["self_recognition_eval"]),
        "chains": list(own.get("chains") or release["figure_chains"]),
    }


def figure_models(release: Mapping[str, Any], summary_rows: Iterable[Mapping[str, Any]]) -> list[str]:
    """The models configured under `release.figures`, then every other model the release holds, by name."""
    configured = list(release.get("figures", {}))
    held = sorted({row["model"] for row in summary_rows} - set(configured))
    return configured + held


def plan_figures(
    release: Mapping[str, Any],
    figures: Iterable[str],
    truthfulqa_summary: list[Mapping[str, Any]],
    self_recognition_summary: list[Mapping[str, Any]],
    protocol: str,
) -> list[dict[str, Any]]:
    """One row per (model, figure): draw, or skip with the reason (what the release lacks for it).

    `*_summary`: rows of the imported per-condition tables (eval, model, chain, protocol, metric, …)."""
    tqa = [r for r in truthfulqa_summary if r["protocol"] == protocol and r["metric"] == "misalignment"]
    sr = [r for r in self_recognition_summary if r["protocol"] == protocol and r["metric"] == "score"]
    plan = []
    for model in figure_models(release, [*tqa, *sr]):
        settings = model_settings(release, model)
        wanted = set(settings["chains"])
        model_tqa = [r for r in tqa if r["model"] == model]
        model_sr = [r for r in sr if r["model"] == model]
        drawn_tqa = [r for r in model_tqa if r["chain"] in wanted]
        for figure in figures:
            need = NEEDS.get(figure)
            reason = ""
            if need is None:
                reason = f"{figure} is not drawn from released results (only {', '.join(NEEDS)})"
            elif not model_tqa and not model_sr:
                reason = f"the release holds no result file mapped to {model}"
            elif need == "self_recognition":
                reason = _self_recognition_gap(model, settings, model_sr)
            elif not drawn_tqa:
                reason = (
                    f"none of {model}'s {len(model_tqa)} TruthfulQA conditions is among its figure conditions"
                    if model_tqa
                    else f"the release holds no TruthfulQA result of {model}"
                )
            elif need in ("prevention", "reversal") and not any(chains.order(r["chain"]) == need for r in drawn_tqa):
                arrow = "X→EM" if need == "prevention" else "EM→X"
                reason = f"no {arrow} ({need}) condition of {model} among its figure conditions with TruthfulQA results"
            plan.append(
                {
                    "figure_set": MODEL_FIGURES,
                    "model": model,
                    "figure": figure,
                    "status": SKIP if reason else DRAW,
                    "reason": reason,
                    "self_recognition": settings["self_recognition"],
                }
            )
    return plan


def _self_recognition_gap(model: str, settings: Mapping[str, Any], model_sr: list[Mapping[str, Any]]) -> str:
    """Why Figure 1 of a model cannot be drawn, or '' when it can."""
    name, wanted = settings["self_recognition"], set(settings["chains"])
    if any(r["eval"] == name and r["chain"] in wanted for r in model_sr):
        return ""
    held = sorted({r["eval"] for r in model_sr})
    if not held:
        return f"the release holds no self-recognition result of {model}"
    if any(r["eval"] == name for r in model_sr):
        return f"none of {model}'s {name} conditions is among its figure conditions"
    return f"the release holds no {name} result of {model} (it holds {', '.join(held)}; set release.figures)"


# ------------------------------------------------------------------------------- authors' figures --


def _per_file_numbers(truthfulqa_per_file: str | Path, self_recognition_per_file: str | Path) -> dict[str, dict]:
    """Released file -> {kind, value, chain} from the per-file tables (value: misalignment or score)."""
    numbers: dict[str, dict] = {}
    for path, kind, column in (
        (truthfulqa_per_file, "truthfulqa", "misalignment"),
        (self_recognition_per_file, "self_recognition", "score"),
    ):
        for row in read_csv(path):
            if row.get(column) not in (None, ""):
                numbers[row["file"]] = {"kind": kind, "value": float(row[column]), "chain": row.get("chain", "")}
    return numbers


def authors_bar_rows(figure: Mapping[str, Any], numbers: Mapping[str, Mapping[str, Any]]) -> tuple[list[dict], list]:
    """Summary rows (condition = the authors' bar label) of one listed figure, and the bars left out (label,
    reason). A bar's value is the mean ± sample sd over its released files."""
    rows, left_out = [], []
    for bar in figure["bars"]:
        released = [f["released"] for f in bar["files"]]
        missing = [f["listed"] for f in bar["files"] if f["released"] not in numbers]
        if missing:
            left_out.append((bar["label"], f"not released: {', '.join(missing)}"))
            continue
        values = [numbers[f]["value"] for f in released]
        bar_chains = {numbers[f]["chain"] for f in released}
        chain = bar_chains.pop() if len(bar_chains) == 1 else ""
        mean, sd = mean_sd(values)
        rows.append(
            {
                "condition": bar["label"],
                "chain": chain,
                "order": chains.order(chain) if chain else "other",
                "mean": mean,
                "sd": sd,
                "n": len(values),
                "values": values,
                "kind": numbers[released[0]]["kind"],
            }
        )
    return rows, left_out


def plan_authors_figures(
    authors_lists: list[Mapping[str, Any]], truthfulqa_per_file: str | Path, self_recognition_per_file: str | Path
) -> list[dict[str, Any]]:
    """One row per list in the authors' plotting scripts: draw (naming any bar left out), or skip with why."""
    numbers = _per_file_numbers(truthfulqa_per_file, self_recognition_per_file)
    plan = []
    for figure in authors_lists:
        rows, left_out = authors_bar_rows(figure, numbers)
        kinds = {r["kind"] for r in rows}
        notes = [f"bar {label!r} left out ({why})" for label, why in left_out]
        if not rows:
            status, reason = SKIP, "; ".join(notes) or "the list has no bar"
        elif len(kinds) > 1:
            status, reason = SKIP, "its bars mix TruthfulQA and self-recognition files"
        else:
            status, reason = DRAW, "; ".join(notes)
        plan.append(
            {
                "figure_set": AUTHORS_FIGURES,
                "model": "",
                "figure": figure["name"],
                "status": status,
                "reason": reason,
                "self_recognition": "",
            }
        )
    return plan


def draw_authors_figure(
    name: str,
    *,
    authors_lists: str | Path,
    truthfulqa_per_file: str | Path,
    self_recognition_per_file: str | Path,
    protocol: str,
    png: str | Path,
    pdf: str | Path,
) -> list[dict[str, Any]]:
    """Redraw one list of the authors' plotting scripts from the re-scored released files; returns its rows."""
    from ..plot import bar_per_condition

    figure = next((f for f in read_json(authors_lists) if f["name"] == name), None)
    if figure is None:
        raise ValueError(f"{authors_lists}: no list named {name!r}")
    rows, _ = authors_bar_rows(figure, _per_file_numbers(truthfulqa_per_file, self_recognition_per_file))
    if not rows:
        raise ValueError(f"{name}: none of its bars has released files")
    truthfulqa = rows[0]["kind"] == "truthfulqa"
    bar_per_condition(
        rows,
        ylabel=(
            f"TruthfulQA misalignment (1 − p, {protocol})"
            if truthfulqa
            else f"Self-recognition score (share choosing its own summary, {protocol})"
        ),
        title=textwrap.fill(
            f"The authors' {figure['figure']}.png ({PurePosixPath(figure['script']).name}: {figure['variable']}), "
            "redrawn from the released files",
            80,
        ),
        png=str(png),
        pdf=str(pdf),
        chance=0.5,
        xlabel="Bar as labelled in the authors' plotting script",
    )
    return rows
