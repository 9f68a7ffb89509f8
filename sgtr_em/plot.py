"""The paper's figures from per-condition summaries. Every number drawn is also in a CSV."""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from . import chains
from .evaluations import evaluation_drawn_in
from .io import atomic_path

FIGSIZE = (7.0, 4.2)  # inches: a full text width in a paper; fonts stay legible printed at this size
DPI = 200  # PNG pixels = FIGSIZE × DPI (1400 × 840), fixed: no tight bounding box
COLOURS = {
    "base": "#7f7f7f",
    "em": "#d62728",
    "x": "#1f77b4",
    "prevention": "#2ca02c",
    "reversal": "#9467bd",
    "other": "#8c564b",
}
# Legend text of each experimental order (chains.order), in the order the paper discusses them.
ORDER_LABELS = {
    "base": "Base model",
    "em": "EM only",
    "x": "X only",
    "prevention": "X→EM (prevention)",
    "reversal": "EM→X (reversal)",
    "other": "other chain",
}
# The chance line sits under the base-model line (which is wider, dotted and on top), so where the two meet
# both stay visible.
CHANCE_STYLE = {"color": "black", "linestyle": "--", "linewidth": 0.8, "zorder": 1.5}
BASE_LINE_STYLE = {"color": COLOURS["base"], "linestyle": (0, (1, 1.2)), "linewidth": 2.0, "zorder": 2.5}
# Venues reject PDFs with Type 3 fonts: embed TrueType (Type 42) instead.
FONT_TYPE = 42
# The paper's published number of a condition, drawn on its bar.
PAPER_STYLE = {"marker": "D", "s": 22, "facecolor": "white", "edgecolor": "black", "linewidth": 1.0, "zorder": 5}
# How a figure names a protocol (the authors' is the paper's).
PROTOCOL_NAMES = {"reference": "authors' protocol", "logprob": "logprob protocol"}


def protocol_name(protocol: str) -> str:
    return PROTOCOL_NAMES.get(protocol, protocol)


N_LABEL_BOX = {"boxstyle": "round,pad=0.15", "facecolor": "white", "edgecolor": "none", "alpha": 0.85}


def _pyplot():
    import logging

    import matplotlib

    # Embedding TrueType fonts runs fontTools' subsetter, which logs every glyph at INFO.
    logging.getLogger("fontTools").setLevel(logging.WARNING)

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams.update(
        {
            "font.size": 9,
            "axes.spines.top": False,
            "axes.spines.right": False,
            "legend.fontsize": 7.5,
            "pdf.fonttype": FONT_TYPE,
            "ps.fonttype": FONT_TYPE,
        }
    )
    return plt


def _figure(plt):
    return plt.subplots(figsize=FIGSIZE, layout="constrained")


# Where the data of the figures being drawn came from (`figure_source`), written above each of them.
_SOURCE: list[str] = []


@contextmanager
def figure_source(note: str | None) -> Iterator[None]:
    """Every figure saved inside says where its data came from (e.g. the authors' release at a commit) in a
    line above it; None adds nothing."""
    _SOURCE.append(note or "")
    try:
        yield
    finally:
        _SOURCE.pop()


def _save(fig, png: str | Path, pdf: str | Path) -> None:
    if _SOURCE and _SOURCE[-1]:
        fig.suptitle(_SOURCE[-1], fontsize=7, color="#555555")
    for path, fmt in ((png, "png"), (pdf, "pdf")):
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format=fmt, dpi=DPI, metadata={"CreationDate": None} if fmt == "pdf" else None)


def _wrap(label: str, width: int = 34) -> str:
    """Axis labels on two lines when long, so they fit the axes' height."""
    import textwrap

    return textwrap.fill(label, width)


def _err(sd: float) -> float:
    return 0.0 if math.isnan(sd) else sd


def _n_label(ax, x: float, n: int) -> None:
    """`n=…` at the foot of a bar, on a white box so it reads on any bar height or colour."""
    ax.annotate(
        f"n={n}",
        (x, 0),
        xytext=(0, 2),
        textcoords="offset points",
        ha="center",
        va="bottom",
        fontsize=6,
        bbox=N_LABEL_BOX,
        zorder=4,
    )


