"""Loading a model state costs minutes on the paper's models: how the jobs that load each evaluated state are
counted (on a hand-written plan), and the state rules that load them, one writing each output of a state, core and
optional evaluations apart (the count on the paper's planned DAG: tests/workflow/test_loads_dry_run.py; the model
libraries jobs import: there and in tests/e2e/test_loads_demo.py)."""

from __future__ import annotations

import re
from collections import Counter

from conftest import load_config, read_config, state_loads

from sgtr_em import paths
from sgtr_em.dag import PlannedJob
from sgtr_em.targets import Targets


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
