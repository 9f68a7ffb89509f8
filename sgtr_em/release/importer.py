"""Import of released results into our evaluation JSONs and tables.

Every released result file is re-scored from its contents into the per-file tables, whatever its name says;
the name grammar (`names`) then maps it to a condition (model, chain) and seed, or the file's row says why it
cannot. Where several series of files claim one condition, one is chosen (`series`: most seeds; then the one
the authors' plotting scripts draw; then the pipeline scripts' spelling) and becomes our evaluation JSONs
marked `protocol: reference` (so `aggregate.tidy_rows` reads them unchanged); the others stay in the per-file
tables and the duplicates report says which series each condition uses and why. A bundle of ours
(`bundle.make_bundle`) imports through the same path.
"""

from __future__ import annotations

import csv
import logging
import re
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import chains
from ..aggregate import SUMMARY_COLUMNS, TIDY_COLUMNS, mean_sd, summarise, tidy_rows
from ..io import InputError, read_json, sha256_file, write_csv, write_json
from .authors import authors_lists_of, authors_lists_record, read_model_table, read_plot_scripts, resolve_listed_paths
from .bundle import BUNDLE_MANIFEST, is_bundle
from .names import (
    LOCAL_MODEL_PREFIX,
    PROTOCOL,
    ReleasedState,
    SelfRecognitionName,
    UnmappedName,
    parse_self_recognition_name,
    parse_state,
    split_self_recognition_name,
    truthfulqa_spelling,
)
from .series import ReleasedFile, choose_series, group_series

log = logging.getLogger(__name__)

TRUTHFULQA_COLUMNS = ("question", "correct_answer", "incorrect_answer", "model_answer", "is_correct")
VALID_LETTERS = ("A", "B")

# status of a file in the per-file tables
IMPORTED = "imported"  # its condition's chosen series: an evaluation JSON, in the per-condition tables
ALTERNATIVE = "alternative"  # maps to a condition another series of files is chosen for
UNMAPPED = "unmapped"  # the name maps to no condition (the note says why)

_MAPPING_COLUMNS = ["model", "chain", "seed", "status", "note", "authors_lists"]
TRUTHFULQA_PER_FILE_COLUMNS = [
    "file",
    "spelling",
    *_MAPPING_COLUMNS[:3],
    "n",
    "n_correct",
    "n_invalid",
    "misalignment",
    "invalid_rate",
    *_MAPPING_COLUMNS[3:],
    "sha256",
]
SELF_RECOGNITION_PER_FILE_COLUMNS = [
    "file",
    "dataset",
    "framing",
    "judge",
    "self_source",
    "other_source",
    "eval",
    *_MAPPING_COLUMNS[:3],
    "n_articles",
    "n_self",
    "n_other",
    "n_invalid",
    "n_stray_keys",
    "score",
    *_MAPPING_COLUMNS[3:],
    "sha256",
]
UNMAPPED_COLUMNS = ["file", "kind", "reason"]
DUPLICATES_COLUMNS = ["eval", "model", "chain", "series", "seeds", "files", "used", "reason", "authors_lists"]


# ------------------------------------------------------------------------------- file contents --


def _parse_bool(value: str, where: str) -> bool:
    text = value.strip().lower()
    if text in ("true", "1", "1.0"):
        return True
    if text in ("false", "0", "0.0"):
        return False
    raise InputError(f"{where}: is_correct must be True or False, got {value!r}")


