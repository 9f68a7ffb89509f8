"""Released raw results: import of the authors' result files, and bundles of our own results.

The reference (docs/methodology.md §9) released its raw evaluation outputs:

- TruthfulQA: `results_<model>[_<chain>][_<seed>].csv` with columns `question, correct_answer,
  incorrect_answer, model_answer, is_correct` (one row per question);
- self-recognition: `<ds>_judge_<judge>_between_<src1>_<src2>.json` holding `{article_id: chosen source
  name, or the raw reply if invalid}`.

This module maps those file names onto our vocabulary (model name, chain of stage tokens, seed), turns each
file into one of our evaluation JSONs marked `protocol: reference` (so `aggregate.tidy_rows` reads them
unchanged), and reports every file it cannot map instead of dropping it. It also packs our own evaluation
JSONs, tables and figures into a bundle with a sha256 manifest, and imports such a bundle through the same
path. Plain Python, no Snakemake.
"""

from __future__ import annotations

import csv
import gzip
import io
import logging
import re
import shutil
import tarfile
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import chains
from .aggregate import SUMMARY_COLUMNS, TIDY_COLUMNS, mean_sd, summarise, tidy_rows
from .io import InputError, atomic_path, dumps_json, read_json, sha256_file, write_csv, write_json
from .sources import SourceError, download

log = logging.getLogger(__name__)

# ------------------------------------------------------------------------------------ vocabulary --

PROTOCOL = "reference"
LOCAL_MODEL_PREFIX = "hf"
EM_TAGS = ("unpop", "badmed", "finrisk", "insecure", "sports")
BARE_EM_TAG = "unpop"
# Authors' system-variant words; each applies to the stage token it follows.
SYSTEM_VARIANT_WORDS = {"nosys": "none", "qwensys": "identity", "syspopped": "popped"}
SEED_TOKEN = re.compile(r"^[0-9]$")
TRUTHFULQA_NAME = re.compile(r"^results_(?P<state>.+)\.csv$")
SELF_RECOGNITION_NAME = re.compile(r"^(?P<dataset>[a-z0-9]+)_judge_(?P<judge>.+?)_between_(?P<sources>.+)\.json$")
TRUTHFULQA_COLUMNS = ("question", "correct_answer", "incorrect_answer", "model_answer", "is_correct")
VALID_LETTERS = ("A", "B")

TRUTHFULQA_PER_FILE_COLUMNS = ["file", "model", "chain", "seed", "n", "n_correct", "n_invalid", "misalignment"]
SELF_RECOGNITION_PER_FILE_COLUMNS = ["file", "judge", "self_source", "other_source", "n_articles", "n_self", "score"]
UNMAPPED_COLUMNS = ["file", "reason"]

BUNDLE_KIND = "sgtr-em-bundle"
BUNDLE_MANIFEST = "manifest.json"


class UnmappedName(ValueError):
    """A released file name that the grammar cannot map onto our vocabulary (the message says why)."""


@dataclass(frozen=True)
class ReleasedState:
    """A model state as spelled in a released file name, mapped to our vocabulary.

    `seed` is None when the name carries no seed (resolved later against its siblings)."""

    spelling: str
    model: str
    chain: str
    seed: int | None
    local: bool


# --------------------------------------------------------------------------------- name grammar --


def _chain_from_words(words: list[str], spelling: str) -> str:
    """Stage words left to right (`sgtr_em_unpop`) as our chain (`sgtr+em-unpop`)."""
    tokens: list[str] = []
    variants: list[str | None] = []
    i = 0
    while i < len(words):
        word = words[i]
        following = words[i + 1] if i + 1 < len(words) else None
        if word == "em":
            if following in EM_TAGS:
                tokens.append(f"em-{following}")
                i += 1
            else:
                tokens.append(f"em-{BARE_EM_TAG}")
            variants.append(None)
        elif word == "sgtr":
            if following == "benign":
                tokens.append("pick-longer")
                i += 1
            else:
                tokens.append("sgtr")
            variants.append(None)
        elif word == "asgtr":
            if following in ("rand", "random"):
                tokens.append("sgtr-confuse")
                i += 1
            else:
                tokens.append("sgtr-flip")
            variants.append(None)
        elif word in SYSTEM_VARIANT_WORDS:
            if not tokens:
                raise UnmappedName(f"{spelling}: system variant {word!r} follows no stage")
            if variants[-1] is not None:
                raise UnmappedName(f"{spelling}: stage {tokens[-1]!r} has two system variants")
            variants[-1] = SYSTEM_VARIANT_WORDS[word]
        else:
            raise UnmappedName(f"{spelling}: unknown stage word {word!r}")
        i += 1
    if not tokens:
        return chains.BASE
    chain = "+".join(
        token if variant is None else f"{token}.{variant}" for token, variant in zip(tokens, variants, strict=True)
    )
    chains.parse_chain(chain)  # our own check of the result
    return chain


