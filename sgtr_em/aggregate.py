"""Tidy tables from evaluation JSONs, and per-condition summaries (mean, sample sd, n over seeds).

Both are long: a tidy row is one (model, condition, seed, protocol, metric) value; a summary row one
(model, condition, protocol, metric) over seeds. A metric broken down by question, subject or claimed
identity (`misalignment:<question>` in an evaluation JSON) has its breakdown in the `subgroup` column ('' for
the whole evaluation), and a self-recognition evaluation names its comparator in the `comparator` column.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

from . import chains
from .evaluations import table_kind
from .io import read_csv

TIDY_COLUMNS = [
    "eval",
    "model",
    "chain",
    "condition",
    "order",
    "comparator",
    "seed",
    "protocol",
    "metric",
    "subgroup",
    "value",
]
SUMMARY_COLUMNS = [
    "eval",
    "model",
    "chain",
    "condition",
    "order",
    "comparator",
    "protocol",
    "metric",
    "subgroup",
    "mean",
    "sd",
    "n",
]
# An evaluation JSON's metric `name:part` is the metric `name` of one question, subject or identity.
SUBGROUP_SEPARATOR = ":"


def comparator_of(result: Mapping[str, Any]) -> str | None:
    """The 'other' source of a self-recognition evaluation (its `other_source`, else the name after
    `self_recognition-`); None for other evaluations."""
    _, other = table_kind(str(result["eval"]))
    if other is None:
        return None
    return str(result.get("other_source") or other)


def tidy_rows(result: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per (protocol, metric, subgroup) of an evaluation JSON."""
    state = result["model_state"]
    comparator = comparator_of(result) or ""
    rows = []
    for protocol, metrics in result["metrics"].items():
        for name, value in metrics.items():
            if name == "n":
                continue
            metric, _, subgroup = name.partition(SUBGROUP_SEPARATOR)
            rows.append(
                {
                    "eval": result["eval"],
                    "model": state["model"],
                    "chain": state["chain"],
                    "condition": chains.label(state["chain"]),
                    "order": chains.order(state["chain"]),
                    "comparator": comparator,
                    "seed": state["seed"],
                    "protocol": protocol,
                    "metric": metric,
                    "subgroup": subgroup,
                    "value": value,
                }
            )
    return rows


def mean_sd(values: list[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (ddof 1; NaN for a single value)."""
    n = len(values)
    mean = sum(values) / n
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1)) if n > 1 else float("nan")
    return mean, sd


GROUP_COLUMNS = ("eval", "model", "chain", "protocol", "metric", "subgroup")


def summarise(rows: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Group tidy rows by condition, protocol, metric and subgroup (over seeds), keeping first-seen order.
    Each summary row also holds its per-seed `values` (in memory only: the tidy table has them as rows)."""
    import pandas as pd

    frame = pd.DataFrame(list(rows), dtype=object)
    if frame.empty:
        return []
    described = [c for c in SUMMARY_COLUMNS[:-3] if c in frame]
    # a group column a row lacks is "" (tidy rows of an evaluation without subgroups have none)
    labels = list(dict.fromkeys([*GROUP_COLUMNS, *described]))
    frame = frame.reindex(columns=[*labels, "value"], fill_value="")
    frame[labels] = frame[labels].astype(object).fillna("")
    out = []
    for _, group in frame.groupby(list(GROUP_COLUMNS), sort=False):
        values = [float(v) for v in group["value"]]
        mean, sd = mean_sd(values)
        first = group.iloc[0]
        out.append(
            {
                **{c: first[c] if c in described else "" for c in SUMMARY_COLUMNS[:-3]},
                "mean": mean,
                "sd": sd,
                "n": len(values),
                "values": values,
            }
        )
    return out


def read_summary(path: str, protocol: str, metric: str, subgroup: str = "") -> list[dict[str, Any]]:
    """Per-condition rows of one protocol, metric and subgroup ('' = the whole evaluation), numbers parsed:
    from a tidy table (summarised here, with each condition's per-seed `values`) or from a summary table
    (`values` empty: the seeds are in its tidy table)."""
    rows = [
        r
        for r in read_csv(path)
        if r["protocol"] == protocol and r["metric"] == metric and r.get("subgroup", "") == subgroup
    ]
    if rows and "value" in rows[0]:
        out = summarise(rows)
    else:
        out = [{**r, "mean": float(r["mean"]), "sd": float(r["sd"]), "n": int(r["n"]), "values": []} for r in rows]
    if not out:
        raise ValueError(f"{path}: no rows for protocol {protocol!r}, metric {metric!r}")
    return out
