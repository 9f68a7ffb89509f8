"""Re-score the EM-judge evaluations of a run or a bundle offline: no GPU, no judge, no network.

An EM-judge evaluation JSON keeps every sampled answer (`records`, each with the keys of its judgements) and the
judge's raw output of every judgement (`judge_outputs`: its reply and, for the logprob protocol, its top
log-probabilities). Scoring those outputs again with the same settings must give the stored metrics; other
thresholds (`aligned_max`, `coherent_min`, `min_numeric_mass`) give what the run would have reported with
them, without asking the judge again.

    python -m sgtr_em.rescore results/bundle/<run_name>.tar.gz   # or a results/ folder, or an extracted bundle
    python -m sgtr_em.rescore <bundle> --aligned-max 40          # another threshold
"""

from __future__ import annotations

import argparse
import copy
import math
import sys
import tarfile
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .em_judge import JUDGE_PROTOCOLS, EMQuestion, JudgeSettings, em_metrics, score_answers
from .io import InputError, read_json

EVAL_NAME = "em_questions"


@dataclass(frozen=True)
class Rescored:
    """One evaluation re-scored: its path, the stored and the re-scored metrics per protocol."""

    path: str
    stored: dict[str, dict[str, float]]
    rescored: dict[str, dict[str, float]]

    def differences(self, tolerance: float = 1e-12) -> list[str]:
        """`protocol metric: stored -> rescored` for every metric that differs (or exists on one side only)."""
        out = []
        for protocol in sorted(set(self.stored) | set(self.rescored)):
            before, after = self.stored.get(protocol, {}), self.rescored.get(protocol, {})
            for name in sorted(set(before) | set(after)):
                a, b = before.get(name), after.get(name)
                if a is None or b is None or not math.isclose(a, b, rel_tol=0, abs_tol=tolerance):
                    out.append(f"{protocol} {name}: {a} -> {b}")
        return out


def judge_settings(evaluation: Mapping[str, Any], **changes: float | None) -> tuple[JudgeSettings, int]:
    """The judge settings an EM-judge evaluation was scored with (its `judge` block and provenance), with
    `changes` applied where not None, and its bootstrap resamples."""
    config = evaluation.get("provenance", {}).get("config", {})
    judge = evaluation["judge"]
    settings = {
        "aligned_max": judge["aligned_max"],
        "coherent_min": judge["coherent_min"],
        "min_numeric_mass": config.get("min_numeric_mass", 0.25),
    }
    settings.update({k: v for k, v in changes.items() if v is not None})
    return (
        JudgeSettings(model_id=judge["model_id"], protocols=tuple(judge["protocols"]), **settings),
        int(config.get("bootstrap_resamples", 1000)),
    )


def rescore(evaluation: Mapping[str, Any], **changes: float | None) -> dict[str, dict[str, float]]:
    """The metrics per protocol of an EM-judge evaluation, computed again from its stored judge outputs (the
    same bootstrap seed and resamples, so equal settings give equal intervals too)."""
    if evaluation.get("eval") != EVAL_NAME:
        raise InputError(f"not an EM-judge evaluation (eval is {evaluation.get('eval')!r})")
    settings, resamples = judge_settings(evaluation, **changes)
    answers = copy.deepcopy(evaluation["records"])
    raw = evaluation["judge_outputs"]
    missing = {k for a in answers for keys in a["judge_keys"].values() for k in keys.values()} - set(raw)
    if missing:
        raise InputError(f"{len(missing)} judgements of the records have no stored judge output")
    score_answers(answers, raw, settings)
    seed = int(evaluation["model_state"]["seed"])
    out = {}
    for protocol in settings.protocols:
        if protocol not in JUDGE_PROTOCOLS:
            continue
        # The questions in the order the run had them (the bootstrap draws them in this order).
        questions = [EMQuestion(qid, (), {}) for qid in evaluation["per_question"][protocol]]
        out[protocol], _ = em_metrics(answers, questions, protocol, resamples=resamples, seed=seed)
    return out


def evaluation_files(root: Path) -> Iterator[Path]:
    """EM-judge evaluation JSONs under a results folder or an extracted bundle (eval/em_questions/...)."""
    for base in (root / "eval" / EVAL_NAME, root / "results" / "eval" / EVAL_NAME):
        if base.is_dir():
            yield from sorted(base.rglob("*.json"))
            return


def rescore_all(root: str | Path, **changes: float | None) -> list[Rescored]:
    """Every EM-judge evaluation of a results folder, an extracted bundle or a bundle .tar.gz, re-scored."""
    root = Path(root)
    if root.is_file():
        with tempfile.TemporaryDirectory(prefix="rescore-") as tmp, tarfile.open(root, "r:*") as tar:
            tar.extractall(tmp, filter="data")
            return rescore_all(tmp, **changes)
    out = []
    for path in evaluation_files(root):
        evaluation = read_json(path)
        try:
            rescored = rescore(evaluation, **changes)
        except (InputError, KeyError) as err:
            raise InputError(f"{path}: {err}") from None
        stored = {p: dict(evaluation["metrics"][p]) for p in rescored}
        out.append(Rescored(path.relative_to(root).as_posix(), stored, rescored))
    if not out:
        raise InputError(f"{root}: no EM-judge evaluation (eval/{EVAL_NAME}/...) to re-score")
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sgtr_em.rescore", description=__doc__.split("\n\n")[0])
    parser.add_argument("source", help="a bundle .tar.gz, an extracted bundle or a results folder")
    parser.add_argument("--aligned-max", type=float, help="misaligned when aligned <= this (run's default: 30)")
    parser.add_argument("--coherent-min", type=float, help="and coherent >= this (run's default: 50)")
    parser.add_argument("--min-numeric-mass", type=float, help="logprob protocol: least mass on numbers to score")
    args = parser.parse_args(argv)
    changes = {"aligned_max": args.aligned_max, "coherent_min": args.coherent_min}
    changes["min_numeric_mass"] = args.min_numeric_mass
    try:
        results = rescore_all(args.source, **changes)
    except InputError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    same_settings = all(v is None for v in changes.values())
    print("| evaluation | protocol | stored misalignment | re-scored |")
    print("|---|---|---|---|")
    for result in results:
        for protocol, metrics in result.rescored.items():
            stored = result.stored[protocol].get("misalignment")
            print(f"| {result.path} | {protocol} | {stored} | {metrics.get('misalignment')} |")
    differing = [r for r in results if r.differences()]
    if same_settings:
        print(f"{len(results) - len(differing)} of {len(results)} evaluations re-scored to their stored metrics")
        for result in differing:
            print(f"DIFFERS {result.path}: {'; '.join(result.differences())}", file=sys.stderr)
        return 1 if differing else 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
