"""Loading a model state costs minutes on the paper's models: each evaluated state is loaded by at most two
jobs, counted from the planned DAG; and the model libraries are imported only by the jobs that use them."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections import Counter

import pytest
from conftest import SNAKEMAKE, copy_workflow, load_config, read_config, snakemake, workflow_env

from sgtr_em import paths
from sgtr_em.bench import MODEL_LIBRARIES, TABLE_SCRIPTS
from sgtr_em.dag import PlannedJob, loaded_state, planned_jobs
from sgtr_em.targets import Targets

MAX_LOADS_PER_STATE = 2


def state_loads(config: dict, jobs: list[PlannedJob]) -> Counter[tuple[str, str, int]]:
    """How many jobs load each evaluated state of the grid's local models (API models load nothing)."""
    t = Targets(config)
    return Counter(state for job in jobs if (state := loaded_state(t, job)) is not None)


@pytest.fixture(scope="module")
def paper_dag(tmp_path_factory) -> list[PlannedJob]:
    workdir = copy_workflow(tmp_path_factory.mktemp("paper") / "workflow")
    result = snakemake(workdir, "-n", "--configfile", "config/config.yaml", timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    return planned_jobs(result.stdout + result.stderr)


def test_each_evaluated_state_of_the_paper_grid_is_loaded_at_most_twice(paper_dag):
    """The paper grid's open-model states (GPT-4.1's have nothing to load): a core job each, an optional job
    where the chain is listed, and the summaries other jobs read from a state written by its core job."""
    config = load_config(read_config("config.yaml"))
    t = Targets(config)
    loads = state_loads(config, paper_dag)
    local_states = [s for s in t.grid_states() if not t.is_api_model(s[0])]
    assert set(loads) == set(local_states)  # every state is loaded (so the count sees every job that does)
    most = max(loads.values())
    print(f"{len(local_states)} evaluated states; loads per state: {sorted(Counter(loads.values()).items())}")
    assert most <= MAX_LOADS_PER_STATE, [s for s, n in loads.items() if n == most][:5]
    loaders = Counter(job.rule for job in paper_dag if loaded_state(t, job))
    assert set(loaders) <= {job.rule for job in t.state_jobs}


def test_the_count_sees_each_job_that_loads_a_state():
    """Counted on a hand-written plan: the state job, its base summaries and a second evaluation job count;
    a training on top of the state, a judge and a table do not."""
    config = load_config(read_config("demo.yaml"))
    state = ["results/models/demo-target", "results/adapters/demo-target/sgtr/seed0"]
    base = frozenset({"results/models/demo-target"})
    jobs = [
        PlannedJob("eval_state", frozenset({*state, "results/data/truthfulqa.jsonl"}), {"seed": "0"}),
        PlannedJob("eval_truthfulqa", frozenset(state), {"seed": "0"}),
        PlannedJob("train_stage", frozenset(state), {"seed": "0"}),
        PlannedJob("eval_state", base, {"seed": "1"}),
        PlannedJob("generate_summaries", base, {"seed": "1"}),
        PlannedJob("eval_identity", frozenset({"results/models/demo-other"}), {"seed": "1"}),
        PlannedJob("tidy_table", frozenset({"results/eval/truthfulqa/demo-target/sgtr/seed0.json"})),
    ]
    assert state_loads(config, jobs) == {("demo-target", "sgtr", 0): 2, ("demo-target", "base", 1): 2}


def test_each_output_of_a_state_is_written_by_one_state_rule_and_core_and_optional_apart():
    """Every evaluation file of every table, each judged evaluation's sampled answers and every summary file
    another job reads from a grid state are outputs of exactly one state rule; the optional evaluations
    (their own job, so a failing one never costs the core results) are never in a core rule."""
    t = Targets(load_config(read_config("demo.yaml")))
    written: Counter = Counter()
    for job in t.state_jobs:
        constraints = t.state_job_constraints(job)
        states = [
            (m, c, s)
            for m, c, s in t.grid_states()
            if all(
                re.fullmatch(constraints[k], str(v)) for k, v in zip(("model", "chain", "seed"), (m, c, s), strict=True)
            )
        ]
        assert len(states) == len(job.models) * len(job.chains) * len(job.seeds)  # exactly its states
        optional = {"em_questions", "identity", "mmlu"}.intersection(job.steps)
        assert (job.kind == "optional") == bool(optional) and (job.kind == "core") == ("truthfulqa" in job.steps)
        for path in t.state_job_outputs(job).values():
            written.update(path.format(model=m, chain=c, seed=s) for m, c, s in states)
    evaluations = {
        f for table in t.evaluations() if table not in ("em_questions", "identity") for f in t.evaluation_files(table)
    }
    answers = {
        template.format(model=m, chain=c, seed=s)
        for key, template in (("em_questions", paths.EM_ANSWERS), ("identity", paths.IDENTITY_ANSWERS))
        for m, c, s in t.grid_states()
        if c in t.config["eval"][key]["chains"]
    }
    summaries = {paths.SUMMARIES.format(model=m, chain=c, seed=s, dataset=d) for m, c, s, d in t.summaries_read_from}
    grid_summaries = {f for f in summaries if "/demo-target/" in f}  # demo-other, a comparator, is no grid model
    assert set(written) == evaluations | answers | grid_summaries and set(written.values()) == {1}


def test_a_state_evaluated_on_its_own_summaries_writes_them_in_its_core_job():
    """self_source own (the paper): a state's core job writes its fresh summaries where generate_summaries
    would have, reads no 'self' summaries, and records each step's own settings; the base state at
    summary_seed also writes the summaries its model's pairs are built from."""
    t = Targets(load_config(read_config("config.yaml")))
    core = next(job for job in t.state_jobs if job.rule == "eval_state")
    outputs = t.state_job_outputs(core)
    assert outputs["summaries-cnn"] == paths.SUMMARIES.replace("{dataset}", "cnn")
    comparators = [f"self_recognition-{c}" for c in t.config["eval"]["self_recognition"]["comparators"]]
    assert list(outputs) == ["summaries-cnn", *comparators, "truthfulqa"]
    base = next(job for job in t.state_jobs if job.rule == "eval_state_summaries_xsum")
    assert base.steps[:2] == ("summaries-cnn", "summaries-xsum") and base.chains == ("base",) and base.seeds == (0,)
    optional = next(job for job in t.state_jobs if job.rule == "eval_state_em_questions_identity_mmlu")
    wc = type("Wildcards", (), {"model": "qwen2.5-32b", "chain": "base", "seed": "0"})()
    inputs = t.state_job_inputs(core)(wc)
    assert "self_summaries" not in inputs and inputs["articles-cnn"] == paths.ARTICLES.format(dataset="cnn")
    assert t.state_job_inputs(optional)(wc)["mmlu"] == paths.MMLU
    params = {**t.state_job_params(core)(wc), **t.state_job_params(optional)(wc)}
    assert params["truthfulqa"]["sampling"]["max_new_tokens"] == 1
    # batch sizes change no result, so they are read by the job, not tracked in its params (docs/reruns.md)
    assert "batch_size" not in repr(params) and "memory_budget" not in repr(params)
    # the EM questions ask the first paraphrase (the authors' em_eval.py); identity questions always cycle
    assert params["em_questions"]["paraphrases"] == "first" and "paraphrases" not in params["identity"]
    assert params["summaries-cnn"]["style"] == t.config["datasets"]["articles"]["cnn"]["style"]


def test_api_models_state_jobs_run_on_the_submit_host():
    """GPT-4.1's evaluation jobs call the API: local rules (compute nodes of many clusters have no network)."""
    t = Targets(load_config(read_config("config.yaml")))
    for job in t.state_jobs:
        assert job.local == (job.models == ("gpt-4.1",)) and job.local == job.rule.endswith("_api")


def imported_model_libraries(importtime_log: str) -> set[str]:
    """Top-level model libraries named in `python -X importtime` output."""
    names = {line.rsplit("|", 1)[-1].strip().split(".")[0] for line in importtime_log.splitlines() if "|" in line}
    return names & set(MODEL_LIBRARIES)


def test_a_dry_run_imports_no_model_library(tmp_path):
    workdir = copy_workflow(tmp_path / "workflow")
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "snakemake", "-n", "--quiet", "rules", "--cores", "1"],
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=300,
        env=workflow_env(),
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "import time:" in result.stderr
    assert not imported_model_libraries(result.stderr)


