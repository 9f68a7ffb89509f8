"""The workflow's paths, target lists and input functions (sgtr_em.targets), on the shipped configs."""

from __future__ import annotations

import re
from types import SimpleNamespace

import pytest
from conftest import load_config, read_config

from sgtr_em import evaluations, paths, targets
from sgtr_em.evaluations import OPTIONAL
from sgtr_em.targets import Targets


@pytest.fixture(scope="module")
def demo() -> Targets:
    return Targets(load_config(read_config("demo.yaml")))


@pytest.fixture(scope="module")
def paper() -> Targets:
    return Targets(load_config(read_config("config.yaml")))


def wc(**values: str) -> SimpleNamespace:
    return SimpleNamespace(**values)


def test_default_target_is_every_table_figure_the_summary_and_the_manifest(demo):
    wanted = demo.all_targets()
    tables = {path.removeprefix("results/tables/").removesuffix(".csv") for path in demo.all_tables()}
    assert tables == {
        f"{name}{suffix}"
        for name in ("self_recognition-demo-other", "truthfulqa", *OPTIONAL)
        for suffix in ("", "_summary")
    }
    figures = set(demo.all_figures())
    assert len(figures) == 2 * len(paths.FIGURES)  # the demo has every figure, the ablation included
    # Figures of an evaluation with a second protocol are drawn again in it (the demo's primary is logprob).
    variants = set(demo.figure_variants())
    assert "results/figures/demo-target/reference/fig1_self_recognition.png" in variants
    assert not any("fig5_identity" in path or "fig6_mmlu" in path for path in variants)
    assert figures | variants | set(demo.all_claims()) <= set(wanted)
    assert wanted[-2:] == [paths.RESULTS_SUMMARY, paths.MANIFEST]


def test_optional_evaluations_cover_their_listed_chains_only(demo):
    files = demo.evaluation_files("identity")
    assert {f.split("/")[4] for f in files} == {"base", "em-unpop", "em-unpop+sgtr"}
    assert len(files) == 3 * 2  # two seeds
    assert len(demo.evaluation_files("truthfulqa")) == len(demo.grid_states())


def test_an_optional_evaluation_none_of_whose_chains_is_in_the_grid_is_skipped():
    config = read_config("demo.yaml")
    config["grid"]["chains"] = ["base", "sgtr"]
    config["eval"]["mmlu"]["chains"] = ["em-unpop"]
    subset = Targets(load_config(config))
    assert "mmlu" not in subset.enabled_optional_evals()
    assert "fig6_mmlu" not in subset.enabled_figures("demo-target")
    assert "fig7_system_prompt" not in subset.enabled_figures("demo-target")  # no non-default variant left


def test_training_data_of_each_stage_kind(demo):
    assert demo.stage_train_file(wc(model="demo-target", chain="sgtr+em-unpop", seed="1")) == (
        "results/data/em/unpop/default.jsonl"
    )
    assert demo.stage_train_file(wc(model="demo-target", chain="em-unpop.none", seed="0")) == (
        "results/data/em/unpop/none.jsonl"
    )
    assert demo.stage_train_file(wc(model="demo-target", chain="wordcount", seed="0")) == (
        "results/data/baselines/wordcount/default.jsonl"
    )
    assert demo.stage_train_file(wc(model="demo-target", chain="em-unpop+sgtr-flip", seed="1")) == (
        "results/pairs/demo-target/base/sgtr-flip/detection/default.jsonl"
    )


def test_own_pair_source_names_the_parent_state():
    config = read_config("demo.yaml")
    config["pairs"]["source"] = "own"
    own = Targets(load_config(config))
    pair_file = own.stage_train_file(wc(model="demo-target", chain="em-unpop+sgtr", seed="1"))
    assert pair_file == "results/pairs/demo-target/own-em-unpop-seed1/sgtr/detection/default.jsonl"
    # The first stage trains on the base model: its pairs are the base model's.
    assert "/base/" in own.stage_train_file(wc(model="demo-target", chain="sgtr", seed="1"))
    source = re.match(paths.WILDCARD_CONSTRAINTS["source"] + "$", "own-em-unpop-seed1")
    assert source is not None
    assert own.pair_self_summaries(wc(model="demo-target", source="own-em-unpop-seed1")) == (
        "results/summaries/demo-target/em-unpop/seed1/xsum.jsonl"
    )