def _note_if_flat(ax, rows: Sequence[dict[str, Any]]) -> None:
    """Say so on the plot when every value drawn is the same (all zero, or all equal), so that flat bars
    are not read as missing ones."""
    values = [row["mean"] for row in rows] + [v for row in rows for v in row.get("values") or []]
    if not values or max(values) - min(values) > 1e-12:
        return
    text = "All values are zero" if values[0] == 0 else f"All values are equal ({values[0]:.3g})"
    ax.text(0.5, 0.92, text, transform=ax.transAxes, ha="center", va="top", fontsize=8, bbox=N_LABEL_BOX, zorder=5)


def nothing_to_draw(*, title: str, note: str, png: str | Path, pdf: str | Path) -> None:
    """A figure that says why it has no bars (e.g. every answer excluded from the judge's rate), so that a run
    whose evaluation measured nothing still finishes and the figure does not read as lost."""
    plt = _pyplot()
    fig, ax = _figure(plt)
    ax.set_axis_off()
    ax.set_title(_wrap(title, 70), fontsize=10)
    ax.text(0.5, 0.5, _wrap(note, 60), transform=ax.transAxes, ha="center", va="center", fontsize=9)
    _save(fig, png, pdf)
    plt.close(fig)


def _top(ylim: tuple[float, float] | None, rows: list[dict[str, Any]]) -> tuple[float, float]:
    """The y range, widened above its top only when a bar with its error bar would be cut off. Without a
    fixed range (an unbounded metric, e.g. entropy in bits): from 0 to the highest bar plus a margin, at least 1."""
    highest = max(
        [row["mean"] + _err(row["sd"]) for row in rows] + [max(row.get("values") or [0.0]) for row in rows], default=0.0
    )
    if not ylim:
        return (0.0, max(1.0, highest * 1.1))
    return (ylim[0], max(ylim[1], highest + 0.03))


def bar_per_condition(
    summary: list[dict[str, Any]],
    *,
    ylabel: str,
    title: str,
    png: str,
    pdf: str,
    chance: float | None = None,
    ylim: tuple[float, float] | None = (0, 1),
    xlabel: str = "Condition (finetuning stages in training order)",
    paper: Mapping[str, float] | None = None,
) -> None:
    """Bars of mean ± sample sd over seeds for each condition, coloured by experimental order (legend),
    seeds as dots, n at the foot of each bar, an optional chance line, and `paper` (chain -> the paper's
    published mean) as a marker on the bars of the conditions it has."""
    plt = _pyplot()
    fig, ax = _figure(plt)
    labels = [row["condition"] for row in summary]
    means = [row["mean"] for row in summary]
    errs = [_err(row["sd"]) for row in summary]
    colours = [COLOURS.get(row["order"], "#333333") for row in summary]
    positions = range(len(summary))
    ax.bar(
        positions,
        means,
        yerr=errs,
        color=colours,
        capsize=3,
        edgecolor="black",
        linewidth=0.5,
        error_kw={"elinewidth": 1.0},
    )
    for pos, row in zip(positions, summary, strict=True):
        ax.scatter([pos] * len(row.get("values", [])), row.get("values", []), color="black", s=6, zorder=3)
        _n_label(ax, pos, row["n"])
    from matplotlib.patches import Patch

    handles = [
        Patch(facecolor=COLOURS[o], edgecolor="black", linewidth=0.5, label=ORDER_LABELS[o])
        for o in ORDER_LABELS
        if any(row["order"] == o for row in summary)
    ]
    if chance is not None:
        handles.append(ax.axhline(chance, **CHANCE_STYLE, label=f"chance ({chance:g})"))
    handles.append(
        ax.errorbar([], [], yerr=[], fmt="o", color="black", markersize=2, capsize=2, label="seeds; bar = mean ± sd")
    )
    paper = paper or {}
    published = [
        (pos, paper[row["chain"]]) for pos, row in zip(positions, summary, strict=True) if row["chain"] in paper
    ]
    if published:
        handles.append(
            ax.scatter([p for p, _ in published], [v for _, v in published], **PAPER_STYLE, label="paper (published)")
        )
    ax.set_title(title, fontsize=10)
    fig.legend(handles=handles, loc="outside lower center", ncol=min(len(handles), 4), frameon=False)
    ax.set_xticks(list(positions), labels, rotation=35, ha="right", rotation_mode="anchor")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(_wrap(ylabel))
    ax.set_ylim(*_top(ylim, [*summary, *({"mean": v, "sd": 0.0} for _, v in published)]))
    ax.yaxis.grid(True, linewidth=0.3, alpha=0.5)
    ax.set_axisbelow(True)
    _note_if_flat(ax, summary)
    _save(fig, png, pdf)
    plt.close(fig)