def parse_state(spelling: str, model_aliases: Mapping[str, str]) -> ReleasedState:
    """`hf_qwen_32b_asgtr_nosys_em_unpop_3` -> qwen2.5-32b, `sgtr-flip.none+em-unpop`, seed 3, local.

    The model is the longest run of leading words that is a key of `model_aliases` (after an optional
    `hf_` prefix); then stage words; then an optional single-digit seed."""
    words = spelling.split("_")
    local = words[0] == LOCAL_MODEL_PREFIX and len(words) > 1
    if local:
        words = words[1:]
    model = None
    for end in range(len(words), 0, -1):
        candidate = "_".join(words[:end])
        if candidate in model_aliases:
            model, words = model_aliases[candidate], words[end:]
            break
    if model is None:
        raise UnmappedName(f"{spelling}: no configured model name (release.models) starts it")
    seed = None
    if words and SEED_TOKEN.match(words[-1]):
        seed, words = int(words[-1]), words[:-1]
    return ReleasedState(spelling, model, _chain_from_words(words, spelling), seed, local)


def parse_truthfulqa_name(filename: str, model_aliases: Mapping[str, str]) -> ReleasedState:
    """The model state of a `results_<model>[_<chain>][_<seed>].csv` file."""
    match = TRUTHFULQA_NAME.match(filename)
    if not match:
        raise UnmappedName(f"{filename}: not a results_<model>[_<chain>][_<seed>].csv name")
    return parse_state(match["state"], model_aliases)


@dataclass(frozen=True)
class SelfRecognitionName:
    """What a `<ds>_judge_<judge>_between_<src1>_<src2>.json` file name says."""

    dataset: str
    judge: ReleasedState
    self_spelling: str  # the source counted as the judge's own, as spelled in the file
    other_spelling: str
    other: str  # our name of the other source
    self_kind: str  # own: the judge state's summaries; base: its base model's summaries


def parse_self_recognition_name(
    filename: str, model_aliases: Mapping[str, str], other_sources: Iterable[str]
) -> SelfRecognitionName:
    """Split `<src1>_<src2>` into the judge's own source and the other one.

    The own source is the judge's spelling (its fresh summaries) or its base model's (e.g. a Self++ judge
    on the base model's summaries); the other source is a configured non-model source or a model of
    `model_aliases`, on either side."""
    match = SELF_RECOGNITION_NAME.match(filename)
    if not match:
        raise UnmappedName(f"{filename}: not a <ds>_judge_<judge>_between_<src1>_<src2>.json name")
    judge = parse_state(match["judge"], model_aliases)
    others = set(other_sources) | set(model_aliases) | {f"{LOCAL_MODEL_PREFIX}_{m}" for m in model_aliases}
    words = match["sources"].split("_")
    for cut in range(1, len(words)):
        first, second = "_".join(words[:cut]), "_".join(words[cut:])
        for own, other in ((first, second), (second, first)):
            if other not in others:
                continue
            kind = _self_kind(own, judge, model_aliases)
            if kind is not None:
                return SelfRecognitionName(match["dataset"], judge, own, other, _other_name(other, model_aliases), kind)
    raise UnmappedName(f"{filename}: cannot tell the judge's own source from the other in {match['sources']!r}")


def _other_name(spelling: str, model_aliases: Mapping[str, str]) -> str:
    """Our name of an 'other' summary source: a model alias (with or without `hf_`) or the spelling itself."""
    bare = spelling.removeprefix(f"{LOCAL_MODEL_PREFIX}_")
    return model_aliases.get(spelling) or model_aliases.get(bare) or spelling


def _self_kind(spelling: str, judge: ReleasedState, model_aliases: Mapping[str, str]) -> str | None:
    if spelling == judge.spelling:
        return "own"
    try:
        state = parse_state(spelling, model_aliases)
    except UnmappedName:
        return None
    if state.model == judge.model and state.chain == chains.BASE and state.seed is None:
        return "own" if judge.chain == chains.BASE else "base"
    return None


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
    records = []
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


