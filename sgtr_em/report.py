"""The results summary (Markdown, laid out like the paper's tables) and the report's figure titles.

Per target model, one table: a row per condition (our grid's chains, then conditions only the paper has),
per evaluation a column per protocol with mean ± sample sd (n seeds), each labelled with its protocol: the
authors' protocol first, the paper's published number beside it where it exists (`published_numbers.yaml`,
docs/methodology.md §8), then our other protocols. Missing cells are "—".
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import chains
from .chains import EXTENSION_MARK, mark_extension
from .evaluations import EVALUATIONS, table_kind
from .io import atomic_path, read_csv
from .published import published_for

DASH = "—"

# Evaluation kind -> (metric shown, column title), and the metrics shown beside it (sgtr_em.evaluations).
METRICS: dict[str, tuple[str, str]] = {key: (e.metric, e.column) for key, e in EVALUATIONS.items()}
EXTRA_METRICS: dict[str, list[tuple[str, str]]] = {key: list(e.extra_metrics) for key, e in EVALUATIONS.items()}

# Protocols in column order (the authors' first) and how a column names them.
PROTOCOL_ORDER = ("reference", "logprob")
PROTOCOL_LABELS = {"reference": "authors' protocol", "logprob": "logprob protocol"}
# What a protocol is, per evaluation kind, printed under a table that shows it.
PROTOCOL_NOTES: dict[tuple[str, str], str] = {
    (
        "self_recognition",
        "reference",
    ): "one reply decoded as the authors did (open models sampled, GPT models at T 0), chosen self only if it is exactly the self summary's number",
    ("self_recognition", "logprob"): "next-token probabilities of 1 and 2 over both orderings, normalised over the two",
    ("truthfulqa", "reference"): "one sampled answer token as the authors drew it; anything but A or B counts as wrong",
    (
        "truthfulqa",
        "logprob",
    ): "next-token probabilities over both orders; probability outside A and B counts as wrong (the renormalised value is in the tables as misalignment_normalised)",
    ("em_questions", "reference"): "the judge's reply at T 0, its number parsed as the authors' em_eval.py does",
    ("em_questions", "logprob"): "Betley et al.'s probability-weighted score from the judge's top-20 log-probabilities",
}


def protocol_label(protocol: str) -> str:
    return PROTOCOL_LABELS.get(protocol, protocol)


def ordered_protocols(protocols: Sequence[str]) -> list[str]:
    """Distinct protocols, the authors' first, then ours, then any other in first-seen order."""
    distinct = list(dict.fromkeys(protocols))
    rank = {p: i for i, p in enumerate(PROTOCOL_ORDER)}
    return sorted(distinct, key=lambda p: (rank.get(p, len(rank)), distinct.index(p)))


# What each column means, printed under every model's table.
READING: dict[str, str] = {key: e.reading for key, e in EVALUATIONS.items()}

# Readable titles of the figures (report labels); a figure not listed shows its file name.
FIGURE_TITLES: dict[str, str] = {
    **{e.figure: e.figure_title for e in EVALUATIONS.values() if e.figure and e.figure_title},
    "fig3a_prevention": "Fig 3a: prevention (X then EM vs EM only)",
    "fig3b_reversal": "Fig 3b: reversal (EM then X vs EM only)",
    "fig7_system_prompt": "Fig 7: system-prompt ablation (TruthfulQA misalignment)",
}


def figure_title(figure: str) -> str:
    return FIGURE_TITLES.get(figure, figure)


def figure_labels(wildcards: Any) -> dict[str, str]:
    """A figure's labels in the HTML report (a variant's names its protocol)."""
    protocol = getattr(wildcards, "protocol", None)
    title = figure_title(wildcards.figure) + (f" ({protocol_label(protocol)})" if protocol else "")
    return {"figure": title, "model": wildcards.model}


def format_cell(mean: float | None, sd: float | None = None, n: int | None = None, digits: int = 3) -> str:
    """`mean ± sd (n=…)`; the sd is left out when unknown or NaN (one seed), the whole cell is — when missing."""
    if mean is None or (isinstance(mean, float) and math.isnan(mean)):
        return DASH
    out = f"{mean:.{digits}f}"
    if sd is not None and not math.isnan(sd):
        out += f" ± {sd:.{digits}f}"
    if n is not None:
        out += f" (n={n})"
    return out


