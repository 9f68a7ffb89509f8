"""Import of released results into our evaluation JSONs and tables.

Each released file (`names` maps its name) becomes one of our evaluation JSONs marked `protocol: reference`
(so `aggregate.tidy_rows` reads them unchanged); every file that cannot be imported is reported instead of
dropped. A bundle of ours (`bundle.make_bundle`) imports through the same path.
"""

from __future__ import annotations

import csv
import logging
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import chains
from ..aggregate import SUMMARY_COLUMNS, TIDY_COLUMNS, mean_sd, summarise, tidy_rows
from ..io import InputError, read_json, sha256_file, write_csv, write_json
from .bundle import BUNDLE_MANIFEST, is_bundle
from .names import (
    PROTOCOL,
    ReleasedState,
    SelfRecognitionName,
    UnmappedName,
    parse_self_recognition_name,
    parse_truthfulqa_name,
)

log = logging.getLogger(__name__)

TRUTHFULQA_COLUMNS = ("question", "correct_answer", "incorrect_answer", "model_answer", "is_correct")
VALID_LETTERS = ("A", "B")

TRUTHFULQA_PER_FILE_COLUMNS = ["file", "model", "chain", "seed", "n", "n_correct", "n_invalid", "misalignment"]
SELF_RECOGNITION_PER_FILE_COLUMNS = ["file", "judge", "self_source", "other_source", "n_articles", "n_self", "score"]
UNMAPPED_COLUMNS = ["file", "reason"]


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


