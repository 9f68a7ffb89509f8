"""The demo workflow end to end and its rerun semantics, on the finished demo (the DAGs it and the paper config
plan: tests/workflow/test_dag.py)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml
from conftest import snakemake

from sgtr_em.aggregate import read_summary

# Self++ must move the demo target's self-recognition (logprob protocol, mean over seeds) at least this far
# above the base model, and Self-- at least this far below. Observed (seeds 0-2): base 0.50, Self++ 0.85-0.87,
# Self-- 0.11-0.12.
SR_MARGIN = 0.25


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


def test_self_plus_plus_raises_and_self_minus_minus_lowers_self_recognition(demo):
    rows = {
        r["chain"]: r
        for r in read_summary(demo / "results/tables/self_recognition-demo-other_summary.csv", "logprob", "score")
    }
    base, plus, minus = rows["base"]["mean"], rows["sgtr"]["mean"], rows["sgtr-flip"]["mean"]
    assert plus >= base + SR_MARGIN, (base, plus)
    assert minus <= base - SR_MARGIN, (base, minus)
    assert rows["sgtr"]["n"] == 2


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