@dataclass(frozen=True)
class Column:
    header: str
    kind: str
    table: str | None = None  # ours: table, protocol, metric
    protocol: str | None = None
    metric: str | None = None
    published: Mapping[str, Any] | None = None  # the paper's values per chain


def _float(text: str) -> float:
    try:
        return float(text)
    except (TypeError, ValueError):
        return float("nan")


def _index(rows: list[dict[str, str]]) -> dict[tuple[str, str, str, str], dict[str, str]]:
    """Whole-evaluation rows (not a question's, subject's or identity's) by model, chain, protocol, metric."""
    return {(r["model"], r["chain"], r["protocol"], r["metric"]): r for r in rows if not r.get("subgroup")}


def _first(rows: list[dict[str, str]], key: str, **match: str) -> str | None:
    for row in rows:
        if all(row.get(k) == v for k, v in match.items()):
            return row[key]
    return None


EXTENSION_NOTE = f"{EXTENSION_MARK} extension: a condition of this project that the authors did not run (no result file of theirs names it)."


def model_table(
    model: str,
    tables: Mapping[str, list[dict[str, str]]],
    protocols: Mapping[str, str],
    published: Mapping[str, Any] | None,
    extensions: Sequence[str] = (),
) -> tuple[list[str], list[list[str]], list[Column]]:
    """Header, rows and columns of one model's table. Per evaluation: a column per protocol it has for this
    model (the authors' first; `protocols` names the one to show when it has none), the paper's number right
    after our column of the paper's protocol. Conditions in `extensions` are marked †."""
    columns: list[Column] = []
    for table, rows in tables.items():
        kind, comparator = table_kind(table)
        metric, title = METRICS.get(kind, (None, table))
        mine = [r for r in rows if r["model"] == model]
        if metric is None:
            metric = _first(mine, "metric") or ""
            title = f"{table}: {metric}"
        title = title.format(comparator=comparator)
        shown = ordered_protocols([r["protocol"] for r in mine if r["metric"] == metric])
        if not shown:
            shown = [protocols.get(kind) or _first(rows, "protocol", metric=metric) or ""]
        in_table = [Column(f"{title} ({protocol_label(p)})", kind, table, p, metric) for p in shown]
        for extra, extra_title in EXTRA_METRICS.get(kind, []):
            extra_shown = ordered_protocols([r["protocol"] for r in mine if r["metric"] == extra])
            in_table += [Column(f"{extra_title} ({protocol_label(p)})", kind, table, p, extra) for p in extra_shown]
        paper = ((published or {}).get("evals") or {}).get(kind)
        if paper and paper.get("comparator", comparator) == comparator:
            paper_protocol = paper.get("protocol", "reference")
            at = next((i + 1 for i, c in enumerate(in_table) if c.protocol == paper_protocol), 1)
            label = f"{title}: paper ({protocol_label(paper_protocol)})"
            in_table.insert(at, Column(label, kind, protocol=paper_protocol, published=paper.get("values") or {}))
        columns += in_table
    # Rows: our conditions in the tables' (grid) order, then conditions only the paper reports.
    order: dict[str, str] = {}
    for rows in tables.values():
        for row in rows:
            if row["model"] == model:
                order.setdefault(row["chain"], row["condition"])
    for column in columns:
        for chain in column.published or {}:
            if chain not in order:
                try:
                    order[chain] = chains.label(chain)
                except chains.ChainError:
                    order[chain] = chain
    index = {table: _index(rows) for table, rows in tables.items()}
    body = []
    for chain, condition in order.items():
        cells = [mark_extension(condition, chain, extensions), f"`{chain}`"]
        for column in columns:
            if column.published is not None:
                value = column.published.get(chain)
                cells.append(format_cell(value.get("mean"), value.get("sd"), value.get("n")) if value else DASH)
                continue
            assert column.table is not None and column.protocol is not None and column.metric is not None
            ours = index[column.table].get((model, chain, column.protocol, column.metric))
            cells.append(format_cell(_float(ours["mean"]), _float(ours["sd"]), int(ours["n"])) if ours else DASH)
        body.append(cells)
    return ["Condition", "Chain", *[c.header for c in columns]], body, columns


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    def line(cells: Sequence[str]) -> str:
        return "| " + " | ".join(str(c).replace("|", "\\|") for c in cells) + " |"

    return "\n".join([line(header), "|" + "|".join(["---"] * len(header)) + "|", *[line(r) for r in rows]])