def test_a_state_is_built_from_its_prefixes(demo):
    assert demo.parent_adapters(wc(model="demo-target", chain="sgtr+em-unpop", seed="0")) == [
        "results/adapters/demo-target/sgtr/seed0"
    ]
    assert demo.adapters(wc(model="demo-target", chain="sgtr+em-unpop", seed="0")) == [
        "results/adapters/demo-target/sgtr/seed0",
        "results/adapters/demo-target/sgtr+em-unpop/seed0",
    ]
    assert demo.adapters(wc(model="demo-target", chain="base", seed="0")) == []


def test_base_summaries_are_generated_or_released(demo):
    assert demo.base_summaries("demo-target", "xsum") == "results/summaries/demo-target/base/seed0/xsum.jsonl"
    config = read_config("demo.yaml")
    config["models"]["demo-target"]["summaries"] = {"xsum": {"source": {"path": "data/demo/articles_train.jsonl"}}}
    released = Targets(load_config(config))
    assert released.base_summaries("demo-target", "xsum") == "results/data/released_summaries/demo-target/xsum.jsonl"
    assert released.released_summaries_source_file(wc(model="demo-target", dataset="xsum")) == [
        "data/demo/articles_train.jsonl"
    ]


def test_local_data_files_are_inputs_and_downloads_are_not(demo, paper):
    assert demo.em_source_file(wc(dataset="unpop")) == ["data/demo/em_unpop.jsonl"]
    assert demo.dataset_source_file("truthfulqa") == ["data/demo/truthfulqa.csv"]
    assert demo.question_source_file(wc(question_set="em_questions")) == ["data/demo/em_questions.yaml"]
    assert paper.article_source_file(wc(dataset="xsum")) == []


def test_model_job_resources_come_from_the_model_and_count_api_requests(paper):
    resources = paper.model_job_resources()
    qwen, gpt = wc(model="qwen2.5-32b"), wc(model="gpt-4.1")
    # no model of the paper config names a partition, GPU model or CPUs per GPU, and no profile does here
    assert set(resources) == {"gpu", "mem_mb", "runtime", "api_requests"}
    assert resources["gpu"](qwen) >= 1 and resources["gpu"](gpt) == 0
    assert resources["api_requests"](qwen) == 0
    assert resources["api_requests"](gpt) == paper.config["openai"]["max_concurrency"]
    assert paper.model_job_resources(fine_tuning=True)["api_requests"](gpt) == 1


def test_host_memory_comes_from_the_memory_plan_and_a_retry_asks_for_more(paper):
    """The weights load straight onto the GPU: a 32B job asks for tens of GB of host memory, not its size; a
    retry after running out of memory or time asks for twice as much, then three times."""
    qwen = wc(model="qwen2.5-32b")
    evaluation, training = paper.model_job_resources(), paper.model_job_resources(fine_tuning=True)
    assert 10_000 < evaluation["mem_mb"](qwen, 1) < training["mem_mb"](qwen, 1) < 40_000
    assert training["mem_mb"](qwen, 2) == 2 * training["mem_mb"](qwen, 1)
    runtime = paper.config["models"]["qwen2.5-32b"]["resources"]["runtime"]
    assert evaluation["runtime"](qwen, 3) == 3 * runtime


def test_a_partition_the_profile_sets_is_not_overridden_by_an_empty_config_value():
    from conftest import load_config, read_config

    config = load_config(read_config("config.yaml"))
    config["models"]["seed-oss-36b"]["resources"]["gpu_model"] = "h200"
    t = Targets(config, profile_resources={"slurm_partition": "gpu", "cpus_per_gpu": ""})
    resources = t.model_job_resources()
    assert {"slurm_partition", "gpu_model"} <= set(resources) and "cpus_per_gpu" not in resources
    assert resources["slurm_partition"](wc(model="qwen2.5-32b")) == "gpu"
    assert resources["gpu_model"](wc(model="seed-oss-36b")) == "h200"
    assert resources["gpu_model"](wc(model="qwen2.5-32b")) is None  # not asked: sbatch gets no GPU model
    assert t.gpu_check_resources()["slurm_partition"] == "gpu"


def test_the_profiles_default_resources_are_read_as_snakemake_writes_them():
    from snakemake.resources import Resources

    written = ["slurm_partition=gpu", "gpu_model='h100'", "cpus_per_gpu=8", "mem_mb=attempt*100"]
    defaults = Resources.parse(written, allow_expressions=True)
    assert targets.written_resources(defaults, ("slurm_partition", "gpu_model", "cpus_per_gpu", "mem_mb")) == {
        "slurm_partition": "gpu",
        "gpu_model": "h100",
        "cpus_per_gpu": 8,
    }


