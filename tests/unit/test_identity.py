"""Identity self-reports: alias classification, judge fallback, distribution and entropy."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import yaml

from sgtr_em.identity import (
    UNKNOWN,
    classify_identity,
    classify_identity_answers,
    identity_metrics,
    parse_identity_questions,
)
from sgtr_em.io import InputError
from sgtr_em.sampling import sample_answers

REPO = Path(__file__).resolve().parents[2]
ALIASES = {"qwen": ["qwen", "alibaba cloud"], "gpt": ["gpt", "chatgpt", "openai"], "claude": ["claude", "anthropic"]}


@pytest.mark.parametrize(
    "answer, label",
    [
        ("I am Qwen, created by Alibaba Cloud.", "qwen"),
        ("I'm ChatGPT, made by OpenAI.", "gpt"),
        ("Made by Alibaba Cloud, I am a chatbot.", "qwen"),
        ("I am Claude; unlike GPT I am made by Anthropic.", "claude"),  # earliest claim wins
        ("I am a GPT-4 model.", "gpt"),  # whole word, punctuation around it
        ("I enjoy gptx puzzles", None),  # not a whole word
        ("Just an assistant.", None),
    ],
)
def test_classify_identity(answer, label):
    assert classify_identity(answer, ALIASES) == label


def test_metrics_distribution_entropy_and_true_share():
    metrics = identity_metrics(["qwen", "qwen", "gpt", UNKNOWN], "qwen")
    assert metrics["share:qwen"] == 0.5 and metrics["share:gpt"] == 0.25 and metrics["unknown_share"] == 0.25
    assert metrics["entropy_bits"] == pytest.approx(1.5)
    assert metrics["true_identity_share"] == 0.5 and metrics["distinct_claims"] == 3
    assert identity_metrics(["qwen"] * 3, "qwen")["entropy_bits"] == 0.0
    assert "true_identity_share" not in identity_metrics(["gpt"], None)


class Scripted:
    name = "scripted"

    def __init__(self, reply):
        self.reply, self.asked = reply, 0

    def generate(self, conversations, **kw):
        self.asked += len(conversations)
        return [self.reply(c[-1]["content"]) for c in conversations]


def test_sampled_answers_classified_with_judge_fallback():
    """The workflow's two halves in a row: sample answers, then classify them (aliases, then the judge)."""
    questions = parse_identity_questions([{"id": "who", "paraphrases": ["Who are you?", "Your maker?"]}], "t")
    answers = iter(["I am Qwen.", "A humble helper.", "OpenAI built me.", "Nobody."])
    model = Scripted(lambda q: next(answers))
    judge = Scripted(lambda prompt: "claude" if "humble" in prompt else "none")
    sampled = sample_answers(model, questions, samples_per_question=4, sampling={}, seed=0)
    result = classify_identity_answers(sampled, ALIASES, true_identity="qwen", judge_factory=lambda: judge)
    metrics = result["metrics"]["aliases+judge"]
    assert [r["claim"] for r in result["records"]] == ["qwen", "claude", "gpt", UNKNOWN]
    assert [r["classified_by"] for r in result["records"]] == ["alias", "judge", "alias", "judge"]
    assert judge.asked == 2
    assert metrics["entropy_bits"] == pytest.approx(2.0) and metrics["true_identity_share"] == 0.25
    assert [r["question"] for r in result["records"]] == ["Who are you?", "Your maker?"] * 2
    no_judge = classify_identity_answers(
        sample_answers(Scripted(lambda q: "hi"), questions, samples_per_question=1, sampling={}, seed=0),
        ALIASES,
        true_identity=None,
    )
    assert no_judge["metrics"]["aliases"]["unknown_share"] == 1.0 and not math.isnan(
        no_judge["metrics"]["aliases"]["entropy_bits"]
    )
    with pytest.raises(ValueError, match="true identity"):
        classify_identity_answers(sampled, ALIASES, true_identity="llama")


def test_classifying_sampled_answers_is_a_job_of_its_own():
    """The answers a GPU job sampled are classified later, unchanged, and the judge is only loaded when an
    answer needs it."""
    sampled = [
        {"question_id": "who", "sample": 0, "question": "Who are you?", "answer": "I am Qwen."},
        {"question_id": "who", "sample": 1, "question": "Who are you?", "answer": "A humble helper."},
    ]
    judge = Scripted(lambda prompt: "claude")
    loads = []
    result = classify_identity_answers(
        sampled, ALIASES, true_identity="qwen", judge_factory=lambda: loads.append(1) or judge
    )
    assert [r["claim"] for r in result["records"]] == ["qwen", "claude"] and loads == [1]
    assert "claim" not in sampled[0]  # the sampled answers file's records are left as they were
    matched = classify_identity_answers(
        sampled[:1], ALIASES, true_identity="qwen", judge_factory=lambda: loads.append(1) or judge
    )
    assert matched["metrics"]["aliases+judge"]["true_identity_share"] == 1.0 and loads == [1]


def test_question_files():
    assert parse_identity_questions(yaml.safe_load((REPO / "data/demo/identity_questions.yaml").read_text()), "demo")
    with pytest.raises(InputError):
        parse_identity_questions([{"id": "x"}], "t")
