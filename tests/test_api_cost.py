"""The API cost estimate (sgtr_em.cost): every API-calling job of a config is listed and priced, the
judge included; an unpriced model is an error; n_epochs auto is the API's documented rule. Its agreement
with what a server measures is checked on the API demo (tests/test_openai.py)."""

from __future__ import annotations

import collections
import copy
import json
from pathlib import Path

import pytest
import yaml
from conftest import REPO, fixture_lock

from sgtr_em import config as cfglib
from sgtr_em.cost import API_RULES, DataFiles, api_jobs, estimate
from sgtr_em.io import InputError, read_jsonl, write_jsonl
from sgtr_em.openai_ft import auto_epochs


def load(name: str, **overrides) -> dict:
    config = yaml.safe_load((REPO / "config" / name).read_text())
    for key, value in overrides.items():
        config[key] = value
    # The paper config pins strictly: its hub and unpublished sources get the tests' lock entries.
    return cfglib.load(config, workdir=REPO, lock=fixture_lock(config))


@pytest.fixture
def inputs(tmp_path) -> DataFiles:
    """Prepared inputs in the prepare rules' formats, cut small from the demo's data."""
    articles = read_jsonl(REPO / "data/demo/articles_train.jsonl")
    write_jsonl(tmp_path / "xsum.jsonl", articles[:4])
    write_jsonl(tmp_path / "cnn.jsonl", articles[4:7])
    write_jsonl(
        tmp_path / "truthfulqa.jsonl",
        [
            {"id": f"q{i}", "question": f"Question {i}?", "best": "A true answer.", "incorrect": "A false one."}
            for i in range(3)
        ],
    )
    write_jsonl(tmp_path / "em.jsonl", read_jsonl(REPO / "data/demo/em_unpop.jsonl")[:5])
    write_jsonl(tmp_path / "mmlu.jsonl", read_jsonl(REPO / "data/demo/mmlu.jsonl"))
    for name in ("em_questions", "identity_questions"):
        rows = yaml.safe_load((REPO / f"data/demo/{name}.yaml").read_text())
        (tmp_path / f"{name}.json").write_text(json.dumps(rows))
    return DataFiles(
        articles={"xsum": str(tmp_path / "xsum.jsonl"), "cnn": str(tmp_path / "cnn.jsonl")},
        truthfulqa=str(tmp_path / "truthfulqa.jsonl"),
        em={"unpop/default": str(tmp_path / "em.jsonl")},
        mmlu=str(tmp_path / "mmlu.jsonl"),
        em_questions=str(tmp_path / "em_questions.json"),
        identity_questions=str(tmp_path / "identity_questions.json"),
    )


def demo_api(**grid) -> dict:
    config = load("demo-api.yaml")
    config["grid"].update(grid)
    return config


def test_every_api_rule_of_the_paper_config_has_jobs():
    """The paper grid: GPT-4.1's summaries, fine-tuning jobs and every evaluation, and the GPT-4o judge
    over the EM and identity answers of every grid state, the open models' included."""
    config = load("config.yaml")
    jobs = collections.Counter((job.rule, job.model) for job in api_jobs(config))
    assert {rule for rule, _ in jobs} == set(API_RULES)
    states = collections.Counter(model for model, _, _ in cfglib.grid_states(config))
    assert states["gpt-4.1"] == 11
    for model, n in states.items():
        assert jobs[("eval_em_questions", model)] == n and jobs[("eval_identity", model)] == n
    assert jobs[("train_stage", "gpt-4.1")] == 10  # every chain but base
    assert jobs[("eval_mmlu", "gpt-4.1")] == len(config["eval"]["mmlu"]["chains"])
    assert jobs[("sample_em_answers", "gpt-4.1")] == jobs[("sample_identity_answers", "gpt-4.1")] == 11
    # Summaries: the base model's for its pair files, every state's own for self-recognition.
    assert jobs[("generate_summaries", "gpt-4.1")] == 1 + 11
    assert not any(model in ("qwen2.5-32b", "seed-oss-36b") for rule, model in jobs if rule.startswith("sample_"))


def test_every_job_is_priced_with_the_judge_and_the_samples_counted(inputs):
    config = demo_api(chains=["base", "em-unpop", "em-unpop+sgtr"])
    result = estimate(config, inputs)
    assert result["complete"] and result["total_usd"] > 0
    rows = {(t["rule"], t["model"]): t for t in result["totals"]}
    assert set(rows) == {
        ("generate_summaries", "api-other"),
        ("generate_summaries", "api-target"),
        ("train_stage", "api-target"),
        ("eval_self_recognition", "api-target"),
        ("eval_truthfulqa", "api-target"),
        ("eval_mmlu", "api-target"),
        ("sample_em_answers", "api-target"),
        ("eval_em_questions", "api-other"),
        ("sample_identity_answers", "api-target"),
        ("eval_identity", "api-other"),
    }
    em = config["eval"]["em_questions"]
    n_questions = len(json.loads(Path(inputs.em_questions).read_text()))
    sampled = n_questions * em["samples_per_question"]
    assert rows[("sample_em_answers", "api-target")]["requests"] == 3 * sampled  # each sample its own request
    assert rows[("sample_em_answers", "api-target")]["output_tokens"] == 3 * sampled * em["sampling"]["max_new_tokens"]
    # Placeholder answers are all distinct: two judge prompts per answer.
    assert rows[("eval_em_questions", "api-other")]["requests"] == 3 * sampled * 2
    evaluated = [row for row in read_jsonl(inputs.mmlu) if row["split"] == "test"]
    assert rows[("eval_mmlu", "api-target")]["requests"] == len(evaluated)  # base only: sgtr is not in this grid
    for job in result["jobs"]:
        assert job["usd"] > 0, job


def test_an_unpriced_model_is_an_error_naming_it(inputs):
    config = demo_api(chains=["base", "sgtr"])
    del config["openai"]["prices"]["gpt-4o-2024-08-06"]
    with pytest.raises(InputError, match=r"openai\.prices\.gpt-4o-2024-08-06\.input \(for .*generate_summaries"):
        estimate(config, inputs)
    config = demo_api(chains=["base", "sgtr"])
    del config["openai"]["prices"]["gpt-4.1-2025-04-14"]["training"]
    with pytest.raises(InputError, match=r"gpt-4\.1-2025-04-14\.training \(for train_stage\)"):
        estimate(config, inputs)


def test_auto_epochs_are_priced_as_the_api_trains(inputs):
    config = demo_api(chains=["base", "em-unpop"])
    one = estimate(config, inputs)
    auto = copy.deepcopy(config)
    auto["openai"]["fine_tuning"]["n_epochs"] = "auto"
    priced = estimate(auto, inputs)
    n_rows = len(read_jsonl(inputs.em["unpop/default"]))
    assert priced["n_epochs"] == {"configured": "auto", "resolved": [auto_epochs(n_rows)]} and auto_epochs(n_rows) == 20

    def train(result):
        return next(t for t in result["totals"] if t["rule"] == "train_stage")

    assert train(priced)["training_tokens"] == 20 * train(one)["training_tokens"]


def test_a_missing_input_is_a_loud_not_estimated_row(inputs):
    inputs.mmlu = None
    result = estimate(demo_api(chains=["base"]), inputs)
    assert not result["complete"]
    assert result["not_estimated"] == [
        "eval_mmlu api-target base/seed0: the prepared mmlu file was not given to the estimate (DataFiles.mmlu)"
    ]
    from sgtr_em.cost import markdown

    text = markdown(result)
    assert "INCOMPLETE: 1 API jobs" in text and "Total: at least $" in text
