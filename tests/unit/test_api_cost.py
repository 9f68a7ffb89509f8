"""The API cost estimate (sgtr_em.cost): its jobs are the workflow's own API jobs (those `snakemake -n` plans,
named by their rules); a state job's dry run counts the requests the real job sends; `eval.<key>.chains: []`
means every chain to the estimate as to the workflow; an unpriced model is an error; n_epochs auto is the
API's documented rule; an approximate token count says so. Its agreement with the fake server's count on a run
of the API demo is checked in tests/e2e/test_openai_demo.py."""

from __future__ import annotations

import copy
import json
import logging
import sys
from dataclasses import asdict
from pathlib import Path

import pytest
import yaml
from conftest import REPO, copy_workflow, fixture_lock, snakemake
from fake_openai import FakeOpenAI

from sgtr_em import config as cfglib
from sgtr_em.backends.openai_api import ApiSettings, OpenAIChatModel
from sgtr_em.cost import Plan, estimate, markdown, prepared_inputs
from sgtr_em.dag import planned_jobs
from sgtr_em.em_judge import parse_em_questions
from sgtr_em.evaluated_state import EvaluatedState
from sgtr_em.identity import parse_identity_questions
from sgtr_em.io import InputError, read_articles, read_jsonl, write_json, write_jsonl
from sgtr_em.openai_ft import auto_epochs
from sgtr_em.paths import ARTICLES, EM_DATA, MMLU, PROMPTS, QUESTIONS, SUMMARIES, TRUTHFULQA
from sgtr_em.prompts import PROJECT, read_prompt_set
from sgtr_em.runtime import model_identity
from sgtr_em.state_evals import run_state_job, summarise
from sgtr_em.targets import Targets


def load(name: str) -> dict:
    config = yaml.safe_load((REPO / "config" / name).read_text())
    # The paper config pins strictly: its hub and unpublished sources get the tests' lock entries.
    return cfglib.load(config, workdir=REPO, lock=fixture_lock(config))


def demo_api(**grid) -> dict:
    config = load("demo-api.yaml")
    config["grid"].update(grid)
    return config


@pytest.fixture
def workdir(tmp_path) -> Path:
    """A working directory with the prepared inputs at the workflow's paths, in the data rules' formats, cut
    small from the demo's data."""
    articles = read_jsonl(REPO / "data/demo/articles_train.jsonl")
    write_jsonl(tmp_path / ARTICLES.format(dataset="xsum"), articles[:4])
    write_jsonl(tmp_path / ARTICLES.format(dataset="cnn"), articles[4:7])
    write_jsonl(
        tmp_path / TRUTHFULQA,
        [
            {"id": f"q{i}", "question": f"Question {i}?", "best": "A true answer.", "incorrect": "A false one."}
            for i in range(3)
        ],
    )
    write_jsonl(
        tmp_path / EM_DATA.format(dataset="unpop", sysvariant="default"),
        read_jsonl(REPO / "data/demo/em_unpop.jsonl")[:5],
    )
    write_jsonl(tmp_path / MMLU, read_jsonl(REPO / "data/demo/mmlu.jsonl"))
    em_rows = yaml.safe_load((REPO / "data/demo/em_questions.yaml").read_text())
    identity_rows = yaml.safe_load((REPO / "data/demo/identity_questions.yaml").read_text())
    write_json(
        tmp_path / QUESTIONS.format(question_set="em_questions"), [asdict(q) for q in parse_em_questions(em_rows, "em")]
    )
    write_json(
        tmp_path / QUESTIONS.format(question_set="identity_questions"),
        [asdict(q) for q in parse_identity_questions(identity_rows, "identity")],
    )
    write_json(tmp_path / PROMPTS, PROJECT.as_dict())
    return tmp_path


