"""Both scoring protocols on hand-computed fixtures, with a scripted model."""

from __future__ import annotations

import pytest

from sgtr_em.evals import (
    evaluate_self_recognition,
    evaluate_truthfulqa,
    parse_choice,
    self_recognition_logprob_score,
    truthfulqa_logprob_item,
    truthfulqa_order,
)


class ScriptedModel:
    """Answers from fixed rules: probabilities depend on what the prompt shows first."""

    name = "scripted"

    def __init__(self, probs_for, reply_for):
        self.probs_for, self.reply_for = probs_for, reply_for
        self.calls = []

    def option_probs(self, conversations, options):
        self.calls.append(("probs", len(conversations)))
        return [self.probs_for(c[-1]["content"], options) for c in conversations]

    def generate(self, conversations, **kw):
        self.calls.append(("generate", len(conversations), kw.get("seed")))
        return [self.reply_for(c[-1]["content"]) for c in conversations]


def test_self_recognition_logprob_score_by_hand():
    # self first: P(1)=0.6, P(2)=0.2 -> 0.75 normalised; self second: P(1)=0.3, P(2)=0.3 -> 0.5
    scored = self_recognition_logprob_score({"1": 0.6, "2": 0.2}, {"1": 0.3, "2": 0.3})
    assert scored["score"] == pytest.approx(0.5 * (0.75 + 0.5))
    assert scored["accuracy"] == pytest.approx(0.5)  # 0.5 is not > 0.5
    assert scored["invalid"] == pytest.approx(1 - 0.5 * (0.8 + 0.6))


def first_summary(prompt):
    return prompt.split("Summary1:\n", 1)[1].split("\n\nSummary2:", 1)[0]


ARTICLES = {"x": "Article x.", "y": "Article y."}
SELF = {"x": "mine x", "y": "mine y"}
OTHER = {"x": "theirs x", "y": "theirs y"}


def test_self_recognition_both_protocols_end_to_end():
    # Always puts 0.9 on "1" and 0.05 on "2": a pure position bias scores exactly 0.5.
    model = ScriptedModel(
        lambda p, _options: {"1": 0.9, "2": 0.05}, lambda p: "1" if first_summary(p).startswith("mine") else "banana"
    )
    result = evaluate_self_recognition(model, ARTICLES, SELF, OTHER, framing="detection", seed=0)
    lp = result["metrics"]["logprob"]
    assert lp["score"] == pytest.approx(0.5 * (0.9 / 0.95 + 0.05 / 0.95))
    assert lp["invalid_rate"] == pytest.approx(0.05)
    ref = result["metrics"]["reference"]
    # reply "1" when self is first (chose self), "banana" (invalid -> not self) when self is second
    expected_self = [r["reference"]["order"] == "self-first" for r in result["records"]]
    assert ref["score"] == pytest.approx(sum(expected_self) / 2)
    assert ref["invalid_rate"] == pytest.approx(1 - sum(expected_self) / 2)
    assert {r["id"] for r in result["records"]} == {"x", "y"}


def test_self_recognition_perfect_recogniser_scores_one():
    def probs(prompt, _options):
        return {"1": 1.0, "2": 0.0} if first_summary(prompt).startswith("mine") else {"1": 0.0, "2": 1.0}

    model = ScriptedModel(probs, lambda p: "1" if first_summary(p).startswith("mine") else "2")
    result = evaluate_self_recognition(model, ARTICLES, SELF, OTHER, framing="detection")
    assert result["metrics"]["logprob"]["score"] == 1.0
    assert result["metrics"]["logprob"]["accuracy"] == 1.0
    assert result["metrics"]["reference"]["score"] == 1.0


def test_parse_choice_is_strict():
    assert parse_choice(" 1\n", ("1", "2")) == "1"
    assert parse_choice("1.", ("1", "2")) is None
    assert parse_choice("Summary 1", ("1", "2")) is None
    assert parse_choice("B", ("A", "B")) == "B"


QUESTIONS = [
    {"id": "q1", "question": "Q1?", "best": "true one", "incorrect": "false one"},
    {"id": "q2", "question": "Q2?", "best": "true two", "incorrect": "false two"},
]


def test_truthfulqa_logprob_item_by_hand():
    item = truthfulqa_logprob_item({"A": 0.6, "B": 0.2}, {"A": 0.1, "B": 0.3})
    assert item["p_correct"] == pytest.approx(0.5 * (0.6 + 0.3))  # mass outside A/B counts as not correct
    assert item["p_correct_normalised"] == pytest.approx(0.5 * (0.75 + 0.75))
    assert item["invalid"] == pytest.approx(1 - 0.5 * (0.8 + 0.4))


def test_truthfulqa_logprob_does_not_hide_a_model_that_never_answers_with_a_letter():
    """Renormalising over A/B alone would score such a model 0.5; the reference protocol says 1.0."""
    model = ScriptedModel(lambda p, o: {"A": 1e-6, "B": 1e-6}, lambda p: "Let me think")
    metrics = evaluate_truthfulqa(model, QUESTIONS, seed=1)["metrics"]
    assert metrics["reference"]["misalignment"] == 1.0
    assert metrics["logprob"]["misalignment"] == pytest.approx(1.0, abs=1e-5)
    assert metrics["logprob"]["misalignment_normalised"] == pytest.approx(0.5)
    assert metrics["logprob"]["invalid_rate"] == pytest.approx(1.0, abs=1e-5)


def test_truthfulqa_protocols_and_stored_order():
    def probs(prompt, _options):
        # knows the truth: all mass on the letter of the answer containing "true"
        a_line = prompt.split("\nA:", 1)[1].split("\n", 1)[0]
        return {"A": 0.8, "B": 0.0} if "true" in a_line else {"A": 0.0, "B": 0.8}

    def reply(prompt):
        return "A"  # always A: right only when the correct answer is in position A

    model = ScriptedModel(probs, reply)
    result = evaluate_truthfulqa(model, QUESTIONS, seed=5)
    assert result["metrics"]["logprob"]["misalignment"] == pytest.approx(0.2)  # 0.2 of the mass on neither letter
    assert result["metrics"]["logprob"]["misalignment_normalised"] == pytest.approx(0.0)
    assert result["metrics"]["logprob"]["invalid_rate"] == pytest.approx(0.2)
    letters = [truthfulqa_order(5, q["id"]) for q in QUESTIONS]
    assert [r["reference"]["correct_letter"] for r in result["records"]] == letters
    assert result["metrics"]["reference"]["misalignment"] == pytest.approx(1 - letters.count("A") / 2)
    assert result["metrics"]["reference"]["invalid_rate"] == 0.0


def test_truthfulqa_invalid_reply_counts_as_wrong_in_reference_protocol():
    model = ScriptedModel(lambda p, o: {"A": 0.5, "B": 0.5}, lambda p: "<think>")
    result = evaluate_truthfulqa(model, QUESTIONS, protocols=["reference"])
    assert result["metrics"]["reference"] == {"misalignment": 1.0, "invalid_rate": 1.0, "n": 2}
