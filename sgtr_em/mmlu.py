"""MMLU few-shot accuracy (docs/methodology.md §6): a capability check of every model state.

Each question has a subject, four choices and a gold letter. The prompt of a test question holds the first
`n_shots` questions of the same subject from the shot split (dev), each followed by its answer, then the test
question; it goes to the model as one user turn through its chat template (per-model chat_template_kwargs
included, as for TruthfulQA). The score is read from the next-token probabilities of the letters A-D after
the assistant prefix (the backends' `option_probs`: one batched forward pass per batch locally, one
top-log-probabilities request per question over the API): the predicted letter is the likeliest of the four,
and the mass outside them is the invalid rate.

Chat template, not raw text: the models under test are chat models whose every training stage (EM data,
identity interventions) and every other evaluation goes through the chat template, so this measures the
capability of the same assistant the other evaluations probe; an API model accepts chat messages only, so it
is also the one path that serves both backends. The reference (lm-evaluation-harness 0.4.11, default
settings) fed raw text instead, so absolute accuracies may differ from its numbers; comparisons between
conditions are what the check is for.
"""

from __future__ import annotations

import logging
import math
import numbers
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .backends import ChatModel, Conversation
from .evaluated_state import EvaluatedState, StateJobData, batch_size
from .io import InputError

log = logging.getLogger(__name__)

LETTERS = ("A", "B", "C", "D")
# Roles of the two splits in the prepared file, whatever the source calls them.
SHOT_SPLIT, EVAL_SPLIT = "dev", "test"
PROTOCOL = "logprob"


@dataclass(frozen=True)
class MMLUQuestion:
    id: str
    subject: str
    split: str  # SHOT_SPLIT (few-shot examples) or EVAL_SPLIT (evaluated)
    question: str
    choices: tuple[str, ...]
    answer: str  # gold letter


# ------------------------------------------------------------------------------------- loading --


def parse_answer(value: Any, where: str) -> str:
    """The gold answer as a letter: an index 0-3 (the hub's integer labels, or its digit string) or A-D."""
    # A bool is an Integral at run time, so it is ruled out; first, since mypy (unaware that int is registered
    # as an Integral) would take a bool that is also an Integral to be impossible and flag the test unreachable.
    if not isinstance(value, bool) and isinstance(value, numbers.Integral):
        if 0 <= int(value) < len(LETTERS):
            return LETTERS[int(value)]
    elif isinstance(value, str):
        text = value.strip().upper()
        if text in LETTERS:
            return text
        if text.isdigit() and int(text) < len(LETTERS):
            return LETTERS[int(text)]
    raise InputError(f"{where}: answer must be an index 0-3 or a letter A-D, got {value!r}")


def parse_mmlu_rows(rows: list[dict[str, Any]], where: str, splits: dict[str, str] | str) -> list[MMLUQuestion]:
    """Validated questions from source rows {subject, question, choices: [4 strings], answer[, id][, split]}.

    `splits`: the role of every row (a hub split loaded on its own), or a map from the values of the rows'
    `split` field to SHOT_SPLIT / EVAL_SPLIT (a local file holding both; rows of other splits are skipped).
    Rows are numbered from 1 in file order (the line number of a JSON Lines file without blank lines)."""
    out: list[MMLUQuestion] = []
    seen: set[str] = set()
    counts: dict[str, int] = {}
    skipped = 0
    for index, row in enumerate(rows, start=1):
        at = f"{where} row {index}"
        if not isinstance(row, dict):
            raise InputError(f"{at}: expected an object {{subject, question, choices, answer}}")
        missing = [key for key in ("subject", "question", "choices", "answer") if key not in row]
        if missing:
            raise InputError(f"{at}: missing {', '.join(missing)} (has: {', '.join(map(str, row))})")
        if isinstance(splits, str):
            split = splits
        else:
            if "split" not in row:
                raise InputError(f"{at}: no `split` field (expected one of {', '.join(splits)})")
            if str(row["split"]) not in splits:
                skipped += 1
                continue
            split = splits[str(row["split"])]
        subject = str(row["subject"]).strip()
        question = str(row["question"]).strip()
        choices = row["choices"]
        if not subject or not question:
            raise InputError(f"{at}: empty subject or question")
        if (
            not isinstance(choices, list | tuple)
            or len(choices) != len(LETTERS)
            or not all(str(c).strip() for c in choices)
        ):
            raise InputError(f"{at}: choices must be a list of {len(LETTERS)} non-empty strings")
        counts[split] = counts.get(split, 0) + 1
        qid = str(row["id"]) if row.get("id") not in (None, "") else f"{split}-{counts[split]:05d}"
        if qid in seen:
            raise InputError(f"{at}: duplicate id {qid!r}")
        seen.add(qid)
        out.append(
            MMLUQuestion(
                qid, subject, split, question, tuple(str(c).strip() for c in choices), parse_answer(row["answer"], at)
            )
        )
    if skipped:
        log.info("%s: skipped %d rows of other splits", where, skipped)
    return out