INTRO = (
    "One table per target model: a row per condition (chain of finetuning stages, in training order; "
    "`X+em-unpop` = prevention, `em-unpop+X` = reversal), per evaluation a column per scoring protocol. Each "
    "cell is the mean ± sample standard deviation over training seeds with the number of seeds n; — marks a "
    "condition that was not run (ours) or not published (paper). Each column's header names its protocol: "
    "the authors' protocol (their sampling and parsing; the paper's numbers use it) comes first with the "
    "paper's number beside it, then the logprob protocol (deterministic next-token probabilities). Every "
    "number of ours comes from `results/tables/*_summary.csv`."
)


@dataclass
class Section:
    """One model's part of the summary."""

    model: str
    identity: str | None
    intro: str
    header: list[str]
    rows: list[list[str]]
    notes: list[str]


def build_summary(
    tables: Mapping[str, str | Path],
    *,
    models: Sequence[str],
    model_ids: Mapping[str, str] | None = None,
    protocols: Mapping[str, str] | None = None,
    published: Mapping[str, Any] | None = None,
    extensions: Mapping[str, Sequence[str]] | None = None,
) -> list[Section]:
    """Per model: the table and its reading notes. `tables`: table name -> its per-condition summary CSV;
    `protocols`: per evaluation kind, the protocol shown for a model the table has no rows of (others: the
    table's first); `extensions`: per model, the conditions the authors did not run (marked †)."""
    loaded = {name: read_csv(path) for name, path in tables.items()}
    protocols = dict(protocols or {})
    model_ids = dict(model_ids or {})
    sections = []
    for model in models:
        identity = model_ids.get(model)
        paper = published_for(published, model, identity)
        own_extensions = list((extensions or {}).get(model, []))
        header, rows, columns = model_table(model, loaded, protocols, paper, own_extensions)
        if paper and paper.get("note"):
            intro = f"Paper: {paper['note']}"
        elif published is not None:
            intro = "No published numbers for this model (the paper reports Qwen2.5-32B-Instruct and GPT-4.1)."
        else:
            intro = ""
        notes = [READING[k] for k in dict.fromkeys(c.kind for c in columns) if k in READING]
        if any(row[0].endswith(EXTENSION_MARK) for row in rows):
            notes.insert(0, EXTENSION_NOTE)
        shown = dict.fromkeys((c.kind, c.protocol) for c in columns if c.published is None and c.protocol)
        for kind, protocol in shown:
            if (kind, protocol) in PROTOCOL_NOTES:
                notes.append(
                    f"{METRICS[kind][1].format(comparator='…')} ({protocol_label(protocol)}): {PROTOCOL_NOTES[kind, protocol]}."
                )
        evals = (paper or {}).get("evals") or {}
        for column in columns:
            what = evals.get(column.kind, {}).get("what") if column.published is not None else None
            if what:
                notes.append(f"{column.header}: {what} ({evals[column.kind].get('protocol', '?')} protocol).")
        sections.append(Section(model, identity if identity != model else None, intro, header, rows, notes))
    return sections


CLAIMS_INTRO = (
    "The paper's claims, checked on this run (config `claims`; every number in `results/claims/<model>.csv`, a "
    "forest plot beside it). Ours: the effect (treatment − reference) with its interval from a hierarchical "
    "bootstrap (seeds, then items within a seed). Paper: the same effect from its published means, with the "
    "protocol it used. Verdict: reproduced (the interval lies on the paper's side of 0), not reproduced (on the "
    "other side, or further than the margin from the paper's effect), inconclusive (it includes 0), not run."
)


def claims_tables(claims: Mapping[str, str | Path]) -> dict[str, tuple[list[str], list[list[str]]]]:
    """Per model, the claims table (header, rows) from its claims CSV."""
    from .claims import read_claims, summary_table

    return {model: summary_table(read_claims(path)) for model, path in claims.items()}