AUDIT = """
import atexit, json, os, sys

def _write():
    path = os.path.join(os.environ["SGTR_EM_IMPORT_AUDIT"], f"{os.getpid()}.json")
    with open(path, "w") as handle:
        json.dump({"argv": sys.argv, "modules": sorted(m for m in sys.modules if "." not in m)}, handle)

atexit.register(_write)
"""


@pytest.mark.e2e
def test_table_and_figure_jobs_import_no_model_library(demo, tmp_path):
    """A copy of the finished demo redraws a table and a figure; every job process records the modules it
    imported (a sitecustomize on the path): the table and figure jobs imported no model library."""
    workdir = tmp_path / "demo"
    shutil.copytree(demo, workdir, symlinks=True)
    audit, hooks = tmp_path / "audit", tmp_path / "hooks"
    audit.mkdir()
    hooks.mkdir()
    (hooks / "sitecustomize.py").write_text(AUDIT)
    env_path = os.pathsep.join(p for p in (str(hooks), os.environ.get("PYTHONPATH")) if p)
    result = subprocess.run(
        [
            SNAKEMAKE,
            "--cores",
            "1",
            "--forcerun",
            "tidy_table",
            "figure",
            "results/tables/truthfulqa_summary.csv",
            "results/figures/demo-target/fig2_truthfulqa.png",
        ],
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=600,
        env=workflow_env(PYTHONPATH=env_path, SGTR_EM_IMPORT_AUDIT=str(audit)),
    )
    assert result.returncode == 0, result.stderr[-3000:]
    jobs = [json.loads(p.read_text()) for p in audit.glob("*.json")]
    scripts = {name: [j for j in jobs if any(name in arg for arg in j["argv"])] for name in TABLE_SCRIPTS[:2]}
    assert all(scripts.values()), [j["argv"] for j in jobs]
    for name, runs in scripts.items():
        for run in runs:
            assert not set(run["modules"]) & set(MODEL_LIBRARIES), (name, set(run["modules"]) & set(MODEL_LIBRARIES))