def paper_values(
    published: Mapping[str, Any] | None, kind: str, protocol: str, comparator: str | None = None
) -> dict[str, float]:
    """The paper's published means per chain for one evaluation kind (a model's entry of
    published_numbers.yaml), when they were measured with the drawn protocol (and comparator)."""
    entry = ((published or {}).get("evals") or {}).get(kind) or {}
    if entry.get("protocol", "reference") != protocol or entry.get("comparator", comparator) != comparator:
        return {}
    return {chain: float(value["mean"]) for chain, value in (entry.get("values") or {}).items()}


def paired_bars(
    groups: Sequence[tuple[str, dict[str, Any] | None, dict[str, Any] | None]],
    *,
    reference_label: str,
    treatment_label: str,
    ylabel: str,
    title: str,
    png: str,
    pdf: str,
    baseline: dict[str, Any] | None = None,
    chance: float | None = None,
    xlabel: str = "Intervention X",
) -> None:
    """For each intervention: the reference condition (EM only) beside the treatment (X→EM or EM→X)."""
    plt = _pyplot()
    fig, ax = _figure(plt)
    width = 0.38
    drawn: list[dict[str, Any]] = []
    handles: dict[str, Any] = {}
    for i, (_name, reference, treatment) in enumerate(groups):
        for offset, row, colour, label in (
            (-width / 2, reference, COLOURS["em"], reference_label),
            (width / 2, treatment, COLOURS["prevention" if "→EM" in treatment_label else "reversal"], treatment_label),
        ):
            if row is None:
                continue
            bars = ax.bar(
                i + offset,
                row["mean"],
                width,
                yerr=_err(row["sd"]),
                color=colour,
                capsize=3,
                edgecolor="black",
                linewidth=0.5,
                label=label,
            )
            handles.setdefault(label, bars)
            ax.scatter([i + offset] * len(row.get("values", [])), row.get("values", []), color="black", s=6, zorder=3)
            _n_label(ax, i + offset, row["n"])
            drawn.append(row)
    if baseline is not None:
        handles["Base model"] = ax.axhline(baseline["mean"], **BASE_LINE_STYLE, label="Base model")
    if chance is not None:
        handles[f"chance ({chance:g})"] = ax.axhline(chance, **CHANCE_STYLE, label=f"chance ({chance:g})")
    handles["seeds; bar = mean ± sd"] = ax.errorbar(
        [], [], yerr=[], fmt="o", color="black", markersize=2, capsize=2, label="seeds; bar = mean ± sd"
    )
    ax.set_xticks(range(len(groups)), [g[0] for g in groups])
    ax.set_xlabel(xlabel)
    ax.set_ylabel(_wrap(ylabel))
    ax.set_title(title, fontsize=10)
    ax.set_ylim(*_top((0, 1), drawn))
    ax.yaxis.grid(True, linewidth=0.3, alpha=0.5)
    ax.set_axisbelow(True)
    _note_if_flat(ax, drawn)
    fig.legend(
        handles=list(handles.values()),
        labels=list(handles),
        loc="outside lower center",
        ncol=min(len(handles), 5),
        frameon=False,
    )
    _save(fig, png, pdf)
    plt.close(fig)