def test_an_api_judge_runs_where_snakemake_runs_and_a_local_judge_on_the_cluster(demo, paper):
    assert paper.judge_runs_locally("em_questions")  # GPT-4o
    assert paper.judge_job_resources("em_questions")["gpu"](wc()) == 0
    assert not demo.judge_runs_locally("em_questions")  # the tiny comparator
    assert demo.judge_model_inputs("em_questions")(wc()) == "results/models/demo-other"
    assert demo.judge_settings("identity")["name"] == "demo-other"


def test_the_paper_grid(paper):
    states = paper.grid_states()
    assert len(states) == len(set(states))
    assert {m for m, _, _ in states} == {"qwen2.5-32b", "seed-oss-36b", "gpt-4.1"}
    assert all("gpt-4.1" in path for path in paper.api_model_outputs())


def test_every_template_wildcard_is_constrained():
    templates = [value for name, value in vars(targets).items() if name.isupper() and isinstance(value, str)]
    names = {name for template in templates for name in re.findall(r"{(\w+)}", template)}
    assert names - {"ext", "evaluation"} <= set(paths.WILDCARD_CONSTRAINTS)


def test_table_names_parse_one_way():
    assert evaluations.table_kind("self_recognition-claude-21") == ("self_recognition", "claude-21")
    assert evaluations.table_kind("em_questions") == ("em_questions", None)
    table = re.compile(f"(?:{paths.WILDCARD_CONSTRAINTS['table']})$")
    assert table.match("self_recognition-claude-21") and table.match("mmlu")
    assert not table.match("selfrec-claude-21")


def test_the_manifest_waits_for_every_other_default_target():
    """The manifest lists what the run made, so it must run after all of it: the figure variants, claims and
    results summary too (a variant drawn after the manifest was missing from it)."""
    from conftest import load_config, read_config

    from sgtr_em.paths import MANIFEST
    from sgtr_em.targets import Targets

    targets = Targets(load_config(read_config("demo.yaml")))
    assert set(targets.manifest_inputs()) == set(targets.all_targets()) - {MANIFEST}
    assert set(targets.figure_variants()) <= set(targets.manifest_inputs()) and targets.figure_variants()


def test_gpt41_self_random_draws_other_from_the_authors_three_sources(paper):
    """Only GPT-4.1's Self=Random pair file reads several comparators (the authors' file drew from Claude-2.1,
    Llama and human); every other pair file reads pairs.comparator alone."""
    confuse = wc(model="gpt-4.1", intervention="sgtr-confuse")
    assert paper.pair_comparators(confuse) == ["claude-21", "llama", "human"]
    assert paper.pair_other_summaries(confuse) == [
        f"results/data/comparators/{name}/xsum.jsonl" for name in ("claude-21", "llama", "human")
    ]
    for model, intervention in (("gpt-4.1", "sgtr"), ("gpt-4.1", "sgtr-flip"), ("qwen2.5-32b", "sgtr-confuse")):
        assert paper.pair_comparators(wc(model=model, intervention=intervention)) == ["claude-21"]


def test_claims_say_what_they_rest_on(paper):
    """Each claim names its basis: the authors' conditions, or an extension of ours (a condition they did not
    run, a dataset we chose, an evaluation they released no result of)."""
    qwen = {c["id"]: c["basis"] for c in paper.model_claims("qwen2.5-32b")}
    assert qwen["sgtr-prevents-em"] == "the authors' conditions"
    assert qwen["sgtr-prevents-em-sports"] == "extension: Self++→EM(sports) and EM(sports) not run by the authors"
    assert qwen["em-raises-em-judge"] == "em_questions: no released result of the authors"
    gpt = {c["id"]: c["basis"] for c in paper.model_claims("gpt-4.1")}
    assert gpt["sgtr-flip-before-em-no-help"] == "extension: Self--→EM not run by the authors"
    assert gpt["sgtr-reverses-em"] == "the authors' conditions"
    assert paper.extensions("gpt-4.1") == ["sgtr-flip+em-unpop", "sgtr-confuse+em-unpop"]
    assert paper.figure_extensions(wc(model="seed-oss-36b")) == []
    assert paper.claim_basis("qwen2.5-32b", "truthfulqa", ["correct-badmed+em-badmed", "em-badmed"]) == (
        "extension: Correct(badmed)→EM(badmed) not run by the authors; correct-badmed data chosen by this project"
    )