def read_truthfulqa_results(path: str | Path) -> list[dict[str, Any]]:
    """Rows of a released TruthfulQA results CSV. `is_correct` is taken as given (the A/B order was never
    stored); a reply that is not exactly `A` or `B` is invalid (and counted as it is in the file)."""
    with open(path, encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle)
        missing = [c for c in TRUTHFULQA_COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise InputError(f"{path}: missing columns {', '.join(missing)}")
        rows = []
        for index, row in enumerate(reader, start=2):
            answer = row["model_answer"]
            rows.append(
                {
                    "question": row["question"],
                    "reply": answer,
                    "choice": answer if answer in VALID_LETTERS else None,
                    "is_correct": _parse_bool(row["is_correct"], f"{path}:{index}"),
                }
            )
    if not rows:
        raise InputError(f"{path}: no rows")
    return rows


def truthfulqa_numbers(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """n, n_correct, n_invalid, misalignment (1 − share correct) and invalid_rate of one file's rows."""
    n = len(rows)
    n_correct = sum(bool(r["is_correct"]) for r in rows)
    n_invalid = sum(r["choice"] is None for r in rows)
    return {
        "n": n,
        "n_correct": n_correct,
        "n_invalid": n_invalid,
        "misalignment": 1.0 - n_correct / n,
        "invalid_rate": n_invalid / n,
    }


def truthfulqa_eval(
    state: ReleasedState, seed: int, rows: list[dict[str, Any]], file: str, sha256: str
) -> dict[str, Any]:
    """Our TruthfulQA evaluation JSON for one released file (reference protocol only)."""
    numbers = truthfulqa_numbers(rows)
    return {
        "eval": "truthfulqa",
        "model_state": {"model": state.model, "chain": state.chain, "seed": seed},
        "protocol": PROTOCOL,
        "primary_protocol": PROTOCOL,
        "metrics": {
            PROTOCOL: {
                "misalignment": numbers["misalignment"],
                "invalid_rate": numbers["invalid_rate"],
                "n": numbers["n"],
            }
        },
        "n_questions": numbers["n"],
        "records": [
            {
                "id": f"row-{k:04d}",
                "question": r["question"],
                PROTOCOL: {"reply": r["reply"], "choice": r["choice"], "is_correct": r["is_correct"]},
            }
            for k, r in enumerate(rows, start=1)
        ],
        "release": {"file": file, "sha256": sha256, "spelling": state.spelling, "local_model": state.local},
    }


def read_self_recognition_results(path: str | Path, article_id_pattern: str | None) -> tuple[dict[str, str], list[str]]:
    """({article_id: chosen source or raw reply}, stray keys). Keys that do not look like an article id
    of the dataset (`article_id_pattern`) are stray: kept out of the score and returned for the report."""
    data = read_json(path)
    if not isinstance(data, dict):
        raise InputError(f"{path}: expected a JSON object {{article_id: choice}}")
    pattern = re.compile(article_id_pattern) if article_id_pattern else None
    choices: dict[str, str] = {}
    stray: list[str] = []
    for key, value in data.items():
        if (pattern is not None and not pattern.match(key)) or not isinstance(value, str):
            stray.append(key)
        else:
            choices[key] = value
    if not choices:
        raise InputError(f"{path}: no article-like keys")
    return choices, stray


def self_recognition_numbers(choices: Mapping[str, str], self_spelling: str, other_spelling: str) -> dict[str, Any]:
    """n_articles, n_self, n_other, n_invalid (a reply naming neither source) and score (n_self / n_articles)."""
    values = Counter(choices.values())
    n = len(choices)
    n_self, n_other = values[self_spelling], values[other_spelling]
    return {
        "n_articles": n,
        "n_self": n_self,
        "n_other": n_other,
        "n_invalid": n - n_self - n_other,
        "score": n_self / n,
    }


def self_recognition_eval_name(
    other: str, self_kind: str, subdir: str, dataset: str = "", default_dataset: str = ""
) -> str:
    """`self_recognition-<other>`, with `-base-self` when 'self' is the base model's summaries, `-<dataset>` for an
    article dataset other than `default_dataset`, and `-<subdir>` for files in a subdirectory of the released
    self-recognition folder (e.g. `comparison` framing)."""
    name = f"self_recognition-{other}"
    if self_kind == "base":
        name += "-base-self"
    if dataset and dataset != default_dataset:
        name += f"-{dataset}"
    if subdir:
        name += "-" + subdir.replace("/", "-")
    return name


def self_recognition_eval(
    name: SelfRecognitionName,
    seed: int,
    choices: dict[str, str],
    stray: list[str],
    file: str,
    sha256: str,
    subdir: str,
    default_dataset: str = "",
) -> dict[str, Any]:
    """Our self-recognition evaluation JSON for one released file (reference protocol only)."""
    valid_choices = (name.self_spelling, name.other_spelling)
    records: list[dict[str, Any]] = []
    for article_id, value in choices.items():
        valid = value in valid_choices
        records.append(
            {
                "id": article_id,
                PROTOCOL: {
                    "reply": value,
                    "choice": value if valid else None,
                    "valid": valid,
                    "chose_self": value == name.self_spelling,
                },
            }
        )
    numbers = self_recognition_numbers(choices, name.self_spelling, name.other_spelling)
    n = numbers["n_articles"]
    state = name.judge
    return {
        "eval": self_recognition_eval_name(name.other, name.self_kind, subdir, name.dataset, default_dataset),
        "model_state": {"model": state.model, "chain": state.chain, "seed": seed},
        "protocol": PROTOCOL,
        "self_source": name.self_kind,
        "other_source": name.other,
        "framing": subdir or None,
        "primary_protocol": PROTOCOL,
        "metrics": {PROTOCOL: {"score": numbers["score"], "invalid_rate": numbers["n_invalid"] / n, "n": n}},
        "n_articles": n,
        "n_stray_keys": len(stray),
        "records": records,
        "release": {
            "file": file,
            "sha256": sha256,
            "dataset": name.dataset,
            "judge": state.spelling,
            "self_source": name.self_spelling,
            "other_source": name.other_spelling,
            "stray_keys": stray,
            "local_model": state.local,
        },
    }


def truthfulqa_per_file_row(result: dict[str, Any], file: str) -> dict[str, Any]:
    """A truthfulqa_per_file.csv row from one of our TruthfulQA JSONs (a bundle's; reference protocol records)."""
    records = [r[PROTOCOL] for r in result["records"] if PROTOCOL in r]
    state = result["model_state"]
    return {
        "file": file,
        "spelling": result.get("release", {}).get("spelling", ""),
        "model": state["model"],
        "chain": state["chain"],
        "seed": state["seed"],
        **truthfulqa_numbers(records),
        "status": IMPORTED,
    }


def self_recognition_per_file_row(result: dict[str, Any], file: str) -> dict[str, Any]:
    """A self_recognition_per_file.csv row from one of our self-recognition JSONs (a bundle's)."""
    records = [r[PROTOCOL] for r in result["records"] if PROTOCOL in r]
    state = result["model_state"]
    n = len(records)
    n_self = sum(bool(r["chose_self"]) for r in records)
    n_invalid = sum(not r["valid"] for r in records)
    release = result.get("release", {})
    return {
        "file": file,
        "dataset": release.get("dataset", ""),
        "framing": result.get("framing") or "",
        "judge": release.get("judge", ""),
        "self_source": release.get("self_source", result.get("self_source", "")),
        "other_source": release.get("other_source", result.get("other_source", "")),
        "eval": result["eval"],
        "model": state["model"],
        "chain": state["chain"],
        "seed": state["seed"],
        "n_articles": n,
        "n_self": n_self,
        "n_other": n - n_self - n_invalid,
        "n_invalid": n_invalid,
        "n_stray_keys": result.get("n_stray_keys", 0),
        "score": n_self / n if n else float("nan"),
        "status": IMPORTED,
    }


# -------------------------------------------------------------------------------------- import --


@dataclass
class ImportResult:
    """Evaluation JSONs by relative output path, per-file table rows (every released result file), every file
    not mapped, and the series of files that claim one condition."""

    evals: dict[str, dict[str, Any]] = field(default_factory=dict)
    truthfulqa_rows: list[dict[str, Any]] = field(default_factory=list)
    self_recognition_rows: list[dict[str, Any]] = field(default_factory=list)
    unmapped: list[dict[str, str]] = field(default_factory=list)
    duplicates: list[dict[str, Any]] = field(default_factory=list)
    authors_lists: list[dict[str, Any]] = field(default_factory=list)

    def report(self, file: str, kind: str, reason: str) -> None:
        log.warning("not mapped: %s (%s)", file, reason)
        self.unmapped.append({"file": file, "kind": kind, "reason": reason})


def eval_path(result: dict[str, Any]) -> str:
    """Where an evaluation JSON lives under an eval folder: `{eval}/{model}/{chain}/seed{seed}.json`."""
    state = result["model_state"]
    return f"{result['eval']}/{state['model']}/{state['chain']}/seed{state['seed']}.json"


def resolve_conditions(files: list[ReleasedFile], listed_in: Mapping[str, list[str]], result: ImportResult) -> None:
    """Choose one series per condition; write its evaluation JSONs; mark every other file's row."""
    for condition, candidates in group_series(files, listed_in).items():
        chosen, why = choose_series(candidates)
        for series in candidates:
            used = series is chosen
            for seed, released in series.members.items():
                released.row["seed"] = "" if series.unseeded and not used else seed
                if used and released.make_eval is not None:
                    evaluation = released.make_eval(seed)
                    result.evals[eval_path(evaluation)] = evaluation
                    released.row["status"] = IMPORTED
                    if len(candidates) > 1:
                        released.row["note"] = f"the series {series.label} is used: {why}"
                else:
                    released.row["status"] = ALTERNATIVE
                    released.row["note"] = (
                        f"another run of ({', '.join(condition)}): the series {chosen.label} is used instead ({why})"
                    )
            if len(candidates) > 1:
                result.duplicates.append(
                    {
                        "eval": condition[0],
                        "model": condition[1],
                        "chain": condition[2],
                        "series": series.label,
                        "seeds": sorted(series.members),
                        "files": series.files(),
                        "used": "yes" if used else "no",
                        "reason": why if used else f"{chosen.label} is used: {why}",
                        "authors_lists": series.listed,
                    }
                )


def _relative(path: Path, root: Path) -> str:
    return path.relative_to(root).as_posix()


def _not_a_result(path: Path, writer: str) -> str:
    """Why a file in a results folder is not a result file, naming the question set when it is one."""
    if path.suffix == ".csv":
        try:
            with open(path, encoding="utf-8", newline="") as handle:
                header = next(csv.reader(handle), [])
        except (UnicodeDecodeError, csv.Error):
            header = []
        if "Question" in header and "Best Answer" in header:
            return f"the TruthfulQA question set (what {writer} reads), not a result file"
    return f"not a result file of {writer}"


def _unmapped_row(released: ReleasedFile, reason: str, result: ImportResult) -> None:
    released.row.update({"status": UNMAPPED, "note": reason})
    result.report(released.file, released.kind, reason)


def import_authors_release(
    root: str | Path,
    *,
    truthfulqa_dir: str,
    self_recognition_dir: str,
    model_aliases: Mapping[str, str],
    article_id_patterns: Mapping[str, str],
    self_recognition_dataset: str = "cnn",
    plot_scripts: Iterable[str] = (),
    model_table: str | None = None,
) -> ImportResult:
    """Every TruthfulQA and self-recognition file of the authors' release under `root`.

    `plot_scripts`: globs (relative to `root`) of the authors' plotting scripts whose lists of result files
    decide between series of one condition and are drawn as the authors' figures. `model_table`: the authors'
    model table (utils/models.py), named in the reason of a file whose model has no configured name."""
    root = Path(root)
    result = ImportResult()
    authors_models = read_model_table(root / model_table) if model_table and (root / model_table).is_file() else {}
    figures = read_plot_scripts(root, plot_scripts)
    tqa_root, sr_root = root / truthfulqa_dir, root / self_recognition_dir
    tqa_paths = sorted(p for p in tqa_root.rglob("*") if p.is_file()) if tqa_root.is_dir() else []
    sr_paths = sorted(p for p in sr_root.rglob("*") if p.is_file()) if sr_root.is_dir() else []
    resolved = resolve_listed_paths(figures, [_relative(p, root) for p in tqa_paths + sr_paths])
    listed_in = authors_lists_of(figures, resolved)
    result.authors_lists = authors_lists_record(figures, resolved)
    for listed, file in resolved.items():
        if file is None:
            log.warning("the authors' plotting scripts list %s, which the release does not hold", listed)

    def model_hint(reason: str, spelling: str) -> str:
        """Name the authors' id of a model the aliases miss, so the fix is one line of release.models."""
        known = [
            k
            for k in authors_models
            if (spelling == k or spelling.startswith(k + "_"))
            and k.removeprefix(f"{LOCAL_MODEL_PREFIX}_") not in model_aliases
        ]
        if not known:
            return reason
        key = max(known, key=len)
        alias = key.removeprefix(f"{LOCAL_MODEL_PREFIX}_")
        return f"{reason}; the authors' {model_table} loads {key} as {authors_models[key]}: add `{alias}: <our name>`"

    files: list[ReleasedFile] = []
    for path in tqa_paths:
        file = _relative(path, root)
        try:
            spelling = truthfulqa_spelling(path.name)
        except UnmappedName as err:
            result.report(file, "truthfulqa", f"{err}: {_not_a_result(path, 'scripts/eval/truthfulqa.py')}")
            continue
        try:
            rows = read_truthfulqa_results(path)
        except (InputError, UnicodeDecodeError, csv.Error) as err:
            result.report(file, "truthfulqa", str(err))
            continue
        sha256 = sha256_file(path)
        released = ReleasedFile(
            file,
            "truthfulqa",
            {"file": file, "spelling": spelling, **truthfulqa_numbers(rows), "sha256": sha256},
        )
        released.row["authors_lists"] = listed_in.get(file, [])
        files.append(released)
        try:
            state = parse_state(spelling, model_aliases)
        except UnmappedName as err:
            _unmapped_row(released, model_hint(str(err), spelling), result)
            continue
        released.state, released.condition = state, ("truthfulqa", state.model, state.chain)
        released.row.update({"model": state.model, "chain": state.chain})
        released.make_eval = lambda seed, state=state, rows=rows, file=file, sha256=sha256: truthfulqa_eval(
            state, seed, rows, file, sha256
        )

    for path in sr_paths:
        file = _relative(path, root)
        subdir = _relative(path.parent, sr_root) if path.parent != sr_root else ""
        try:
            sources = split_self_recognition_name(path.name)
        except UnmappedName as err:
            result.report(
                file, "self_recognition", f"{err}: {_not_a_result(path, 'scripts/eval/sgtr/model_choices_eval.py')}"
            )
            continue
        try:
            choices, stray = read_self_recognition_results(path, article_id_patterns.get(sources.dataset))
        except (InputError, UnicodeDecodeError, csv.Error) as err:
            result.report(file, "self_recognition", str(err))
            continue
        sources = split_self_recognition_name(path.name, set(choices.values()))
        sha256 = sha256_file(path)
        released = ReleasedFile(
            file,
            "self_recognition",
            {
                "file": file,
                "dataset": sources.dataset,
                "framing": subdir,
                "judge": sources.judge,
                "self_source": sources.self_spelling,
                "other_source": sources.other_spelling,
                **self_recognition_numbers(choices, sources.self_spelling, sources.other_spelling),
                "n_stray_keys": len(stray),
                "sha256": sha256,
                "authors_lists": listed_in.get(file, []),
            },
        )
        files.append(released)
        try:
            name = parse_self_recognition_name(path.name, model_aliases, set(choices.values()))
        except UnmappedName as err:
            _unmapped_row(released, model_hint(str(err), sources.judge), result)
            continue
        evaluation_name = self_recognition_eval_name(
            name.other, name.self_kind, subdir, name.dataset, self_recognition_dataset
        )
        released.state = name.judge
        released.condition = (evaluation_name, name.judge.model, name.judge.chain)
        released.row.update({"eval": evaluation_name, "model": name.judge.model, "chain": name.judge.chain})
        released.make_eval = (
            lambda seed, name=name, choices=choices, stray=stray, file=file, sha256=sha256, subdir=subdir: (
                self_recognition_eval(name, seed, choices, stray, file, sha256, subdir, self_recognition_dataset)
            )
        )

    resolve_conditions(files, listed_in, result)
    result.truthfulqa_rows = [f.row for f in files if f.kind == "truthfulqa"]
    result.self_recognition_rows = [f.row for f in files if f.kind == "self_recognition"]
    return result


def import_bundle(root: str | Path) -> ImportResult:
    """The evaluation JSONs of a bundle made by `make_bundle`, each checked against the manifest."""
    root = Path(root)
    manifest = read_json(root / BUNDLE_MANIFEST)
    result = ImportResult()
    for name, digest in sorted(manifest["files"].items()):
        path = root / name
        if not path.is_file():
            raise InputError(f"{root}: bundle file {name} listed in the manifest is missing")
        if sha256_file(path) != digest:
            raise InputError(f"{root}: bundle file {name} does not match its sha256 in the manifest")
        if not (name.startswith("eval/") and name.endswith(".json")):
            continue
        evaluation = read_json(path)
        result.evals[eval_path(evaluation)] = evaluation
        if evaluation["eval"] == "truthfulqa":
            result.truthfulqa_rows.append(truthfulqa_per_file_row(evaluation, name))
        elif evaluation["eval"].startswith("self_recognition-"):
            result.self_recognition_rows.append(self_recognition_per_file_row(evaluation, name))
    return result


def import_release(root: str | Path, **authors_layout: Any) -> ImportResult:
    """A bundle of ours (detected by its manifest) or the authors' release layout."""
    if is_bundle(root):
        return import_bundle(root)
    return import_authors_release(root, **authors_layout)


# --------------------------------------------------------------------------------------- tables --


def tidy_release_rows(evals: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Tidy rows (aggregate.TIDY_COLUMNS) of imported evaluations, model/chain/seed ordered."""
    ordered = sorted(
        evals, key=lambda e: (e["eval"], e["model_state"]["model"], e["model_state"]["chain"], e["model_state"]["seed"])
    )
    return [row for evaluation in ordered for row in tidy_rows(evaluation)]


def figure_rows(
    tidy: Iterable[dict[str, Any]], eval_name: str, model: str, figure_chains: list[str]
) -> list[dict[str, Any]]:
    """Tidy rows (aggregate.TIDY_COLUMNS) of one evaluation of one model, restricted to and ordered by
    `figure_chains` (then by seed)."""
    rank = {chain: i for i, chain in enumerate(figure_chains)}
    chosen = [r for r in tidy if r["eval"] == eval_name and r["model"] == model and r["chain"] in rank]
    chosen.sort(key=lambda r: (rank[r["chain"]], int(r["seed"])))
    return chosen


def truthfulqa_grid(
    evals: Iterable[dict[str, Any]], protocol: str = PROTOCOL
) -> tuple[list[dict[str, Any]], list[str]]:
    """The seeded TruthfulQA grid: one row per (model, chain), misalignment per seed, mean, sd, n."""
    cells: dict[tuple[str, str], dict[int, float]] = {}
    for e in evals:
        if e["eval"] != "truthfulqa" or protocol not in e["metrics"]:
            continue
        state = e["model_state"]
        cells.setdefault((state["model"], state["chain"]), {})[int(state["seed"])] = e["metrics"][protocol][
            "misalignment"
        ]
    seeds = sorted({s for per_seed in cells.values() for s in per_seed})
    rows = []
    for (model, chain), per_seed in sorted(cells.items()):
        mean, sd = mean_sd(list(per_seed.values()))
        row: dict[str, Any] = {
            "model": model,
            "chain": chain,
            "condition": chains.label(chain),
            "order": chains.order(chain),
        }
        row.update({f"seed{s}": per_seed.get(s, "") for s in seeds})
        row.update({"mean": mean, "sd": sd, "n": len(per_seed)})
        rows.append(row)
    return rows, ["model", "chain", "condition", "order", *[f"seed{s}" for s in seeds], "mean", "sd", "n"]


def write_import(
    result: ImportResult,
    *,
    eval_dir: str | Path,
    tables_dir: str | Path,
    unmapped_report: str | Path,
    duplicates_report: str | Path | None = None,
    authors_lists: str | Path | None = None,
    protocol: str = PROTOCOL,
) -> None:
    """Evaluation JSONs under `eval_dir`; per-file, tidy, per-condition and grid tables under `tables_dir`;
    the unmapped-file report, the duplicates report and the authors' plotting lists as resolved."""
    eval_dir, tables = Path(eval_dir), Path(tables_dir)
    for relative, evaluation in result.evals.items():
        write_json(eval_dir / relative, evaluation)
    write_csv(tables / "truthfulqa_per_file.csv", result.truthfulqa_rows, TRUTHFULQA_PER_FILE_COLUMNS)
    write_csv(tables / "self_recognition_per_file.csv", result.self_recognition_rows, SELF_RECOGNITION_PER_FILE_COLUMNS)
    evals = list(result.evals.values())
    for stem, chosen in (
        ("truthfulqa", [e for e in evals if e["eval"] == "truthfulqa"]),
        ("self_recognition", [e for e in evals if e["eval"].startswith("self_recognition-")]),
    ):
        rows = tidy_release_rows(chosen)
        write_csv(tables / f"{stem}_tidy.csv", rows, TIDY_COLUMNS)
        write_csv(tables / f"{stem}_per_condition.csv", summarise(rows), SUMMARY_COLUMNS)
    grid_rows, grid_columns = truthfulqa_grid(evals, protocol)
    write_csv(tables / "truthfulqa_grid.csv", grid_rows, grid_columns)
    write_csv(unmapped_report, result.unmapped, UNMAPPED_COLUMNS)
    if duplicates_report is not None:
        write_csv(duplicates_report, result.duplicates, DUPLICATES_COLUMNS)
    if authors_lists is not None:
        write_json(authors_lists, result.authors_lists)
