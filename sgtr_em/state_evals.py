"""Every evaluation of one model state, from one loaded model: the records an evaluation job writes.

A state is loaded once (process start-up, library imports and the model's weights are most of a small
evaluation's cost) and each step writes its own output, at the evaluation's own path, with its own settings
in the output's provenance. The steps are named by their evaluation (`self_recognition-<comparator>`,
`truthfulqa`, `em_questions` and `identity` for the sampled answers their judges score, `mmlu`) and
`summaries` for the state's fresh summaries.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from .backends import ChatModel
from .evals import evaluate_self_recognition, evaluate_truthfulqa
from .mmlu import PROTOCOL as MMLU_PROTOCOL
from .mmlu import MMLUQuestion, evaluate_mmlu
from .prompts import PromptSet, summary_messages
from .runtime import provenance
from .sampling import AskedQuestion, sample_answers


@dataclass(frozen=True)
class EvaluatedState:
    """The state a job evaluates and what each of its records names: the rule, the model's identity
    (`runtime.model_identity`), its backend settings and the run."""

    rule: str
    model: str
    chain: str
    seed: int
    model_identity: dict[str, Any]
    backend: dict[str, Any]
    run_name: str

    def record(self) -> dict[str, Any]:
        return {"model": self.model, "chain": self.chain, "seed": self.seed}

    def provenance(self, config: dict[str, Any], *, seeds: dict[str, Any], protocols: list[str], **extra: Any):
        return provenance(self.rule, config, model=self.model_identity, seeds=seeds, protocols=protocols, **extra)


def summarise(
    model: ChatModel, articles: dict[str, str], *, style: str, prompts: PromptSet, sampling: dict[str, Any], seed: int
) -> list[dict[str, str]]:
    """One summary per article (rows {id, summary}), seeded."""
    replies = model.generate(
        [summary_messages(text, style, prompts) for text in articles.values()], seed=seed, **sampling
    )
    return [{"id": aid, "summary": reply} for aid, reply in zip(articles, replies, strict=True)]


def self_recognition_output(
    model: ChatModel,
    state: EvaluatedState,
    other: str,
    settings: dict[str, Any],
    *,
    articles: dict[str, str],
    self_summaries: dict[str, str],
    self_summaries_path: str,
    other_summaries: dict[str, str],
    prompts: PromptSet,
    summary_seed: int,
) -> dict[str, Any]:
    """Self-recognition of the state against comparator `other` (settings: eval.self_recognition's, the
    state's decoding, its model's framing and identity system prompt)."""
    result = evaluate_self_recognition(
        model,
        articles,
        self_summaries,
        other_summaries,
        framing=settings["framing"],
        identity_system=settings["identity_system_prompt"],
        protocols=settings["protocols"],
        seed=state.seed,
        sampling=settings["sampling"],
        prompts=prompts,
    )
    recorded = {k: v for k, v in settings.items() if k != "identity_system_prompt"}
    return {
        "eval": f"self_recognition-{other}",
        "model_state": state.record(),
        "self_source": settings["self_source"],
        "self_summaries": self_summaries_path,
        "other_source": other,
        "framing": settings["framing"],
        "primary_protocol": settings["primary_protocol"],
        **result,
        "provenance": state.provenance(
            {**recorded, "backend": state.backend, "run_name": state.run_name},
            seeds={"training": state.seed, "sampling": state.seed, "summaries": summary_seed},
            protocols=settings["protocols"],
            prompts=prompts.provenance(),
        ),
    }


def truthfulqa_output(
    model: ChatModel, state: EvaluatedState, settings: dict[str, Any], questions: list[dict[str, str]]
) -> dict[str, Any]:
    """TruthfulQA misalignment (1 - p correct) of the state."""
    result = evaluate_truthfulqa(
        model, questions, protocols=settings["protocols"], seed=state.seed, sampling=settings["sampling"]
    )
    return {
        "eval": "truthfulqa",
        "model_state": state.record(),
        "primary_protocol": settings["primary_protocol"],
        **result,
        "provenance": state.provenance(
            {**settings, "backend": state.backend, "run_name": state.run_name},
            seeds={"training": state.seed, "sampling": state.seed},
            protocols=settings["protocols"],
        ),
    }


def sampled_answers_output(
    model: ChatModel,
    state: EvaluatedState,
    settings: dict[str, Any],
    questions: Sequence[AskedQuestion],
) -> dict[str, Any]:
    """N sampled answers per question as asked (the EM questions' chosen paraphrases, or the identity
    questions) for a judging job to score; the provenance names what the answers depend on
    (samples_per_question, sampling, paraphrases, run), which the judging job carries into its own record."""
    answers = sample_answers(
        model,
        questions,
        samples_per_question=settings["samples_per_question"],
        sampling=settings["sampling"],
        seed=state.seed,
    )
    return {
        "model_state": state.record(),
        "answers": answers,
        "provenance": state.provenance(
            {**settings, "run_name": state.run_name},
            seeds={"training": state.seed, "sampling": state.seed},
            protocols=[],
        ),
    }


def mmlu_output(
    model: ChatModel, state: EvaluatedState, settings: dict[str, Any], questions: list[MMLUQuestion]
) -> dict[str, Any]:
    """MMLU few-shot accuracy (letters A-D scored by next-token probabilities), at eval.mmlu's batch size."""
    with batch_size(model, settings["backend"]["batch_size"]):
        result = evaluate_mmlu(model, questions, n_shots=settings["n_shots"])
    return {
        "eval": "mmlu",
        "model_state": state.record(),
        **result,
        "provenance": state.provenance(
            {**settings, "run_name": state.run_name},
            # Deterministic: nothing is sampled.
            seeds={"training": state.seed, "sampling": None},
            protocols=[MMLU_PROTOCOL],
        ),
    }


@contextlib.contextmanager
def batch_size(model: ChatModel, size: int) -> Iterator[None]:
    """The model's batch size set to `size` for a step (a model without batches is left as it is)."""
    if not hasattr(model, "batch_size"):
        yield
        return
    before = model.batch_size
    model.batch_size = size
    try:
        yield
    finally:
        model.batch_size = before
