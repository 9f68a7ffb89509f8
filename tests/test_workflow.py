"""The demo workflow end to end, rerun semantics, and the paper DAG."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest
import yaml
from conftest import (
    DEMO_ROW,
    PAPER_ROW,
    PRESET_ROW,
    copy_workflow,
    documented_gpu_jobs,
    documented_jobs,
    rule_counts,
    snakemake,
)

from sgtr_em.aggregate import read_summary

# Self++ must move the demo target's self-recognition (logprob protocol, mean over seeds) at least this far
# above the base model, and Self-- at least this far below. Observed (seeds 0-2): base 0.50, Self++ 0.85-0.87,
# Self-- 0.11-0.12.
SR_MARGIN = 0.25


@pytest.mark.e2e
def test_demo_draws_every_figure(demo):
    for name in (
        "fig1_self_recognition",
        "fig2_truthfulqa",
        "fig3a_prevention",
        "fig3b_reversal",
        "fig4_em_judge",
        "fig5_identity",
        "fig6_mmlu",
        "fig7_system_prompt",
    ):
        for ext in ("png", "pdf"):
            path = demo / "results" / "figures" / "demo-target" / f"{name}.{ext}"
            assert path.stat().st_size > 5000, path
    # the training curves: every trained stage of both seeds, with the learning rate of each step
    curves = (demo / "results/figures/demo-target/training_curves.csv").read_text().splitlines()
    assert (demo / "results/figures/demo-target/training_curves.png").stat().st_size > 5000
    assert len({tuple(line.split(",")[1:4:2]) for line in curves[1:]}) == 17 * 2


@pytest.mark.e2e
def test_self_plus_plus_raises_and_self_minus_minus_lowers_self_recognition(demo):
    rows = {
        r["chain"]: r
        for r in read_summary(demo / "results/tables/self_recognition-demo-other_summary.csv", "logprob", "score")
    }
    base, plus, minus = rows["base"]["mean"], rows["sgtr"]["mean"], rows["sgtr-flip"]["mean"]
    assert plus >= base + SR_MARGIN, (base, plus)
    assert minus <= base - SR_MARGIN, (base, minus)
    assert rows["sgtr"]["n"] == 2


@pytest.mark.e2e
def test_pair_stats_and_eval_records(demo):
    stats = json.loads((demo / "results/pairs/demo-target/base/sgtr/detection/default.stats.json").read_text())
    prompts = stats.pop("prompts")
    assert stats == {
        "n_articles": 60,
        "n_examples": 120,
        "label_counts": {"1": 60, "2": 60},
        "comparators": ["demo-other"],
    }
    assert prompts["set"] == "project" and len(prompts["texts_sha256"]) == 64  # the demo's own wording
    confuse = json.loads(
        (demo / "results/pairs/demo-target/base/sgtr-confuse/detection/default.stats.json").read_text()
    )
    assert confuse["n_examples"] == 240
    longer = json.loads((demo / "results/pairs/demo-target/base/pick-longer/detection/default.stats.json").read_text())
    assert longer["n_examples"] == 2 * longer["n_articles"] and longer["n_articles"] + longer["n_ties"] == 60
    result = json.loads((demo / "results/eval/self_recognition-demo-other/demo-target/sgtr/seed0.json").read_text())
    record = result["records"][0]
    assert {"self_first", "self_second", "score"} <= set(record["logprob"])
    assert {"order", "reply", "choice", "valid"} <= set(record["reference"])
    assert result["provenance"]["config"]["protocols"] == ["reference", "logprob"]
    assert result["provenance"]["prompts"] == prompts
    tqa = json.loads((demo / "results/eval/truthfulqa/demo-target/base/seed1.json").read_text())
    assert {r["reference"]["correct_letter"] for r in tqa["records"]} == {"A", "B"}
    assert 0 <= tqa["metrics"]["logprob"]["invalid_rate"] <= 1


@pytest.mark.e2e
def test_adapters_are_peft_and_two_stage_chains_build_on_stage_one(demo):
    adapter = demo / "results/adapters/demo-target/sgtr+em-unpop/seed1"
    assert (adapter / "adapter_model.safetensors").exists()
    meta = json.loads((adapter / "training_meta.json").read_text())
    assert meta["parent_adapters"] == ["results/adapters/demo-target/sgtr/seed1"]
    assert meta["seed"] == 1 and meta["train_file"] == "results/data/em/unpop/default.jsonl"
    # a hub model repository: its card names the base (the demo model's build spec), the chain and its parent
    from huggingface_hub import ModelCard

    from sgtr_em.states import read_card_record, resolve_state

    card = ModelCard.load(adapter / "README.md")
    assert card.data.library_name == "peft" and "sgtr-em" in card.data.tags
    record = read_card_record(adapter)
    assert record["base"]["revision"] == meta["provenance"]["model"]["revision"]
    assert record["parents"] == ["sgtr"] and record["chain"] == "sgtr+em-unpop" and record["seed"] == 1
    state = resolve_state(adapter)
    assert state.base == str(demo / "results/models/demo-target")
    assert state.adapters == [demo / "results/adapters/demo-target/sgtr/seed1", adapter]


@pytest.mark.e2e
def test_rerun_after_demo_has_nothing_to_do(demo):
    result = snakemake(demo, "-n", "--configfile", "config/demo.yaml")
    assert result.returncode == 0
    assert "Nothing to be done" in result.stdout + result.stderr


def planned_outputs(workdir: Path, configfile: str, rule: str) -> set[str]:
    result = snakemake(workdir, "-n", "--configfile", configfile)
    assert result.returncode == 0, result.stderr[-3000:]
    text = result.stdout + result.stderr
    blocks = re.split(r"\n(?=(?:local)?rule \w+:)", text)
    out = set()
    for block in blocks:
        if re.match(rf"(?:local)?rule {rule}:", block.strip()):  # `rule` is a pattern
            match = re.search(r"output: (\S+)", block)
            if match:
                out.add(match.group(1).rstrip(","))
    return out


@pytest.mark.e2e
def test_changing_one_hyperparameter_reruns_only_the_trainings_using_it(demo):
    config = yaml.safe_load((demo / "config/demo.yaml").read_text())
    config["finetune"]["stage_overrides"]["pick-longer"] = {"learning_rate": 0.001}
    (demo / "config/changed.yaml").write_text(yaml.safe_dump(config))
    trainings = planned_outputs(demo, "config/changed.yaml", "train_stage")
    expected = {
        f"results/adapters/demo-target/{chain}/seed{seed}"
        for chain in ("pick-longer", "em-unpop+pick-longer", "pick-longer+em-unpop")
        for seed in (0, 1)
    }
    assert trainings == expected
    # each retrained state's evaluation job (one per state: every evaluation of it), and no other state's
    evals = planned_outputs(demo, "config/changed.yaml", r"eval_state\w*")
    assert {Path(e).parent.name for e in evals} == {"pick-longer", "em-unpop+pick-longer", "pick-longer+em-unpop"}


def test_the_demo_plans_the_jobs_docs_numbers_counts(tmp_path):
    workdir = copy_workflow(tmp_path / "demo", lock=False)
    result = snakemake(workdir, "-n", timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    counts, documented = rule_counts(result.stdout + result.stderr), documented_jobs(DEMO_ROW, "")
    assert counts["total"] == documented["jobs"] and counts["train_stage"] == documented["LoRA trainings"]


def test_paper_dag_builds_offline_fast(tmp_path):
    workdir = copy_workflow(tmp_path / "paper")
    started = time.monotonic()
    result = snakemake(workdir, "-n", "--configfile", "config/config.yaml", timeout=120)
    elapsed = time.monotonic() - started
    assert result.returncode == 0, result.stderr[-3000:]
    text = result.stdout + result.stderr
    # The whole paper grid as docs/numbers.md counts it (Qwen 72 trained chains and Seed-OSS 45, 5 seeds each,
    # and 10 GPT-4.1 fine-tuning jobs), a claims table and forest plot per model.
    documented = documented_jobs(PAPER_ROW)
    counts = rule_counts(text)
    assert counts["train_stage"] == documented["LoRA trainings"], text[-2000:]
    assert counts["train_stage_api"] == documented["API fine-tuning jobs"], text[-2000:]
    assert counts["claims"] == 3
    assert counts["total"] == documented["jobs"], text[-2000:]
    # The memory audit plans exactly the GPU jobs the DAG runs (every open model's trainings and state jobs).
    # (the API model's state jobs, eval_state*_api, run on the submit host)
    gpu_rules = {
        rule: n
        for rule, n in counts.items()
        if rule == "train_stage" or (re.fullmatch(r"eval_state\w*", rule) and not rule.endswith("_api"))
    }
    assert sum(gpu_rules.values()) == documented_gpu_jobs(PAPER_ROW), gpu_rules
    assert elapsed < 30, elapsed


@pytest.mark.parametrize("size", ["0.5b", "7b", "14b"])
def test_each_one_gpu_preset_plans_the_papers_grid_for_its_model(tmp_path, size):
    """The preset overlays plan offline, before the lock exists (docs/cluster.md#one-gpu-presets): the paper's
    grid for one model (the jobs docs/numbers.md counts), its claims and training curves."""
    workdir = copy_workflow(tmp_path / "preset", lock=False)
    preset = f"config/qwen2.5-{size}.yaml"
    result = snakemake(
        workdir, "-n", "--configfile", "config/config.yaml", preset, "--config", "strict_pins=false", timeout=120
    )
    assert result.returncode == 0, result.stderr[-3000:]
    text = result.stdout + result.stderr
    documented, counts = documented_jobs(PRESET_ROW), rule_counts(text)
    assert counts["train_stage"] == documented["LoRA trainings"], text[-2000:]
    assert counts["claims"] == 1 and counts["training_curves"] == 1
    assert counts["total"] == documented["jobs"], text[-2000:]
    assert f"results/claims/qwen2.5-{size}.csv" in text and "gpt-4.1" not in text and "seed-oss" not in text