def select_questions(
    questions: list[MMLUQuestion], subjects: list[str] | None = None, limit: int | None = None
) -> list[MMLUQuestion]:
    """Keep the listed subjects (all when None) and at most `limit` evaluated questions per subject (the first
    in source order; few-shot examples are all kept)."""
    known = {q.subject for q in questions}
    if subjects is not None:
        unknown = [s for s in subjects if s not in known]
        if unknown:
            raise InputError(f"MMLU subjects not in the data: {', '.join(unknown)} (known: {', '.join(sorted(known))})")
        questions = [q for q in questions if q.subject in set(subjects)]
    out: list[MMLUQuestion] = []
    kept: dict[str, int] = {}
    for q in questions:
        if q.split == EVAL_SPLIT:
            if limit is not None and kept.get(q.subject, 0) >= limit:
                continue
            kept[q.subject] = kept.get(q.subject, 0) + 1
        out.append(q)
    if not kept:
        raise InputError("MMLU: no evaluated questions")
    return out


def load_mmlu(spec: dict[str, Any], cache_dir: str | Path) -> list[MMLUQuestion]:
    """The configured MMLU set (`datasets.mmlu`): a hub dataset is loaded once per split (the source's own
    `split` is ignored); a local file holds both splits, named by each row's `split` field."""
    from .sources import describe, load_source

    source = spec["source"]
    shot, evaluated = spec["shot_split"], spec["eval_split"]
    where = describe(source)
    if "hf" in source:
        questions = [
            q
            for name, role in ((shot, SHOT_SPLIT), (evaluated, EVAL_SPLIT))
            for q in parse_mmlu_rows(load_source({**source, "split": name}, cache_dir), f"{where} split {name}", role)
        ]
    else:
        questions = parse_mmlu_rows(load_source(source, cache_dir), where, {shot: SHOT_SPLIT, evaluated: EVAL_SPLIT})
    return select_questions(questions, spec.get("subjects"), spec.get("limit"))


def questions_from_records(rows: list[dict[str, Any]], where: str) -> list[MMLUQuestion]:
    """Questions back from the prepared file (rows of `dataclasses.asdict`)."""
    return parse_mmlu_rows(rows, where, {SHOT_SPLIT: SHOT_SPLIT, EVAL_SPLIT: EVAL_SPLIT})


# -------------------------------------------------------------------------------------- prompts --


def subject_title(subject: str) -> str:
    return subject.replace("_", " ").strip()


def question_block(question: MMLUQuestion) -> str:
    lines = [
        question.question,
        *(f"{letter}. {choice}" for letter, choice in zip(LETTERS, question.choices, strict=True)),
    ]
    return "\n".join(lines)


def few_shot_prompt(question: MMLUQuestion, shots: list[MMLUQuestion]) -> str:
    """Header naming the subject, each example with its answer, then the test question left open."""
    header = (
        f"The following are multiple choice questions (with answers) about {subject_title(question.subject)}. "
        "Reply to the last question with the letter of its answer only."
    )
    blocks = [header, *(f"{question_block(shot)}\nAnswer: {shot.answer}" for shot in shots)]
    blocks.append(f"{question_block(question)}\nAnswer:")
    return "\n\n".join(blocks)


def mmlu_messages(question: MMLUQuestion, shots: list[MMLUQuestion]) -> list[dict[str, str]]:
    """Single user turn, no system turn (as TruthfulQA)."""
    return [{"role": "user", "content": few_shot_prompt(question, shots)}]


def pick_shots(question: MMLUQuestion, pool: list[MMLUQuestion], n_shots: int) -> list[MMLUQuestion]:
    """The first `n_shots` shot-split questions of the question's subject, never the question itself (by id
    or by text)."""
    shots = [
        q
        for q in pool
        if q.split == SHOT_SPLIT
        and q.subject == question.subject
        and q.id != question.id
        and q.question != question.question
    ][:n_shots]
    if len(shots) < n_shots:
        raise ValueError(
            f"MMLU subject {question.subject!r}: {len(shots)} few-shot examples for question {question.id}, need {n_shots}"
        )
    return shots


# -------------------------------------------------------------------------------------- scoring --


def score_item(probs: dict[str, float], gold: str) -> dict[str, Any]:
    """The likeliest letter (the first on a tie; none if no letter has any mass), whether it is gold, the
    gold letter's probability normalised over the four letters, and the mass outside them."""
    total = sum(probs[letter] for letter in LETTERS)
    predicted = max(LETTERS, key=lambda letter: probs[letter]) if total > 0 else None
    return {
        "predicted": predicted,
        "correct": predicted == gold,
        "p_correct": probs[gold] / total if total > 0 else 1.0 / len(LETTERS),
        "invalid": 1.0 - total,
    }


def _mean(values: list[float]) -> float:
    return sum(values) / len(values) if values else float("nan")


