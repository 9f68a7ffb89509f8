"""Training curves of a model: the loss at every optimizer step of each trained stage, seeds overlaid, with the
scheduler's learning rate on a twin axis, from the adapters' training records (`training_meta.json`). Every
number drawn is also in the CSV written beside the figure."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from . import chains
from .io import read_json, write_csv
from .plot import COLOURS, _pyplot, _save

CURVE_COLUMNS = ["model", "chain", "condition", "seed", "step", "loss", "learning_rate"]
TRAINING_META = "training_meta.json"
# Panels per row, and the height of a row of panels (inches): a full text width, as the paper's figures.
COLUMNS = 4
PANEL_HEIGHT = 1.9
WIDTH = 7.0
LR_STYLE = {"color": "black", "linestyle": ":", "linewidth": 0.9}


def curve_rows(model: str, adapters: Iterable[str | Path]) -> tuple[list[dict[str, Any]], dict[str, dict[str, Any]]]:
    """Tidy rows (CURVE_COLUMNS: one per chain, seed and step) of the adapters' training records, and each
    chain's recipe (the hyperparameters of its last stage). An adapter without a training record (an API
    model's fine-tuning job) has no curve."""
    rows: list[dict[str, Any]] = []
    recipes: dict[str, dict[str, Any]] = {}
    for adapter in adapters:
        path = Path(adapter) / TRAINING_META
        if not path.is_file():
            continue
        meta = read_json(path)
        chain, seed = Path(adapter).parent.name, int(meta["seed"])
        recipes.setdefault(chain, meta.get("hyperparameters") or {})
        rates = meta.get("learning_rate_per_step") or []
        for step, loss in enumerate(meta.get("loss_per_step") or [], start=1):
            rate = rates[step - 1] if step - 1 < len(rates) else None
            rows.append(
                {
                    "model": model,
                    "chain": chain,
                    "condition": chains.label(chain),
                    "seed": seed,
                    "step": step,
                    "loss": loss,
                    "learning_rate": "" if rate is None else rate,
                }
            )
    return rows, recipes


def recipe_note(recipe: Mapping[str, Any]) -> list[str]:
    """The schedule of a stage in a few words: peak learning rate, scheduler, warmup, epochs, effective batch."""
    if not recipe:
        return []
    batch = recipe.get("per_device_batch_size", 1) * recipe.get("gradient_accumulation_steps", 1)
    return [
        f"lr {recipe.get('learning_rate', 0):.0e} {recipe.get('lr_scheduler', '')}",
        f"warmup {recipe.get('warmup_steps', 0)}",
        f"{recipe.get('epochs', '?')} epoch(s)",
        f"batch {batch}",
    ]


def draw_training_curves(
    rows: Sequence[dict[str, Any]],
    recipes: Mapping[str, Mapping[str, Any]],
    *,
    title: str,
    png: str | Path,
    pdf: str | Path,
    csv: str | Path,
) -> None:
    """One panel per trained chain (in the order the chains first appear in `rows`): the loss against the
    optimizer step of each seed (one line per seed, in the colour of the chain's experimental order), and the
    learning rate of the first seed on a twin axis when recorded; the recipe's schedule in the panel's title."""
    write_csv(csv, rows, CURVE_COLUMNS)
    plt = _pyplot()
    ordered = list(dict.fromkeys(row["chain"] for row in rows))
    if not ordered:
        raise ValueError(f"{title}: no training record with a loss per step")
    ncols = min(COLUMNS, len(ordered))
    nrows = math.ceil(len(ordered) / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=figure_size(len(ordered)), layout="constrained", squeeze=False)
    for ax in axes.flat[len(ordered) :]:
        ax.set_visible(False)
    notes = {chain: recipe_note(recipes.get(chain, {})) for chain in ordered}
    # The schedule most stages share goes in the title; a panel notes only what differs from it.
    shared = [", ".join(n) for n in notes.values()]
    common = max(set(shared), key=shared.count).split(", ") if any(shared) else []
    for index_panel, (ax, chain) in enumerate(zip(axes.flat, ordered, strict=False)):
        chain_rows = [r for r in rows if r["chain"] == chain]
        seeds = sorted({int(r["seed"]) for r in chain_rows})
        colour = COLOURS.get(chains.order(chain), COLOURS["other"])
        for index, seed in enumerate(seeds):
            points = [(int(r["step"]), float(r["loss"])) for r in chain_rows if int(r["seed"]) == seed]
            ax.plot(
                [p[0] for p in points],
                [p[1] for p in points],
                color=colour,
                linewidth=0.9,
                alpha=0.9 if len(seeds) == 1 else 0.45 + 0.5 * index / (len(seeds) - 1),
                label=f"seed {seed}",
            )
        rates = [
            (int(r["step"]), float(r["learning_rate"]))
            for r in chain_rows
            if int(r["seed"]) == seeds[0] and r["learning_rate"] not in ("", None)
        ]
        if rates:
            twin = ax.twinx()
            twin.plot([p[0] for p in rates], [p[1] for p in rates], **LR_STYLE)
            twin.set_ylim(bottom=0)
            twin.ticklabel_format(axis="y", style="sci", scilimits=(0, 0))
            twin.locator_params(axis="y", nbins=3)
            twin.tick_params(labelsize=5.5, length=2)
            twin.spines["right"].set_visible(True)
            twin.yaxis.get_offset_text().set_fontsize(5.5)
        differs = [part for part in notes[chain] if part not in common]
        own = f"\n{', '.join(differs)}" if differs else ""
        ax.set_title(f"{chains.label(chain)}  (n={len(seeds)}){own}", fontsize=6.5)
        ax.tick_params(labelsize=6, length=2)
        ax.locator_params(axis="y", nbins=4)
        if index_panel >= len(ordered) - ncols:
            ax.set_xlabel("optimizer step", fontsize=6.5)
        if index_panel % ncols == 0:
            ax.set_ylabel("loss", fontsize=6.5)
    fig.suptitle(
        f"{title}\nloss per optimizer step, one line per seed (lighter: lower seed); dotted, right axis: learning "
        f"rate" + (f"\nschedule: {', '.join(common)}" if common else ""),
        fontsize=7.5,
    )
    _save(fig, png, pdf)
    plt.close(fig)


def figure_size(n_chains: int) -> tuple[float, float]:
    """The size of a figure with `n_chains` panels (inches): the page's width, a panel's height per row and a
    title's."""
    nrows = math.ceil(n_chains / min(COLUMNS, n_chains))
    return WIDTH, PANEL_HEIGHT * nrows + 0.6
