"""Our run beside the authors' released results: per target model of the run that the release holds, each
condition both have, in the evaluations the release keeps (self-recognition against each comparator and
TruthfulQA), our mean ± sd over seeds and the released one, in the release's protocol (the authors' own).

The authors' release has results of models the paper does not report (e.g. Qwen2.5 at 0.5B, 7B and 14B, base
self-recognition and a few TruthfulQA runs), so a one-GPU preset's run is compared with what they measured at
the same size (target `release_compare`, docs/release.md).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from .. import chains
from ..io import atomic_path, read_csv, write_csv
from ..report import DASH, format_cell

COMPARE_COLUMNS = [
    "model",
    "eval",
    "chain",
    "condition",
    "protocol",
    "metric",
    "ours_mean",
    "ours_sd",
    "ours_n",
    "released_mean",
    "released_sd",
    "released_n",
    "difference",
]
# The metric of each evaluation kind that the figures draw.
METRICS = {"self_recognition": "score", "truthfulqa": "misalignment"}


def _metric(eval_name: str) -> str | None:
    kind = "self_recognition" if eval_name.startswith("self_recognition-") else eval_name
    return METRICS.get(kind)


def _summaries(paths: Iterable[str | Path], protocol: str) -> dict[tuple[str, str, str], dict[str, str]]:
    """(eval, model, chain) -> the summary row of the protocol's headline metric (whole evaluation)."""
    out = {}
    for path in paths:
        for row in read_csv(path):
            if row["protocol"] == protocol and row.get("subgroup", "") == "" and row["metric"] == _metric(row["eval"]):
                out[(row["eval"], row["model"], row["chain"])] = row
    return out


def _number(text: str) -> float | None:
    try:
        value = float(text)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(value) else value


def compare_rows(
    ours: Iterable[str | Path], released: Iterable[str | Path], models: Iterable[str], protocol: str
) -> list[dict[str, Any]]:
    """A row (COMPARE_COLUMNS) per (model, evaluation, condition) that both our summary tables and the
    release's per-condition tables hold, in the release's protocol; `difference` is ours − released."""
    mine, theirs = _summaries(ours, protocol), _summaries(released, protocol)
    wanted = set(models)
    rows = []
    for key in sorted(set(mine) & set(theirs), key=lambda k: (k[1], k[0], chains.order(k[2]), k[2])):
        eval_name, model, chain = key
        if model not in wanted:
            continue
        a, b = mine[key], theirs[key]
        ours_mean, released_mean = _number(a["mean"]), _number(b["mean"])
        rows.append(
            {
                "model": model,
                "eval": eval_name,
                "chain": chain,
                "condition": chains.label(chain),
                "protocol": protocol,
                "metric": _metric(eval_name),
                "ours_mean": ours_mean,
                "ours_sd": _number(a["sd"]),
                "ours_n": int(a["n"]),
                "released_mean": released_mean,
                "released_sd": _number(b["sd"]),
                "released_n": int(b["n"]),
                "difference": None if ours_mean is None or released_mean is None else ours_mean - released_mean,
            }
        )
    return rows


def compare_markdown(rows: Sequence[Mapping[str, Any]], models: Iterable[str], release_source: str) -> str:
    """The comparison as Markdown: a table per model; a model the release holds nothing comparable of says so."""
    lines = [
        "# Our run beside the authors' released results",
        "",
        f"Release: {release_source}. Mean ± sample sd over seeds (n), in the authors' protocol; difference = ours − "
        "released. Only conditions both hold are listed.",
        "",
    ]
    for model in models:
        mine = [r for r in rows if r["model"] == model]
        lines += [f"## {model}", ""]
        if not mine:
            lines += ["The release holds no condition of this model in self-recognition or TruthfulQA.", ""]
            continue
        lines += ["| evaluation | condition | ours | released | difference |", "|---|---|---|---|---|"]
        for r in mine:
            difference = DASH if r["difference"] is None else f"{r['difference']:+.3f}"
            lines.append(
                f"| {r['eval']} ({r['metric']}) | {r['condition']} (`{r['chain']}`) "
                f"| {format_cell(r['ours_mean'], r['ours_sd'], r['ours_n'])} "
                f"| {format_cell(r['released_mean'], r['released_sd'], r['released_n'])} | {difference} |"
            )
        lines.append("")
    return "\n".join(lines)


def write_comparison(
    ours: Iterable[str | Path],
    released: Iterable[str | Path],
    *,
    models: list[str],
    protocol: str,
    release_source: str,
    csv_out: str | Path,
    markdown_out: str | Path,
) -> list[dict[str, Any]]:
    rows = compare_rows(ours, released, models, protocol)
    write_csv(csv_out, rows, COMPARE_COLUMNS)
    with atomic_path(markdown_out) as tmp:
        tmp.write_text(compare_markdown(rows, models, release_source), encoding="utf-8")
    return rows