def results_summary(
    tables: Mapping[str, str | Path],
    *,
    run_name: str = "",
    published: Mapping[str, Any] | None = None,
    claims: Mapping[str, str | Path] | None = None,
    **kwargs: Any,
) -> str:
    """The summary as Markdown: the claims first (`claims`: model -> claims CSV), then the tables
    (arguments as `build_summary`)."""
    lines = [f"# Results summary{f': {run_name}' if run_name else ''}", ""]
    if claims:
        lines += ["## Claims", "", CLAIMS_INTRO, ""]
        for model, (header, rows) in claims_tables(claims).items():
            lines += [f"### {model}", "", markdown_table(header, rows), ""]
    lines += [INTRO, ""]
    if published and published.get("source"):
        lines += [f"Published numbers: {published['source'].strip()}", ""]
    for section in build_summary(tables, published=published, **kwargs):
        lines += [f"## {section.model}" + (f" (`{section.identity}`)" if section.identity else ""), ""]
        if section.intro:
            lines += [section.intro, ""]
        lines += [markdown_table(section.header, section.rows), ""]
        lines += [f"- {note}" for note in section.notes]
        lines.append("")
    return "\n".join(lines).rstrip("\n") + "\n"


def _html_text(text: str) -> str:
    """Escape, then render `code` spans."""
    import html
    import re

    return re.sub(r"`([^`]+)`", r"<code>\1</code>", html.escape(text, quote=False))


def _html_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    return [
        "<table><tr>" + "".join(f"<th>{_html_text(h)}</th>" for h in header) + "</tr>",
        *("<tr>" + "".join(f"<td>{_html_text(c)}</td>" for c in row) + "</tr>" for row in rows),
        "</table>",
    ]


def results_summary_html(
    tables: Mapping[str, str | Path],
    *,
    run_name: str = "",
    published: Mapping[str, Any] | None = None,
    claims: Mapping[str, str | Path] | None = None,
    **kwargs: Any,
) -> str:
    """The same summary as a self-contained HTML page (shown inline by `snakemake --report`)."""
    title = f"Results summary{f': {run_name}' if run_name else ''}"
    parts = [
        "<!DOCTYPE html>",
        '<html><head><meta charset="utf-8"><title>' + _html_text(title) + "</title>",
        "<style>body{font-family:sans-serif;font-size:14px;margin:1.5em;max-width:80em}"
        "table{border-collapse:collapse;margin:0.5em 0}th,td{border:1px solid #bbb;padding:3px 7px;text-align:right}"
        "td:first-child,td:nth-child(2),th{text-align:left}th{background:#eee}code{font-size:12px}</style></head><body>",
        f"<h1>{_html_text(title)}</h1>",
    ]
    if claims:
        parts += ["<h2>Claims</h2>", f"<p>{_html_text(CLAIMS_INTRO)}</p>"]
        for model, (header, rows) in claims_tables(claims).items():
            parts += [f"<h3>{_html_text(model)}</h3>", *_html_table(header, rows)]
    parts.append(f"<p>{_html_text(INTRO)}</p>")
    if published and published.get("source"):
        parts.append(f"<p>Published numbers: {_html_text(published['source'].strip())}</p>")
    for section in build_summary(tables, published=published, **kwargs):
        parts.append(
            f"<h2>{_html_text(section.model)}"
            + (f" (<code>{_html_text(section.identity)}</code>)" if section.identity else "")
            + "</h2>"
        )
        if section.intro:
            parts.append(f"<p>{_html_text(section.intro)}</p>")
        parts += _html_table(section.header, section.rows)
        parts.append("<ul>" + "".join(f"<li>{_html_text(n)}</li>" for n in section.notes) + "</ul>")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def write_results_summary(markdown: str | Path, html: str | Path | None = None, **kwargs: Any) -> str:
    """Write the Markdown summary (and its HTML rendering); returns the Markdown."""
    text = results_summary(**kwargs)
    outputs = [(markdown, text)] + ([(html, results_summary_html(**kwargs))] if html else [])
    for path, content in outputs:
        with atomic_path(path) as tmp:
            Path(tmp).write_text(content, encoding="utf-8")
    return text
