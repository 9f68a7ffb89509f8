"""Tidy tables from evaluation JSONs, and per-condition summaries (mean, sample sd, n over seeds)."""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

from . import chains

TIDY_COLUMNS = ["eval", "model", "chain", "condition", "order", "seed", "protocol", "metric", "value"]
SUMMARY_COLUMNS = ["eval", "model", "chain", "condition", "order", "protocol", "metric", "mean", "sd", "n"]


def tidy_rows(result: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per (protocol, metric) of an evaluation JSON."""
    state = result["model_state"]
    rows = []
    for protocol, metrics in result["metrics"].items():
        for metric, value in metrics.items():
            if metric == "n":
                continue
            rows.append(
                {
                    "eval": result["eval"],
                    "model": state["model"],
                    "chain": state["chain"],
                    "condition": chains.label(state["chain"]),
                    "order": chains.order(state["chain"]),
                    "seed": state["seed"],
                    "protocol": protocol,
                    "metric": metric,
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


def summarise(rows: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Group tidy rows by condition, protocol and metric (over seeds), keeping first-seen order."""
    groups: dict[tuple, list[float]] = {}
    first: dict[tuple, dict[str, Any]] = {}
    for row in rows:
        key = (row["eval"], row["model"], row["chain"], row["protocol"], row["metric"])
        groups.setdefault(key, []).append(float(row["value"]))
        first.setdefault(key, row)
    out = []
    for key, values in groups.items():
        mean, sd = mean_sd(values)
        row = first[key]
        out.append(
            {
                **{c: row[c] for c in ("eval", "model", "chain", "condition", "order", "protocol", "metric")},
                "mean": mean,
                "sd": sd,
                "n": len(values),
                "values": values,
            }
        )
    return out


def read_summary(path: str, protocol: str, metric: str) -> list[dict[str, Any]]:
    """Per-condition rows of one protocol and metric from a summary CSV, numbers parsed."""
    import json

    from .io import read_csv

    out = []
    for row in read_csv(path):
        if row["protocol"] == protocol and row["metric"] == metric:
            out.append(
                {
                    **row,
                    "mean": float(row["mean"]),
                    "sd": float(row["sd"]),
                    "n": int(row["n"]),
                    "values": json.loads(row["values"]),
                }
            )
    if not out:
        raise ValueError(f"{path}: no rows for protocol {protocol!r}, metric {metric!r}")
    return out
