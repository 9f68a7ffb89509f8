"""Paths, target lists and rule parameters of the reviewer path (rules/release.smk keeps rules only).

Every output lives under `results/release/`; the figures drawn depend on the data, so `release_figures`
asks the figure plan (written by the checkpoint `release_plan`) for them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from ..io import read_csv
from .figures import AUTHORS_FIGURES, DRAW, MODEL_FIGURES, model_settings

RELEASE = "results/release"
RAW = f"{RELEASE}/raw"
EVALS = f"{RELEASE}/eval"
TABLES = f"{RELEASE}/tables"
IMPORT_TABLES = {
    "truthfulqa_per_file": f"{TABLES}/truthfulqa_per_file.csv",
    "self_recognition_per_file": f"{TABLES}/self_recognition_per_file.csv",
    "truthfulqa_per_condition": f"{TABLES}/truthfulqa_per_condition.csv",
    "self_recognition_per_condition": f"{TABLES}/self_recognition_per_condition.csv",
    "truthfulqa_grid": f"{TABLES}/truthfulqa_grid.csv",
    "truthfulqa_tidy": f"{TABLES}/truthfulqa_tidy.csv",
    "self_recognition_tidy": f"{TABLES}/self_recognition_tidy.csv",
}
REPORTS = {
    "unmapped": f"{RELEASE}/unmapped_files.csv",
    "duplicates": f"{RELEASE}/duplicates.csv",
    "authors_lists": f"{RELEASE}/authors_lists.json",
}
PLAN = f"{RELEASE}/figure_plan.csv"
FIGURE_EXTENSIONS = ("png", "pdf")
MODEL_TABLES = {kind: f"{TABLES}/{{model}}/{kind}_summary.csv" for kind in ("truthfulqa", "self_recognition")}
FIGURE = {ext: f"{RELEASE}/figures/{{model}}/{{figure}}.{ext}" for ext in FIGURE_EXTENSIONS}
AUTHORS_FIGURE = {ext: f"{RELEASE}/authors_figures/{{name}}.{ext}" for ext in FIGURE_EXTENSIONS}
BUNDLE = "results/bundle/{run_name}.tar.gz"


def fetch_folders(release: Mapping[str, Any]) -> list[str]:
    """Folders of the authors' repository a release must have (relative to its root)."""
    return [release["truthfulqa_dir"], release["self_recognition_dir"]]


def fetch_optional(release: Mapping[str, Any]) -> list[str]:
    """Files (globs) of the authors' repository copied when present: plotting scripts and the model table."""
    return [*release["plot_scripts"], release["model_table"]]


def import_layout(release: Mapping[str, Any]) -> dict[str, Any]:
    """Keyword arguments of `importer.import_release` for the authors' layout."""
    return {
        "truthfulqa_dir": release["truthfulqa_dir"],
        "self_recognition_dir": release["self_recognition_dir"],
        "model_aliases": release["models"],
        "article_id_patterns": release["article_id_patterns"],
        "self_recognition_dataset": release["self_recognition_dataset"],
        "plot_scripts": release["plot_scripts"],
        "model_table": release["model_table"],
    }


def figure_files(model: str, figure: str) -> list[str]:
    return [FIGURE[ext].format(model=model, figure=figure) for ext in FIGURE_EXTENSIONS]


def authors_figure_files(name: str) -> list[str]:
    return [AUTHORS_FIGURE[ext].format(name=name) for ext in FIGURE_EXTENSIONS]


def bundle_file(run_name: str) -> str:
    return BUNDLE.format(run_name=run_name)


def planned_figures(plan_csv: str | Path) -> list[str]:
    """Every figure file the plan draws (paper figures per model, then the authors' lists)."""
    files: list[str] = []
    for row in read_csv(plan_csv):
        if row["status"] != DRAW:
            continue
        if row["figure_set"] == MODEL_FIGURES:
            files += figure_files(row["model"], row["figure"])
        elif row["figure_set"] == AUTHORS_FIGURES:
            files += authors_figure_files(row["figure"])
    return files


def settings_param(release: Mapping[str, Any]) -> Callable[[Any], dict[str, Any]]:
    """A rule parameter: the figure settings (`figures.model_settings`) of the job's `model` wildcard."""
    return lambda wildcards: model_settings(release, wildcards.model)


def comparator_param(release: Mapping[str, Any]) -> Callable[[Any], str]:
    """A rule parameter: the 'other' source named on Figure 1's axis, from the model's Figure 1 evaluation."""
    return lambda wildcards: model_settings(release, wildcards.model)["self_recognition"].removeprefix(
        "self_recognition-"
    )