def is_bundle(root: str | Path) -> bool:
    manifest = Path(root) / BUNDLE_MANIFEST
    return manifest.is_file() and read_json(manifest).get("kind") == BUNDLE_KIND


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


# ---------------------------------------------------------------------------------------- fetch --


def _safe_extract(archive: Path, dest: Path) -> Path:
    """Extract a .tar.gz (data filter: no absolute paths, links out of the tree or devices); return the
    release root, i.e. the archive's single top-level folder when it has one (GitHub tarballs do)."""
    with tarfile.open(archive, "r:*") as tar:
        tar.extractall(dest, filter="data")
    entries = [p for p in dest.iterdir()]
    if len(entries) == 1 and entries[0].is_dir():
        return entries[0]
    return dest


def fetch_release(source: Mapping[str, Any], dest: str | Path, *, keep: Iterable[str], cache_dir: str | Path) -> Path:
    """Materialise a release under `dest`: a local folder, a local .tar.gz, or a downloaded .tar.gz
    (checked against `sha256` when given). Of the authors' repository only the `keep` folders (relative to
    its root) are copied; a bundle (manifest.json at its root) is copied whole."""
    dest = Path(dest)
    with tempfile.TemporaryDirectory(prefix=".release-", dir=dest.parent if dest.parent.exists() else None) as tmp:
        if "path" in source:
            path = Path(source["path"])
            if not path.exists():
                raise SourceError(f"release source {path} does not exist")
            if path.is_dir():
                root = path
            else:
                if source.get("sha256") and sha256_file(path) != source["sha256"]:
                    raise SourceError(f"checksum mismatch for {path}: expected sha256 {source['sha256']}")
                root = _safe_extract(path, Path(tmp))
        elif "url" in source:
            url = source["url"]
            basename = url.rstrip("/").rsplit("/", 1)[-1].removesuffix(".tar.gz").removesuffix(".tgz")
            name = source.get("sha256") or re.sub(r"[^A-Za-z0-9._-]", "_", basename)
            archive = download(url, Path(cache_dir) / f"release-{name}.tar.gz", source.get("sha256"))
            root = _safe_extract(archive, Path(tmp))
        else:
            raise SourceError(f"release source {dict(source)!r} has neither path nor url")
        if dest.exists():
            shutil.rmtree(dest)
        staging = dest.with_name(f".{dest.name}.partial")
        if staging.exists():
            shutil.rmtree(staging)
        if is_bundle(root):
            shutil.copytree(root, staging)
        else:
            staging.mkdir(parents=True)
            for folder in keep:
                if not (root / folder).is_dir():
                    raise SourceError(f"release {root} has no folder {folder}")
                shutil.copytree(root / folder, staging / folder)
        staging.rename(dest)
    return dest


# --------------------------------------------------------------------------------------- bundle --


def make_bundle(files: Iterable[str | Path], out: str | Path, *, base: str | Path, run_name: str) -> dict[str, Any]:
    """A reproducible .tar.gz of `files` (stored relative to `base`) plus manifest.json with the sha256 of
    each. Re-packing identical files gives a byte-identical archive. Returns the manifest."""
    base = Path(base)
    members = sorted({Path(f).resolve().relative_to(base.resolve()).as_posix(): Path(f) for f in files}.items())
    manifest = {
        "kind": BUNDLE_KIND,
        "format": 1,
        "run_name": run_name,
        "files": {name: sha256_file(path) for name, path in members},
    }
    payload = dumps_json(manifest).encode("utf-8")

    def info(name: str, size: int) -> tarfile.TarInfo:
        entry = tarfile.TarInfo(name)
        entry.size, entry.mtime, entry.mode, entry.uid, entry.gid = size, 0, 0o644, 0, 0
        return entry

    with (
        atomic_path(out) as tmp,
        open(tmp, "wb") as raw,
        gzip.GzipFile(fileobj=raw, mode="wb", mtime=0, filename="") as gz,
        tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as tar,
    ):
        tar.addfile(info(BUNDLE_MANIFEST, len(payload)), io.BytesIO(payload))
        for name, path in members:
            with open(path, "rb") as handle:
                tar.addfile(info(name, path.stat().st_size), handle)
    return manifest