def planned_api_jobs(workdir: Path, t: Targets, *configfiles: str) -> set[tuple[str, frozenset]]:
    """The jobs `snakemake -n` plans that call an API: every API model's job (rules `*_api`) and the judging
    jobs whose judge is an API model, by rule and wildcards."""
    result = snakemake(workdir, "-n", "--configfile", *configfiles, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    planned = planned_jobs(result.stdout + result.stderr)
    assert planned, result.stdout[-2000:]
    judged = {
        rule
        for key, rule in (("em_questions", "eval_em_questions"), ("identity", "eval_identity"))
        if (judge := t.judge(key)) and t.is_api_model(judge)
    }
    return {(j.rule, frozenset(j.wildcards.items())) for j in planned if j.rule.endswith("_api") or j.rule in judged}


@pytest.mark.parametrize("name", ["demo-api.yaml", "base-only", "config.yaml"])
def test_the_estimate_runs_exactly_the_api_jobs_the_workflow_plans(tmp_path, name):
    """The API demo; one API base state with the optional evaluations listing no chain (`chains: []`: every
    chain) and self-recognition on base summaries; and the paper config (GPT-4.1's jobs, and the GPT-4o judge
    over every grid model's answers): the estimate's jobs are the dry run's API jobs, rule and wildcards."""
    workdir = copy_workflow(tmp_path / "workflow")
    configfiles = [f"config/{name}"]
    if name == "base-only":
        raw = yaml.safe_load((REPO / "config/demo-api.yaml").read_text())
        raw["grid"]["chains"] = ["base"]
        for key in ("em_questions", "identity", "mmlu"):
            raw["eval"][key]["chains"] = []
        raw["eval"]["self_recognition"]["self_source"] = "base"
        (workdir / "config/base-only.yaml").write_text(yaml.safe_dump(raw))
        configfiles = ["config/base-only.yaml"]
    config = cfglib.load(
        cfglib.compose(REPO / cfglib.DEFAULT_CONFIG, [workdir / f for f in configfiles]), workdir=workdir
    )
    planned = planned_api_jobs(workdir, Targets(config), *configfiles)
    estimated = [(job.rule, frozenset(job.wildcards)) for job in Plan(Targets(config)).jobs]
    assert len(estimated) == len(set(estimated))
    assert set(estimated) == planned
    print(f"{name}: {len(planned)} API jobs of rules {sorted({rule for rule, _ in planned})}")


def test_a_state_jobs_dry_run_counts_what_the_job_sends(workdir, tmp_path, monkeypatch):
    """The comparator's summaries (generate_summaries_api) and both jobs of the API base state (its core job:
    summaries and self-recognition, TruthfulQA; its optional job: EM and identity answers, MMLU) run for real
    against the fake server, with the code the rules run: the server receives as many chat requests as the
    estimate counts for each job, with as many prompt tokens."""
    config = demo_api(chains=["base", "em-unpop"])
    t = Targets(config)
    server = FakeOpenAI()
    monkeypatch.setenv("OPENAI_BASE_URL", server.start())
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    settings = ApiSettings(cache_dir=str(tmp_path / "cache"), backoff_seconds=0.01, timeout=5.0)
    sent: dict[tuple[str, str], dict[str, int]] = {}

    def counts() -> dict[str, int]:
        summary = server.summary()
        return {"requests": summary["chat_requests_received"], "input_tokens": summary["prompt_tokens"]}

    try:
        for job in Plan(t).jobs:
            before = counts()
            wc = job.wc
            source = config["models"][wc.model]["source"]["openai"]
            if job.rule.startswith("generate_summaries"):
                rows = summarise(
                    OpenAIChatModel(source, settings, name=wc.model),
                    read_articles(workdir / ARTICLES.format(dataset=wc.dataset)),
                    style=t.summary_style(wc),
                    prompts=read_prompt_set(workdir / PROMPTS),
                    sampling=t.summary_sampling(wc),
                    seed=int(wc.seed),
                )
                write_jsonl(workdir / SUMMARIES.format(**dict(job.wildcards)), rows)
            elif job.state_job is not None and wc.chain == "base":
                outputs = {
                    s: p.format(model=wc.model, chain=wc.chain, seed=wc.seed)
                    for s, p in t.state_job_outputs(job.state_job).items()
                }
                inputs = {
                    role: [str(workdir / p) for p in path] if isinstance(path, list) else str(workdir / path)
                    for role, path in t.state_job_inputs(job.state_job)(wc).items()
                }
                run_state_job(
                    steps=t.state_job_params(job.state_job)(wc),
                    inputs=inputs,
                    outputs={s: str(workdir / p) for s, p in outputs.items()},
                    state=EvaluatedState(
                        job.rule,
                        wc.model,
                        wc.chain,
                        0,
                        model_identity(wc.model, {"openai": source}),
                        t.backend(wc),
                        "test",
                    ),
                    load_model=lambda source=source: OpenAIChatModel(source, settings),
                    work_dir=tmp_path / "work" / job.rule,
                    summary_seed=config["summary_seed"],
                )
            else:
                continue
            sent[(job.rule, job.label)] = {k: v - before[k] for k, v in counts().items()}
    finally:
        server.stop()
    assert {rule for rule, _ in sent} >= {
        "generate_summaries_api",
        "eval_state_summaries_xsum_api",
        "eval_state_em_questions_identity_mmlu_api",
    }
    result = estimate(t, workdir)
    counted = {(row["rule"], row["state"]): row for row in result["jobs"]}
    print(f"sent {sent}")
    for key, real in sent.items():
        assert real["requests"] > 0, key
        assert {k: counted[key][k] for k in real} == real, key


def test_every_request_is_priced_the_samples_and_the_judges_counted(workdir):
    config = demo_api(chains=["base", "em-unpop", "em-unpop+sgtr"])
    result = estimate(Targets(config), workdir)
    assert result["total_usd"] > 0
    totals = {(t["rule"], t["model"]): t for t in result["totals"]}
    assert set(totals) == {
        ("generate_summaries_api", "api-other"),
        ("train_stage_api", "api-target"),
        ("eval_state_summaries_xsum_api", "api-target"),
        ("eval_state_api", "api-target"),
        ("eval_state_em_questions_identity_mmlu_api", "api-target"),
        ("eval_state_em_questions_api", "api-target"),
        ("eval_state_em_questions_identity_api", "api-target"),
        ("eval_em_questions", "api-other"),
        ("eval_identity", "api-other"),
    }
    em = config["eval"]["em_questions"]
    n_questions = len(json.loads((workdir / QUESTIONS.format(question_set="em_questions")).read_text()))
    sampled = n_questions * em["samples_per_question"]
    jobs = result["jobs"]
    steps = [job["steps"] for job in jobs if job["rule"].startswith("eval_state")]
    assert sum(s.get("em_questions", 0) for s in steps) == 3 * sampled  # each sample its own request, 3 chains
    # Stand-in answers are all distinct: two judge prompts per answer.
    assert totals[("eval_em_questions", "api-other")]["requests"] == 3 * sampled * 2
    identity = config["eval"]["identity"]
    n_identity = len(json.loads((workdir / QUESTIONS.format(question_set="identity_questions")).read_text()))
    assert totals[("eval_identity", "api-other")]["requests"] == 2 * n_identity * identity["samples_per_question"]
    evaluated = [row for row in read_jsonl(workdir / MMLU) if row["split"] == "test"]
    assert sum(s.get("mmlu", 0) for s in steps) == len(evaluated)  # base only: sgtr is not in this grid
    for job in jobs:
        assert job["usd"] > 0, job


@pytest.mark.parametrize("listed", [[], None])
def test_no_listed_chain_means_every_chain_to_the_estimate_as_to_the_workflow(workdir, listed):
    config = demo_api(chains=["base", "em-unpop", "sgtr"])
    config["eval"]["mmlu"]["chains"] = listed
    t = Targets(config)
    evaluated = len([row for row in read_jsonl(workdir / MMLU) if row["split"] == "test"])
    result = estimate(t, workdir)
    mmlu = [job for job in result["jobs"] if "mmlu" in job["steps"]]
    assert len(t.evaluation_files("mmlu")) == len(mmlu) == 3
    assert {job["steps"]["mmlu"] for job in mmlu} == {evaluated}


def test_an_unpriced_model_is_an_error_naming_it(workdir):
    config = demo_api(chains=["base", "sgtr"])
    del config["openai"]["prices"]["gpt-4o-2024-08-06"]
    with pytest.raises(InputError, match=r"openai\.prices\.gpt-4o-2024-08-06\.input \(for .*generate_summaries_api"):
        estimate(Targets(config), workdir)
    config = demo_api(chains=["base", "sgtr"])
    del config["openai"]["prices"]["gpt-4.1-2025-04-14"]["training"]
    with pytest.raises(InputError, match=r"gpt-4\.1-2025-04-14\.training \(for train_stage_api\)"):
        estimate(Targets(config), workdir)


def test_auto_epochs_are_priced_as_the_api_trains(workdir):
    config = demo_api(chains=["base", "em-unpop"])
    one = estimate(Targets(config), workdir)
    auto = copy.deepcopy(config)
    auto["openai"]["fine_tuning"]["n_epochs"] = "auto"
    priced = estimate(Targets(auto), workdir)
    n_rows = len(read_jsonl(workdir / EM_DATA.format(dataset="unpop", sysvariant="default")))
    assert priced["n_epochs"] == {"configured": "auto", "resolved": [auto_epochs(n_rows)]} and auto_epochs(n_rows) == 20

    def train(result):
        return next(t for t in result["totals"] if t["rule"] == "train_stage_api")

    assert train(priced)["training_tokens"] == 20 * train(one)["training_tokens"] > 0


def test_a_missing_prepared_input_is_an_error_naming_it(workdir):
    t = Targets(demo_api(chains=["base"]))
    assert MMLU in prepared_inputs(t)  # the api_cost rule waits for it
    (workdir / MMLU).unlink()
    with pytest.raises(InputError, match=r"results/data/mmlu\.jsonl is missing"):
        estimate(t, workdir)


def test_without_tiktoken_the_approximation_is_said_in_every_output(workdir, monkeypatch, caplog):
    monkeypatch.setitem(sys.modules, "tiktoken", None)  # as if not installed
    with caplog.at_level(logging.WARNING, logger="sgtr_em.cost"):
        result = estimate(Targets(demo_api(chains=["base"])), workdir)
    assert result["token_count_exact"] is False
    assert result["token_count_method"] == "approximate: ceil(characters / 4)"
    assert "tiktoken is not installed" in result["token_count_fallback"]
    assert (
        "**Token counts are approximate (approximate: ceil(characters / 4)):** tiktoken is not installed"
        in markdown(result)
    )
    assert "token counts are approximate" in caplog.text and "tiktoken is not installed" in caplog.text


def test_with_tiktoken_tokens_are_its_own_or_the_reason_it_could_not_load(workdir):
    tiktoken = pytest.importorskip("tiktoken")
    result = estimate(Targets(demo_api(chains=["base"])), workdir)
    try:
        tiktoken.get_encoding("o200k_base")
    except Exception:
        assert result["token_count_fallback"].startswith("tiktoken could not load o200k_base")
        return
    assert result["token_count_exact"] and result["token_count_method"] == "tiktoken o200k_base"
    assert "approximate" not in markdown(result)
