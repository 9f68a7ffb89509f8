"""Seeded sampling: per-item random draws (orderings, labels, bootstrap resamples) and a model's sampled
answers to free-form questions (the EM questions' and the identity questions')."""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any, Protocol

from .backends import ChatModel, Conversation, decoding_settings
from .evaluated_state import EvaluatedState


def seeded_rng(seed: int, *keys: object) -> random.Random:
    """A per-item RNG: results do not depend on iteration order or on other items."""
    return random.Random(":".join([str(seed), *map(str, keys)]))


class AskedQuestion(Protocol):
    """A free-form question asked in several paraphrases (em_judge.EMQuestion, identity.IdentityQuestion)."""

    @property
    def id(self) -> str: ...

    @property
    def paraphrases(self) -> tuple[str, ...]: ...


def sample_answers(
    model: ChatModel,
    questions: Sequence[AskedQuestion],
    *,
    samples_per_question: int,
    sampling: dict[str, Any],
    seed: int,
) -> list[dict[str, Any]]:
    """N answers per question (user turn only), cycling through its paraphrases."""
    items: list[dict[str, Any]] = []
    for question in questions:
        for sample in range(samples_per_question):
            index = sample % len(question.paraphrases)
            items.append(
                {
                    "question_id": question.id,
                    "sample": sample,
                    "paraphrase_index": index,
                    "question": question.paraphrases[index],
                }
            )
    conversations: list[Conversation] = [[{"role": "user", "content": item["question"]}] for item in items]
    replies = model.generate(conversations, seed=seed, **sampling)
    for item, reply in zip(items, replies, strict=True):
        item["answer"] = reply
    return items


def sampled_answers_record(
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
            decoding=decoding_settings(model, settings["sampling"]),
        ),
    }
