"""The OpenAI API path through Snakemake: the API demo (`api_demo`) against a local fake server
(tests/fake_openai.py) on 127.0.0.1, reached with OPENAI_BASE_URL: the whole DAG, a run killed while polling that
resumes its job, a failed job bought again only after clearing, and the cost estimate against what the server
measured. No real network; a sentinel key must never be written anywhere."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import yaml
from conftest import REPO, SENTINEL, SNAKEMAKE, snakemake
from fake_openai import FakeOpenAI

from sgtr_em import config as cfglib
from sgtr_em.cost import estimate as estimate_cost
from sgtr_em.targets import Targets


def with_chain(workdir: Path, chain: str) -> str:
    config = yaml.safe_load((workdir / "config/demo-api.yaml").read_text())
    config["grid"]["chains"].append(chain)
    (workdir / f"config/{chain}.yaml").write_text(yaml.safe_dump(config))
    return f"config/{chain}.yaml"


def jobs_with_suffix(fake: FakeOpenAI, suffix: str) -> list[str]:
    return [job_id for job_id, job in fake.jobs.items() if job["suffix"] == suffix]


def test_api_demo_runs_the_whole_dag_and_a_forced_rerun_sends_no_request(served, api_demo):
    for name in ("fig1_self_recognition", "fig2_truthfulqa", "fig3a_prevention", "fig3b_reversal"):
        assert (api_demo / f"results/figures/api-target/{name}.png").stat().st_size > 5000
    stage2 = json.loads((api_demo / "results/adapters/api-target/em-unpop+sgtr/seed0/openai_model.json").read_text())
    stage1 = json.loads((api_demo / "results/adapters/api-target/em-unpop/seed0/openai_model.json").read_text())
    assert stage2["base_model"] == stage1["fine_tuned_model"] and stage2["fine_tuned_model"].startswith("ft:")
    assert len(served.jobs) == 4 and not (api_demo / "results/models").exists()
    served.reset_counts()
    rerun = snakemake(
        api_demo,
        "api_models",
        "--cores",
        "2",
        "--forcerun",
        "train_stage_api",
        "--configfile",
        "config/demo-api.yaml",
        timeout=300,
    )
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert "train_stage_api" in rerun.stdout + rerun.stderr
    assert served.requests == []


def test_a_run_killed_while_polling_resumes_its_job(served, api_demo):
    config = with_chain(api_demo, "sgtr-flip")
    target = "results/adapters/api-target/sgtr-flip/seed0"
    state = api_demo / "results/checkpoints/api-target/sgtr-flip/seed0/openai_job.json"
    served.hold_jobs = True
    run = subprocess.Popen(
        [SNAKEMAKE, target, "--cores", "1", "--configfile", config],
        cwd=api_demo,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 60
        while not (state.exists() and "job_id" in json.loads(state.read_text())):
            assert run.poll() is None and time.monotonic() < deadline, "the job never started"
            time.sleep(0.1)
        time.sleep(0.3)  # polling
    finally:
        os.killpg(run.pid, signal.SIGKILL)
        run.wait()
    served.hold_jobs = False
    assert len(jobs_with_suffix(served, "sgtr-flip-s0")) == 1
    rerun = snakemake(api_demo, target, "--cores", "1", "--configfile", config, "--unlock")
    rerun = snakemake(api_demo, target, "--cores", "1", "--configfile", config, "--rerun-incomplete")
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert len(jobs_with_suffix(served, "sgtr-flip-s0")) == 1
    assert "resuming job" in (api_demo / "logs/adapters/api-target/sgtr-flip/seed0.log").read_text()


def test_a_failed_job_fails_the_rule_and_is_bought_again_only_after_clearing(served, api_demo):
    config = with_chain(api_demo, "sgtr-confuse")
    target = "results/adapters/api-target/sgtr-confuse/seed0"
    served.fail_next_job = "The job failed: training file blocked by the moderation system"
    result = snakemake(api_demo, target, "--cores", "1", "--configfile", config)
    assert result.returncode != 0
    assert "train_stage" in result.stdout + result.stderr
    log = (api_demo / "logs/adapters/api-target/sgtr-confuse/seed0.log").read_text()
    assert "FineTuningJobError" in log and "training file blocked by the moderation system" in log
    # A rerun (as the slurm profile's `retries: 1` does) fails again, buying nothing.
    served.reset_counts()
    rerun = snakemake(api_demo, target, "--cores", "1", "--configfile", config)
    assert rerun.returncode != 0 and served.count("POST", "/v1/fine_tuning/jobs") == 0
    # The documented command unblocks it; then the next run buys one new job.
    state_dir = "results/checkpoints/api-target/sgtr-confuse/seed0"
    cleared = subprocess.run(
        [sys.executable, "-m", "sgtr_em.openai_ft", "clear", state_dir],
        cwd=api_demo,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert cleared.returncode == 0 and "cleared job" in cleared.stdout, cleared.stderr
    rerun = snakemake(api_demo, target, "--cores", "1", "--configfile", config)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert served.count("POST", "/v1/fine_tuning/jobs") == 1 and len(jobs_with_suffix(served, "sgtr-confuse-s0")) == 2


def test_api_cost_names_the_workflows_rules(api_demo):
    """`snakemake api_cost` in the finished API demo: every API job of the run, named by its rule (one the
    workflow lists), the four fine-tuning jobs among them."""
    result = snakemake(api_demo, "api_cost", "--cores", "1", "--configfile", "config/demo-api.yaml")
    assert result.returncode == 0, result.stderr[-3000:]
    estimate = json.loads((api_demo / "results/api/cost_estimate.json").read_text())
    listed = snakemake(api_demo, "--list-rules", "--configfile", "config/demo-api.yaml")
    assert listed.returncode == 0, listed.stderr[-3000:]
    rules = {t["rule"] for t in estimate["totals"]}
    assert rules <= set(listed.stdout.split())
    assert {
        "generate_summaries_api",
        "train_stage_api",
        "eval_state_api",
        "eval_em_questions",
        "eval_identity",
    } <= rules
    train = next(t for t in estimate["totals"] if t["rule"] == "train_stage_api")
    assert train["jobs"] == 4 and train["training_tokens"] > 0 and estimate["total_usd"] > 0
    assert "Total" in (api_demo / "results/api/cost_estimate.md").read_text()


def test_the_cost_estimate_matches_what_the_server_measured(served, api_demo):
    """On the API demo (every API rule runs, the optional evaluations included), the fake server's own
    counts: 4 job creates, 2 uploads (the EM file and the Self++ pair file, each reused by a second stage) and
    every chat request. The estimate, from the same inputs and the run's outputs (the summaries and answers
    its jobs read), counts as many fine-tuning jobs and exactly the chat requests, prompt tokens and trained
    tokens the server received; output tokens are upper bounds."""
    measured = served.after_demo
    assert (measured["job_creates"], measured["uploads"], measured["jobs"]) == (4, 2, 4)
    config = cfglib.load(yaml.safe_load((api_demo / "config/demo-api.yaml").read_text()), workdir=api_demo)
    result = estimate_cost(Targets(config), api_demo)
    total = result["total"]
    print(f"measured {measured}; estimated {total}")
    assert sum(t["jobs"] for t in result["totals"] if t["rule"] == "train_stage_api") == measured["job_creates"]
    assert total["requests"] == measured["chat_requests_received"] == measured["chat_requests_answered"]
    assert total["input_tokens"] == measured["prompt_tokens"]
    assert total["training_tokens"] == measured["trained_tokens"]
    assert measured["completion_tokens"] <= total["output_tokens"]
    steps = {step for job in result["jobs"] if job["rule"].startswith("eval_state") for step in job["steps"]}
    assert {"em_questions", "identity", "mmlu"} <= steps  # the optional evaluations are in the count


def test_the_key_is_never_written(served, api_demo):
    """Last: after every run above, no file of the workflow directory holds the key."""
    leaks = [str(p) for p in api_demo.rglob("*") if p.is_file() and SENTINEL.encode() in p.read_bytes()]
    assert leaks == []
    assert served.keys_seen == {SENTINEL}