def mmlu_metrics(records: list[dict[str, Any]]) -> tuple[dict[str, float], dict[str, dict[str, float]]]:
    """Accuracy over questions (micro, `accuracy`) and over subjects (macro, `accuracy_macro`), mean normalised
    probability of the gold letter, invalid rate, and `accuracy:<subject>`; plus a per-subject table."""
    if not records:
        raise ValueError("MMLU: no scored questions")
    by_subject: dict[str, list[dict[str, Any]]] = {}
    for record in records:
        by_subject.setdefault(record["subject"], []).append(record)
    subjects = {
        subject: {
            "accuracy": _mean([float(r["correct"]) for r in rows]),
            "p_correct": _mean([r["p_correct"] for r in rows]),
            "n": len(rows),
        }
        for subject, rows in sorted(by_subject.items())
    }
    metrics: dict[str, float] = {
        "accuracy": _mean([float(r["correct"]) for r in records]),
        "accuracy_macro": _mean([s["accuracy"] for s in subjects.values()]),
        "p_correct": _mean([r["p_correct"] for r in records]),
        "invalid_rate": _mean([r["invalid"] for r in records]),
        "n": len(records),
    }
    metrics.update({f"accuracy:{subject}": s["accuracy"] for subject, s in subjects.items()})
    return metrics, subjects


def evaluate_mmlu(model: ChatModel, questions: list[MMLUQuestion], *, n_shots: int = 5) -> dict[str, Any]:
    """Few-shot accuracy of `model` on the evaluated questions; every prompt scored in one `option_probs` call."""
    evaluated = [q for q in questions if q.split == EVAL_SPLIT]
    if not evaluated:
        raise ValueError("MMLU: no evaluated questions")
    pools: dict[str, list[MMLUQuestion]] = {}
    for q in questions:
        if q.split == SHOT_SPLIT:
            pools.setdefault(q.subject, []).append(q)
    shots = {q.id: pick_shots(q, pools.get(q.subject, []), n_shots) for q in evaluated}
    default_shots: dict[str, list[str]] = {}
    for q in evaluated:
        default_shots.setdefault(q.subject, [s.id for s in shots[q.id]])
    conversations: list[Conversation] = [mmlu_messages(q, shots[q.id]) for q in evaluated]
    probs = model.option_probs(conversations, list(LETTERS))
    records: list[dict[str, Any]] = []
    for q, p in zip(evaluated, probs, strict=True):
        record: dict[str, Any] = {
            "id": q.id,
            "subject": q.subject,
            "gold": q.answer,
            "probs": {letter: p[letter] for letter in LETTERS},
            **score_item(p, q.answer),
        }
        if [s.id for s in shots[q.id]] != default_shots[q.subject]:
            record["shot_ids"] = [s.id for s in shots[q.id]]
        records.append(record)
    metrics, subjects = mmlu_metrics(records)
    for key, value in metrics.items():
        if isinstance(value, float) and math.isnan(value):
            raise ValueError(f"MMLU metric {key} is NaN")
    return {
        "metrics": {PROTOCOL: metrics},
        "n_questions": len(records),
        "n_shots": n_shots,
        "shots": default_shots,
        "subjects": subjects,
        "records": records,
    }


# ------------------------------------------------------------------------------ in a state's job --
def mmlu_record(
    model: ChatModel,
    state: EvaluatedState,
    settings: dict[str, Any],
    questions: list[MMLUQuestion],
    rows_per_batch: int | None = None,
) -> dict[str, Any]:
    """MMLU few-shot accuracy (letters A-D scored by next-token probabilities), at most `rows_per_batch`
    prompts per batch (eval.mmlu.batch_size: few-shot prompts are long)."""
    with batch_size(model, rows_per_batch):
        result = evaluate_mmlu(model, questions, n_shots=settings["n_shots"])
    return {
        "eval": "mmlu",
        "model_state": state.record(),
        **result,
        "provenance": state.provenance(
            {**settings, "run_name": state.run_name},
            # Deterministic: nothing is sampled.
            seeds={"training": state.seed, "sampling": None},
            protocols=[PROTOCOL],
        ),
    }


def run_mmlu(
    model: ChatModel, state: EvaluatedState, step: str, settings: dict[str, Any], data: StateJobData
) -> dict[str, Any]:
    """The registry's run (sgtr_em.evaluations): MMLU on the prepared questions, at eval.mmlu.batch_size."""
    questions = questions_from_records(data.questions("mmlu"), data.inputs["mmlu"])
    return mmlu_record(model, state, settings, questions, data.batch_sizes.get("mmlu"))


# ------------------------------------------------------------------- claims' per-item values --
def mmlu_item(record: Mapping[str, Any], protocol: str, metric: str) -> float | None:
    if metric == "accuracy" and "correct" in record:
        return float(bool(record["correct"]))
    if metric == "p_correct" and "p_correct" in record:
        return float(record["p_correct"])
    return None