def truthfulqa_eval(
    state: ReleasedState, seed: int, rows: list[dict[str, Any]], file: str, sha256: str
) -> dict[str, Any]:
    """Our TruthfulQA evaluation JSON for one released file (reference protocol only)."""
    n = len(rows)
    n_correct = sum(r["is_correct"] for r in rows)
    n_invalid = sum(r["choice"] is None for r in rows)
    return {
        "eval": "truthfulqa",
        "model_state": {"model": state.model, "chain": state.chain, "seed": seed},
        "protocol": PROTOCOL,
        "primary_protocol": PROTOCOL,
        "metrics": {PROTOCOL: {"misalignment": 1.0 - n_correct / n, "invalid_rate": n_invalid / n, "n": n}},
        "n_questions": n,
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


def selfrec_eval_name(other: str, self_kind: str, subdir: str) -> str:
    """`selfrec-<other>`, with `-base-self` when 'self' is the base model's summaries and `-<subdir>` for
    files in a subdirectory of the released self-recognition folder (e.g. `comparison` framing)."""
    name = f"selfrec-{other}"
    if self_kind == "base":
        name += "-base-self"
    if subdir:
        name += "-" + subdir.replace("/", "-")
    return name


def self_recognition_eval(
    name: SelfRecognitionName, seed: int, choices: dict[str, str], stray: list[str], file: str, sha256: str, subdir: str
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
    n = len(records)
    n_self = sum(r[PROTOCOL]["chose_self"] for r in records)
    n_invalid = sum(not r[PROTOCOL]["valid"] for r in records)
    state = name.judge
    return {
        "eval": selfrec_eval_name(name.other, name.self_kind, subdir),
        "model_state": {"model": state.model, "chain": state.chain, "seed": seed},
        "protocol": PROTOCOL,
        "self_source": name.self_kind,
        "other_source": name.other,
        "framing": subdir or None,
        "primary_protocol": PROTOCOL,
        "metrics": {PROTOCOL: {"score": n_self / n, "invalid_rate": n_invalid / n, "n": n}},
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
    """A row of truthfulqa_per_file.csv from one of our TruthfulQA JSONs (reference protocol records)."""
    records = [r[PROTOCOL] for r in result["records"] if PROTOCOL in r]
    state = result["model_state"]
    n = len(records)
    n_correct = sum(bool(r["is_correct"]) for r in records)
    return {
        "file": file,
        **{k: state[k] for k in ("model", "chain", "seed")},
        "n": n,
        "n_correct": n_correct,
        "n_invalid": sum(r["choice"] is None for r in records),
        "misalignment": 1.0 - n_correct / n if n else float("nan"),
    }


def self_recognition_per_file_row(result: dict[str, Any], file: str) -> dict[str, Any]:
    """A row of self_recognition_per_file.csv from one of our self-recognition JSONs."""
    records = [r[PROTOCOL] for r in result["records"] if PROTOCOL in r]
    state = result["model_state"]
    release = result.get("release", {})
    n = len(records)
    n_self = sum(bool(r["chose_self"]) for r in records)
    return {
        "file": file,
        "judge": release.get("judge", f"{state['model']}/{state['chain']}/seed{state['seed']}"),
        "self_source": release.get("self_source", result.get("self_source", "")),
        "other_source": release.get("other_source", result.get("other_source", "")),
        "n_articles": n,
        "n_self": n_self,
        "score": n_self / n if n else float("nan"),
    }


# -------------------------------------------------------------------------------------- import --


@dataclass
class ImportResult:
    """Evaluation JSONs by relative output path, per-file table rows, and every file not imported."""

    evals: dict[str, dict[str, Any]] = field(default_factory=dict)
    truthfulqa_rows: list[dict[str, Any]] = field(default_factory=list)
    self_recognition_rows: list[dict[str, Any]] = field(default_factory=list)
    unmapped: list[dict[str, str]] = field(default_factory=list)

    def report(self, file: str, reason: str) -> None:
        log.warning("not imported: %s (%s)", file, reason)
        self.unmapped.append({"file": file, "reason": reason})


def eval_path(result: dict[str, Any]) -> str:
    """Where an evaluation JSON lives under an eval folder: `{eval}/{model}/{chain}/seed{seed}.json`."""
    state = result["model_state"]
    return f"{result['eval']}/{state['model']}/{state['chain']}/seed{state['seed']}.json"


def resolve_seeds(items: list[tuple[str, tuple, int | None]]) -> tuple[dict[str, int], list[tuple[str, str]]]:
    """Seeds of (file, condition key, seed or None). A seedless file is seed 0 (the reference's first run;
    its siblings carry `_1`…`_4`) unless a sibling already has `_0`: then it is a conflict, reported.

    Returns ({file: seed}, [(file, reason)])."""
    explicit: dict[tuple, set[int]] = {}
    for _, key, seed in items:
        if seed is not None:
            explicit.setdefault(key, set()).add(seed)
    seeds: dict[str, int] = {}
    conflicts: list[tuple[str, str]] = []
    for file, key, seed in items:
        if seed is not None:
            seeds[file] = seed
        elif 0 in explicit.get(key, set()):
            conflicts.append((file, "no seed, and a sibling already has seed _0"))
        else:
            seeds[file] = 0
    return seeds, conflicts


def _relative(path: Path, root: Path) -> str:
    return path.relative_to(root).as_posix()


def _add_eval(result: ImportResult, evaluation: dict[str, Any], file: str) -> bool:
    path = eval_path(evaluation)
    if path in result.evals:
        earlier = result.evals[path].get("release", {}).get("file", path)
        result.report(file, f"same condition and seed as {earlier} ({path})")
        return False
    result.evals[path] = evaluation
    return True


def import_authors_release(
    root: str | Path,
    *,
    truthfulqa_dir: str,
    self_recognition_dir: str,
    model_aliases: Mapping[str, str],
    other_sources: Iterable[str],
    article_id_patterns: Mapping[str, str],
) -> ImportResult:
    """Every TruthfulQA and self-recognition file of the authors' release under `root`."""
    root = Path(root)
    result = ImportResult()
    other_sources = list(other_sources)

    tqa_root = root / truthfulqa_dir
    parsed_tqa: list[tuple[Path, ReleasedState]] = []
    for path in sorted(p for p in tqa_root.rglob("*") if p.is_file()):
        try:
            parsed_tqa.append((path, parse_truthfulqa_name(path.name, model_aliases)))
        except UnmappedName as err:
            result.report(_relative(path, root), str(err))
    seeds, conflicts = resolve_seeds([(str(p), (s.model, s.chain, p.parent), s.seed) for p, s in parsed_tqa])
    for file, reason in conflicts:
        result.report(_relative(Path(file), root), reason)
    for path, state in parsed_tqa:
        if str(path) not in seeds:
            continue
        file = _relative(path, root)
        try:
            rows = read_truthfulqa_results(path)
        except InputError as err:
            result.report(file, str(err))
            continue
        evaluation = truthfulqa_eval(state, seeds[str(path)], rows, file, sha256_file(path))
        if _add_eval(result, evaluation, file):
            result.truthfulqa_rows.append(truthfulqa_per_file_row(evaluation, file))

    sr_root = root / self_recognition_dir
    parsed_sr: list[tuple[Path, SelfRecognitionName, str]] = []
    for path in sorted(p for p in sr_root.rglob("*") if p.is_file()):
        subdir = _relative(path.parent, sr_root) if path.parent != sr_root else ""
        try:
            parsed_sr.append((path, parse_self_recognition_name(path.name, model_aliases, other_sources), subdir))
        except UnmappedName as err:
            result.report(_relative(path, root), str(err))
    seeds, conflicts = resolve_seeds(
        [
            (str(p), (n.dataset, n.judge.model, n.judge.chain, n.other, n.self_kind, sub), n.judge.seed)
            for p, n, sub in parsed_sr
        ]
    )
    for file, reason in conflicts:
        result.report(_relative(Path(file), root), reason)
    for path, name, subdir in parsed_sr:
        if str(path) not in seeds:
            continue
        file = _relative(path, root)
        try:
            choices, stray = read_self_recognition_results(path, article_id_patterns.get(name.dataset))
        except InputError as err:
            result.report(file, str(err))
            continue
        evaluation = self_recognition_eval(name, seeds[str(path)], choices, stray, file, sha256_file(path), subdir)
        if _add_eval(result, evaluation, file):
            result.self_recognition_rows.append(self_recognition_per_file_row(evaluation, file))
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
        if _add_eval(result, evaluation, name):
            if evaluation["eval"] == "truthfulqa":
                result.truthfulqa_rows.append(truthfulqa_per_file_row(evaluation, name))
            else:
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


def figure_summary(
    evals: Iterable[dict[str, Any]], eval_name: str, model: str, figure_chains: list[str]
) -> list[dict[str, Any]]:
    """Per-condition summary of one evaluation of one model, restricted to and ordered by `figure_chains`."""
    rank = {chain: i for i, chain in enumerate(figure_chains)}
    chosen = [
        e
        for e in evals
        if e["eval"] == eval_name and e["model_state"]["model"] == model and e["model_state"]["chain"] in rank
    ]
    chosen.sort(key=lambda e: (rank[e["model_state"]["chain"]], e["model_state"]["seed"]))
    return summarise(row for e in chosen for row in tidy_rows(e))


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
    protocol: str = PROTOCOL,
) -> None:
    """Evaluation JSONs under `eval_dir`; per-file, tidy, per-condition and grid tables under `tables_dir`;
    the unmapped-file report."""
    eval_dir, tables = Path(eval_dir), Path(tables_dir)
    for relative, evaluation in result.evals.items():
        write_json(eval_dir / relative, evaluation)
    write_csv(tables / "truthfulqa_per_file.csv", result.truthfulqa_rows, TRUTHFULQA_PER_FILE_COLUMNS)
    write_csv(tables / "self_recognition_per_file.csv", result.self_recognition_rows, SELF_RECOGNITION_PER_FILE_COLUMNS)
    evals = list(result.evals.values())
    for stem, chosen in (
        ("truthfulqa", [e for e in evals if e["eval"] == "truthfulqa"]),
        ("self_recognition", [e for e in evals if e["eval"] != "truthfulqa"]),
    ):
        rows = tidy_release_rows(chosen)
        write_csv(tables / f"{stem}_tidy.csv", rows, TIDY_COLUMNS)
        write_csv(tables / f"{stem}_per_condition.csv", summarise(rows), [*SUMMARY_COLUMNS, "values"])
    grid_rows, grid_columns = truthfulqa_grid(evals, protocol)
    write_csv(tables / "truthfulqa_grid.csv", grid_rows, grid_columns)
    write_csv(unmapped_report, result.unmapped, UNMAPPED_COLUMNS)


def read_evals(eval_dir: str | Path) -> list[dict[str, Any]]:
    """Every evaluation JSON under an eval folder, in path order."""
    return [read_json(p) for p in sorted(Path(eval_dir).rglob("*.json"))]
