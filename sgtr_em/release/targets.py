"""Paths, target lists and rule parameters of the reviewer path (rules/release.smk keeps rules only).

Every output lives under `results/release/`; the figures drawn depend on the data, so `release_figures`
asks the figure plan (written by the checkpoint `release_plan`) for them.
"""

from __future__ import annotations

import re
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
# Per released model, restricted to its figure conditions: tidy rows (the figures draw them, seeds as dots)
# and their per-condition summaries.
MODEL_TABLES = {
    **{kind: f"{TABLES}/{{model}}/{kind}.csv" for kind in ("truthfulqa", "self_recognition")},
    **{f"{kind}_summary": f"{TABLES}/{{model}}/{kind}_summary.csv" for kind in ("truthfulqa", "self_recognition")},
}
FIGURE = {ext: f"{RELEASE}/figures/{{model}}/{{figure}}.{ext}" for ext in FIGURE_EXTENSIONS}
AUTHORS_FIGURE = {ext: f"{RELEASE}/authors_figures/{{name}}.{ext}" for ext in FIGURE_EXTENSIONS}
BUNDLE = "results/bundle/{run_name}.tar.gz"
# Our run beside the released results (target `release_compare`): a row per model, evaluation and condition.
COMPARE = {"csv": f"{RELEASE}/compare.csv", "markdown": f"{RELEASE}/compare.md"}
# The paper's claims (config `claims`) checked on the released results, per released model.
CLAIMS = f"{RELEASE}/claims/{{model}}.csv"
CLAIMS_FIGURE = {ext: f"{RELEASE}/claims/{{model}}.{ext}" for ext in FIGURE_EXTENSIONS}
# The released evaluations a claim can use (the rest are reported as not run).
RELEASED_EVALUATIONS = ("self_recognition", "truthfulqa")


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


def planned_claims(plan_csv: str | Path, claims: Mapping[str, Any]) -> list[str]:
    """The claims table and forest plot of every model the plan draws a paper figure of (none without claims)."""
    if not claims["list"]:
        return []
    models = dict.fromkeys(
        row["model"] for row in read_csv(plan_csv) if row["figure_set"] == MODEL_FIGURES and row["status"] == DRAW
    )
    return [path.format(model=m) for m in models for path in (CLAIMS, *CLAIMS_FIGURE.values())]


def planned_outputs(plan_csv: str | Path, claims: Mapping[str, Any]) -> list[str]:
    """What `release_figures` makes once the plan is known: the planned figures and the claims."""
    return [*planned_figures(plan_csv), *planned_claims(plan_csv, claims)]


def release_claims(claims: Mapping[str, Any], release: Mapping[str, Any], model: str) -> list[dict[str, Any]]:
    """The configured claims about a released model (fields of `sgtr_em.claims.Claim`), on the released
    results: self-recognition claims use the model's Figure 1 evaluation, every claim the release's protocol;
    claims on an evaluation the release has no results of are not run."""
    out = []
    for entry in claims["list"]:
        if entry.get("models") is not None and model not in entry["models"]:
            continue
        kind = "self_recognition" if entry["evaluation"].startswith("self_recognition") else entry["evaluation"]
        fields = {k: v for k, v in entry.items() if k != "models"}
        evaluation = model_settings(release, model)["self_recognition"] if kind == "self_recognition" else kind
        reason = None
        if kind not in RELEASED_EVALUATIONS:
            reason = f"the release holds no {kind} results (only {' and '.join(RELEASED_EVALUATIONS)} are imported)"
        out.append({**fields, "evaluation": evaluation, "protocol": release["protocol"], "not_run": reason})
    return out


def claims_param(claims: Mapping[str, Any], release: Mapping[str, Any]) -> Callable[[Any], list[dict[str, Any]]]:
    """A rule parameter: `release_claims` of the job's `model` wildcard."""
    return lambda wildcards: release_claims(claims, release, wildcards.model)


def source_note(release: Mapping[str, Any]) -> str:
    """The line above every figure of the reviewer path: whose data it was drawn from, at which commit (the
    commit in the archive URL of the authors' repository), or from which local folder or bundle."""
    source = release["source"]
    if "url" in source:
        commit = re.search(r"(?<![0-9a-f])([0-9a-f]{40})(?![0-9a-f])", source["url"])
        where = f"at commit {commit.group(1)[:12]}" if commit else f"from {source['url']}"
        return f"Drawn from the authors' released results {where}, not from a run of this workflow"
    path = str(source["path"])
    what = "a bundle of released results" if path.endswith((".tar.gz", ".tgz")) else "released results"
    return f"Drawn from {what} at {path}, not from a run of this workflow"


def claims_figure_title(wildcards: Any) -> str:
    return f"The paper's claims on the released results of {wildcards.model}"


def settings_param(release: Mapping[str, Any]) -> Callable[[Any], dict[str, Any]]:
    """A rule parameter: the figure settings (`figures.model_settings`) of the job's `model` wildcard."""
    return lambda wildcards: model_settings(release, wildcards.model)


def comparator_param(release: Mapping[str, Any]) -> Callable[[Any], str]:
    """A rule parameter: the 'other' source named on Figure 1's axis, from the model's Figure 1 evaluation."""
    return lambda wildcards: model_settings(release, wildcards.model)["self_recognition"].removeprefix(
        "self_recognition-"
    )