def intervention_groups(
    summary: list[dict[str, Any]], order: str
) -> tuple[list[tuple[str, dict[str, Any] | None, dict[str, Any]]], dict[str, Any] | None]:
    """Pair each X→EM (prevention) or EM→X (reversal) condition with its EM-only reference."""
    by_chain = {row["chain"]: row for row in summary}
    baseline = by_chain.get(chains.BASE)
    groups = []
    for row in summary:
        if row["order"] != order:
            continue
        stages = row["chain"].split("+")
        em_token = stages[1] if order == "prevention" else stages[0]
        x_token = stages[0] if order == "prevention" else stages[1]
        groups.append((chains.parse_stage(x_token).label, by_chain.get(em_token), row))
    return groups, baseline


def system_prompt_rows(summary: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows of the system-prompt ablation: base, then each condition trained on data in a non-default
    system-prompt variant, preceded by its default-variant counterpart (e.g. EM, EM[none])."""
    by_chain = {row["chain"]: row for row in summary}
    out: list[dict[str, Any]] = [by_chain[chains.BASE]] if chains.BASE in by_chain else []
    for row in summary:
        stages = chains.parse_chain(row["chain"])
        if all(stage.variant == "default" for stage in stages):
            continue
        default = "+".join(stage.token.split(".")[0] for stage in stages)
        for candidate in (by_chain.get(default), row):
            if candidate is not None and candidate not in out:
                out.append(candidate)
    return out


def draw_figure(
    figure: str,
    *,
    self_recognition_summary: str | None,
    truthfulqa_summary: str | None,
    self_recognition_protocol: str,
    truthfulqa_protocol: str,
    comparator: str,
    png: str,
    pdf: str,
    model: str | None = None,
    optional_summary: str | None = None,
    optional_protocol: str | None = None,
    published: Mapping[str, Any] | None = None,
    extensions: Sequence[str] = (),
) -> None:
    """One target model's figure (all rows when `model` is None), from tidy tables (summarised per condition
    here; a summary table draws no seed dots). Fig 1: self-recognition per condition; Fig 2: TruthfulQA misalignment per condition;
    Fig 3a: prevention (X→EM vs EM only); Fig 3b: reversal (EM→X vs EM only); Fig 4: EM-judge misalignment per
    condition; Fig 5: entropy of the claimed identity per condition; Fig 6: MMLU accuracy per condition (Figs 4-6
    from `optional_summary`); Fig 7: the system-prompt ablation (conditions with a non-default variant beside
    their default counterparts). Each axis names the protocol drawn (`optional_protocol`: that of Fig 4-6, by
    default their table's first); `published` (the model's entry of published_numbers.yaml) puts the paper's
    numbers on Figs 1 and 2 where they were measured with the drawn protocol. Conditions in `extensions` (the
    authors did not run them) are marked † and the title says so."""
    from .aggregate import read_summary as read_all

    marked = list(extensions)

    def read_summary(path: str, protocol: str, metric: str) -> list[dict[str, Any]]:
        rows = [r for r in read_all(path, protocol, metric) if model is None or r["model"] == model]
        if not rows:
            raise ValueError(f"{path}: no {protocol} {metric} rows for model {model!r}")
        return [{**r, "condition": chains.mark_extension(r["condition"], r["chain"], marked)} for r in rows]

    def titled(title: str, chains_drawn: Sequence[str]) -> str:
        """The title, with a second line saying what † means when a drawn condition is an extension."""
        if not any(chain in marked for chain in chains_drawn):
            return title
        return f"{title}\n{chains.EXTENSION_MARK} extension: a condition the authors did not run"

    def only_protocol(path: str, metric: str) -> str:
        """The protocol of an optional evaluation's table (e.g. the judge's scoring)."""
        from .io import read_csv

        protocols = list(dict.fromkeys(row["protocol"] for row in read_csv(path) if row["metric"] == metric))
        if not protocols:
            raise ValueError(f"{path}: no {metric} rows")
        return protocols[0]

    tqa_label = f"TruthfulQA misalignment (1 − p, {protocol_name(truthfulqa_protocol)})"
    own = evaluation_drawn_in(figure)
    if own is not None and own.plot_title:
        if optional_summary is None:
            raise ValueError(f"{figure} needs its summary table")
        protocol = optional_protocol or only_protocol(optional_summary, own.metric)
        names = {"protocol": protocol, "protocol_name": protocol_name(protocol)}
        try:
            rows = read_summary(optional_summary, protocol, own.metric)
        except ValueError:
            if not own.empty_note:
                raise
            # e.g. every answer excluded from the judge's rate: a figure that says so, not a failed run
            nothing_to_draw(title=own.plot_title, note=own.empty_note.format(**names), png=png, pdf=pdf)
            return
        bar_per_condition(
            rows,
            ylabel=str(own.axis).format(**names),
            title=titled(own.plot_title, [r["chain"] for r in rows]),
            png=png,
            pdf=pdf,
            chance=own.chance,
            ylim=(0, 1) if own.bounded else None,
        )
        return
    if self_recognition_summary is None or truthfulqa_summary is None:
        raise ValueError(f"{figure} needs the self-recognition and TruthfulQA summary tables")
    if figure == "fig1_self_recognition":
        rows = read_summary(self_recognition_summary, self_recognition_protocol, "score")
        bar_per_condition(
            rows,
            ylabel=f"Self-recognition vs {comparator} ({protocol_name(self_recognition_protocol)})",
            title=titled("Fig 1. Self-recognition per condition (mean ± sd over seeds)", [r["chain"] for r in rows]),
            png=png,
            pdf=pdf,
            chance=0.5,
            paper=paper_values(published, "self_recognition", self_recognition_protocol, comparator),
        )
    elif figure == "fig2_truthfulqa":
        rows = read_summary(truthfulqa_summary, truthfulqa_protocol, "misalignment")
        bar_per_condition(
            rows,
            ylabel=tqa_label,
            title=titled(
                "Fig 2. TruthfulQA misalignment per condition (mean ± sd over seeds)", [r["chain"] for r in rows]
            ),
            png=png,
            pdf=pdf,
            chance=0.5,
            paper=paper_values(published, "truthfulqa", truthfulqa_protocol),
        )
    elif figure == "fig7_system_prompt":
        rows = system_prompt_rows(read_summary(truthfulqa_summary, truthfulqa_protocol, "misalignment"))
        if len(rows) < 2:
            raise ValueError(
                "fig7_system_prompt: the grid has no condition trained in a non-default system-prompt variant"
            )
        bar_per_condition(
            rows,
            ylabel=tqa_label,
            title=titled("Fig 7. System-prompt ablation: TruthfulQA misalignment", [r["chain"] for r in rows]),
            png=png,
            pdf=pdf,
            chance=0.5,
        )
    elif figure in ("fig3a_prevention", "fig3b_reversal"):
        rows = read_summary(truthfulqa_summary, truthfulqa_protocol, "misalignment")
        order = "prevention" if figure == "fig3a_prevention" else "reversal"
        groups, baseline = intervention_groups(rows, order)
        groups = [(chains.mark_extension(name, row["chain"], marked), ref, row) for name, ref, row in groups]
        title = (
            "Fig 3a. Prevention: X then EM vs EM only"
            if order == "prevention"
            else "Fig 3b. Reversal: EM then X vs EM only"
        )
        paired_bars(
            groups,
            reference_label="EM only",
            treatment_label="X→EM" if order == "prevention" else "EM→X",
            ylabel=tqa_label,
            title=titled(title, [row["chain"] for _, _, row in groups]),
            png=png,
            pdf=pdf,
            baseline=baseline,
            chance=0.5,
            xlabel=(
                "X trained before EM (identity interventions and benign baselines)"
                if order == "prevention"
                else "X trained after EM (identity interventions and benign baselines)"
            ),
        )
    else:
        raise ValueError(f"unknown figure {figure!r}")
