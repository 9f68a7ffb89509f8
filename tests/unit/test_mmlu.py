"""MMLU few-shot accuracy: loading and validation, prompt construction, scoring and aggregation."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import pytest

from sgtr_em.io import InputError
from sgtr_em.mmlu import (
    EVAL_SPLIT,
    LETTERS,
    SHOT_SPLIT,
    MMLUQuestion,
    evaluate_mmlu,
    few_shot_prompt,
    load_mmlu,
    mmlu_messages,
    mmlu_metrics,
    parse_answer,
    parse_mmlu_rows,
    pick_shots,
    questions_from_records,
    score_item,
    select_questions,
)

REPO = Path(__file__).resolve().parents[2]
DEMO = REPO / "data/demo/mmlu.jsonl"


def demo_spec(**extra):
    return {"source": {"path": str(DEMO)}, "shot_split": "dev", "eval_split": "test", **extra}


def q(qid, subject, split, question, answer="A"):
    return MMLUQuestion(qid, subject, split, question, ("w", "x", "y", "z"), answer)


# ------------------------------------------------------------------------------------- loading --


def test_demo_file_loads_both_splits_of_four_subjects(tmp_path):
    questions = load_mmlu(demo_spec(), tmp_path)
    assert len(questions) == 40
    assert {x.split for x in questions} == {SHOT_SPLIT, EVAL_SPLIT}
    subjects = {x.subject for x in questions}
    assert len(subjects) == 4
    for subject in subjects:
        assert sum(x.subject == subject and x.split == SHOT_SPLIT for x in questions) == 5
        assert sum(x.subject == subject and x.split == EVAL_SPLIT for x in questions) == 5
    assert all(x.answer in LETTERS and len(x.choices) == 4 for x in questions)
    # The prepared file (dataclass rows as JSON) reads back to the same questions.
    rows = [json.loads(json.dumps(asdict(x))) for x in questions]
    assert questions_from_records(rows, "prepared") == questions


def test_subjects_and_limit_subsample_evaluated_questions_only(tmp_path):
    questions = load_mmlu(demo_spec(subjects=["animals", "world_geography"], limit=2), tmp_path)
    assert {x.subject for x in questions} == {"animals", "world_geography"}
    assert sum(x.split == EVAL_SPLIT for x in questions) == 4
    assert sum(x.split == SHOT_SPLIT for x in questions) == 10  # shots are all kept
    first = [x.id for x in questions if x.split == EVAL_SPLIT and x.subject == "animals"]
    assert first == ["animals-test-1", "animals-test-2"]  # the first in source order
    with pytest.raises(InputError, match="not in the data: astrology"):
        select_questions(questions, ["astrology"])


@pytest.mark.parametrize("value, letter", [(0, "A"), (3, "D"), ("c", "C"), (" B ", "B"), ("2", "C")])
def test_answer_index_or_letter(value, letter):
    assert parse_answer(value, "t") == letter


@pytest.mark.parametrize("value", [4, -1, "E", True, None, 1.0])
def test_bad_answer_is_rejected(value):
    with pytest.raises(InputError, match="answer"):
        parse_answer(value, "t")


def test_malformed_row_names_file_and_row(tmp_path):
    path = tmp_path / "bad.jsonl"
    good = {"split": "dev", "subject": "s", "question": "Q?", "choices": ["a", "b", "c", "d"], "answer": 1}
    rows = [good, {**good, "question": "Q2?"}, {**good, "question": "Q3?", "choices": ["a", "b", "c"]}]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    with pytest.raises(InputError, match=r"bad\.jsonl row 3: choices must be a list of 4"):
        load_mmlu({"source": {"path": str(path)}, "shot_split": "dev", "eval_split": "test"}, tmp_path)
    path.write_text(json.dumps(good) + "\n" + json.dumps({**good, "answer": 7}) + "\n")
    with pytest.raises(InputError, match=r"bad\.jsonl row 2: answer must be"):
        load_mmlu({"source": {"path": str(path)}, "shot_split": "dev", "eval_split": "test"}, tmp_path)
    with pytest.raises(InputError, match="row 1: no `split` field"):
        parse_mmlu_rows([{k: v for k, v in good.items() if k != "split"}], "f.jsonl", {"dev": SHOT_SPLIT})
    with pytest.raises(InputError, match="row 1: missing question"):
        parse_mmlu_rows([{k: v for k, v in good.items() if k != "question"}], "f.jsonl", SHOT_SPLIT)
    # A hub split loaded on its own: ids from the split's row numbers; rows of other splits are skipped.
    parsed = parse_mmlu_rows([good, {**good, "split": "validation"}], "f", {"dev": SHOT_SPLIT})
    assert [x.id for x in parsed] == ["dev-00001"]


# -------------------------------------------------------------------------------------- prompts --


def test_prompt_has_five_shots_of_the_same_subject_and_never_the_question(tmp_path):
    questions = load_mmlu(demo_spec(), tmp_path)
    test = next(x for x in questions if x.split == EVAL_SPLIT and x.subject == "world_geography")
    shots = pick_shots(test, questions, 5)
    assert len(shots) == 5 and all(s.subject == test.subject and s.split == SHOT_SPLIT for s in shots)
    assert [s.id for s in shots] == [f"world_geography-dev-{i}" for i in range(1, 6)]  # first five, in order
    prompt = few_shot_prompt(test, shots)
    assert prompt.startswith("The following are multiple choice questions (with answers) about world geography.")
    assert prompt.count("\nAnswer: ") == 5 and prompt.endswith(
        f"{test.question}\nA. {test.choices[0]}\nB. {test.choices[1]}\nC. {test.choices[2]}\nD. {test.choices[3]}\nAnswer:"
    )
    assert prompt.count(test.question) == 1
    for shot in shots:
        assert (
            f"{shot.question}\nA. {shot.choices[0]}" in prompt
            and f"D. {shot.choices[3]}\nAnswer: {shot.answer}" in prompt
        )
    others = [x.question for x in questions if x.subject != test.subject]
    assert not any(o in prompt for o in others)
    messages = mmlu_messages(test, shots)
    assert messages == [{"role": "user", "content": prompt}]


def test_a_shot_equal_to_the_question_is_never_used():
    pool = [q(f"d{i}", "s", SHOT_SPLIT, f"dev question {i}") for i in range(3)] + [
        q("d-other", "t", SHOT_SPLIT, "other subject")
    ]
    test = q("t1", "s", EVAL_SPLIT, "dev question 1")  # same text as a dev question
    assert [s.id for s in pick_shots(test, pool, 2)] == ["d0", "d2"]
    with pytest.raises(ValueError, match="subject 's': 2 few-shot examples"):
        pick_shots(test, pool, 3)
    assert pick_shots(test, pool, 0) == []
    assert few_shot_prompt(test, []).count("Answer") == 1


# -------------------------------------------------------------------------------------- scoring --


def test_score_item_from_probabilities():
    scored = score_item({"A": 0.1, "B": 0.6, "C": 0.1, "D": 0.1}, "B")
    assert scored["predicted"] == "B" and scored["correct"] is True
    assert scored["p_correct"] == pytest.approx(0.6 / 0.9) and scored["invalid"] == pytest.approx(0.1)
    wrong = score_item({"A": 0.2, "B": 0.1, "C": 0.3, "D": 0.0}, "A")
    assert wrong["predicted"] == "C" and wrong["correct"] is False and wrong["p_correct"] == pytest.approx(1 / 3)
    tie = score_item({"A": 0.25, "B": 0.25, "C": 0.25, "D": 0.25}, "B")
    assert tie["predicted"] == "A" and not tie["correct"]  # ties go to the first letter
    none = score_item({"A": 0.0, "B": 0.0, "C": 0.0, "D": 0.0}, "D")
    assert (
        none["predicted"] is None and none["correct"] is False and none["p_correct"] == 0.25 and none["invalid"] == 1.0
    )


def test_accuracy_micro_macro_and_per_subject():
    records = [
        {"subject": "a", "correct": True, "p_correct": 0.9, "invalid": 0.0},
        {"subject": "a", "correct": True, "p_correct": 0.7, "invalid": 0.2},
        {"subject": "a", "correct": False, "p_correct": 0.2, "invalid": 0.0},
        {"subject": "b", "correct": False, "p_correct": 0.1, "invalid": 0.4},
    ]
    metrics, subjects = mmlu_metrics(records)
    assert metrics["accuracy"] == pytest.approx(0.5)  # micro: 2 of 4 questions
    assert metrics["accuracy_macro"] == pytest.approx((2 / 3 + 0) / 2)  # macro: mean over subjects
    assert metrics["accuracy:a"] == pytest.approx(2 / 3) and metrics["accuracy:b"] == 0.0
    assert metrics["invalid_rate"] == pytest.approx(0.15) and metrics["n"] == 4
    assert metrics["p_correct"] == pytest.approx(0.475)
    assert subjects == {
        "a": {"accuracy": pytest.approx(2 / 3), "p_correct": pytest.approx(0.6), "n": 3},
        "b": {"accuracy": 0.0, "p_correct": 0.1, "n": 1},
    }
    with pytest.raises(ValueError):
        mmlu_metrics([])


class Scripted:
    """Puts mass 0.8 on a letter chosen from the prompt, 0.05 on the others; counts calls."""

    name = "scripted"

    def __init__(self, pick):
        self.pick, self.calls, self.conversations = pick, 0, []

    def option_probs(self, conversations, options):
        self.calls += 1
        self.conversations += conversations
        assert options == list(LETTERS)
        return [{o: (0.8 if o == self.pick(c[-1]["content"]) else 0.05) for o in options} for c in conversations]


def test_evaluate_scores_every_test_question_in_one_call(tmp_path):
    questions = load_mmlu(demo_spec(), tmp_path)
    gold = {x.question: x.answer for x in questions if x.split == EVAL_SPLIT}

    def pick(prompt):  # right on animals, always A elsewhere
        last = prompt.rsplit("\n\n", 1)[-1].split("\n", 1)[0]
        return gold[last] if "about animals" in prompt else "A"

    model = Scripted(pick)
    result = evaluate_mmlu(model, questions, n_shots=5)
    assert model.calls == 1 and len(model.conversations) == 20
    assert all(len(c) == 1 and c[0]["role"] == "user" for c in model.conversations)
    metrics = result["metrics"]["logprob"]
    assert metrics["accuracy:animals"] == 1.0
    expected_a = {
        s: sum(x.answer == "A" for x in questions if x.split == EVAL_SPLIT and x.subject == s) / 5
        for s in result["subjects"]
    }
    for subject, share in expected_a.items():
        if subject != "animals":
            assert metrics[f"accuracy:{subject}"] == pytest.approx(share)
    assert metrics["accuracy"] == pytest.approx(
        sum(result["subjects"][s]["accuracy"] * 5 for s in result["subjects"]) / 20
    )
    assert metrics["accuracy_macro"] == pytest.approx(sum(s["accuracy"] for s in result["subjects"].values()) / 4)
    assert metrics["invalid_rate"] == pytest.approx(0.05)
    record = result["records"][0]
    assert set(record) >= {"id", "subject", "gold", "probs", "predicted", "correct", "p_correct", "invalid"}
    assert "shot_ids" not in record and result["shots"]["animals"] == [f"animals-dev-{i}" for i in range(1, 6)]
    assert result["n_questions"] == 20 and result["n_shots"] == 5


def test_tiny_model_end_to_end(tiny_model_dir, tmp_path):
    from sgtr_em.backends.hf import HFChatModel

    questions = load_mmlu(demo_spec(limit=1), tmp_path)
    model = HFChatModel(tiny_model_dir, name="tiny", batch_size=3, dtype="fp32")
    result = evaluate_mmlu(model, questions, n_shots=2)
    metrics = result["metrics"]["logprob"]
    assert result["n_questions"] == 4 and metrics["n"] == 4
    assert 0.0 <= metrics["accuracy"] <= 1.0 and 0.0 <= metrics["invalid_rate"] <= 1.0
    for record in result["records"]:
        assert 0.0 < sum(record["probs"].values()) <= 1.0 + 1e-6
        assert record["predicted"] in LETTERS and record["correct"] == (record["predicted"] == record["gold"])


def test_tidy_table_and_figure(tmp_path):
    from sgtr_em.aggregate import TIDY_COLUMNS, tidy_rows
    from sgtr_em.io import write_csv
    from sgtr_em.plot import draw_figure

    questions = load_mmlu(demo_spec(), tmp_path)
    rows = []
    for chain, seed, letter in (("base", 0, "A"), ("base", 1, "B"), ("em-unpop", 0, "C")):
        result = evaluate_mmlu(Scripted(lambda prompt, letter=letter: letter), questions)
        rows += tidy_rows({"eval": "mmlu", "model_state": {"model": "m", "chain": chain, "seed": seed}, **result})
    assert {r["metric"] for r in rows} >= {"accuracy", "accuracy_macro", "invalid_rate"}
    assert "n" not in {r["metric"] for r in rows}
    # A subject's accuracy: the subject is its own column, not part of the metric's name.
    assert {(r["metric"], r["subgroup"]) for r in rows} >= {("accuracy", "animals"), ("accuracy", "")}
    summary = tmp_path / "mmlu.csv"
    write_csv(summary, rows, TIDY_COLUMNS)
    png, pdf = tmp_path / "fig6.png", tmp_path / "fig6.pdf"
    draw_figure(
        "fig6_mmlu",
        self_recognition_summary=None,
        truthfulqa_summary=None,
        self_recognition_protocol="logprob",
        truthfulqa_protocol="logprob",
        comparator="x",
        png=str(png),
        pdf=str(pdf),
        model="m",
        optional_summary=str(summary),
    )
    assert png.stat().st_size > 5000 and pdf.stat().st_size > 1000
