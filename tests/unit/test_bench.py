"""The benchmark's workload is the one the issue specifies: both orderings of each pair, prompts of a set length."""

from __future__ import annotations

import json

from sgtr_em.bench import bench_scoring, pair_conversations, words_for_prompt_tokens


def test_pair_prompts_come_as_both_orderings_of_each_article():
    conversations = pair_conversations(5, 10)
    assert len(conversations) == 5
    first, second = conversations[0][-1]["content"], conversations[1][-1]["content"]
    assert first.index("first summary 0") < first.index("second summary 0")
    assert second.index("second summary 0") < second.index("first summary 0")


def test_scoring_benchmark_records_prompts_of_the_asked_length(tiny_model_dir, tmp_path):
    from sgtr_em.backends.hf import HFChatModel

    model = HFChatModel(tiny_model_dir)
    prompt = model.render(pair_conversations(1, words_for_prompt_tokens(model, 300))[0])
    assert abs(len(model.tokenizer(prompt, add_special_tokens=False)["input_ids"]) - 300) <= 15

    result = bench_scoring(tiny_model_dir, tmp_path, n=4, prompt_tokens=250)
    saved = json.loads((tmp_path / "scoring.json").read_text())
    assert saved["ratio"] == result["ratio"] > 0
    assert abs(saved["prompt_tokens"] - 250) <= 15 and saved["batched_without_prefix_sharing"] > 0


def test_truthfulqa_benchmark_scores_both_orders(tiny_model_dir, tmp_path):
    from sgtr_em.bench import bench_truthfulqa

    result = bench_truthfulqa(tiny_model_dir, tmp_path, n=4)
    assert result["baseline"] > 0 and result["optimized"] > 0 and result["prompt_tokens"] > 20
    assert json.loads((tmp_path / "truthfulqa_scoring.json").read_text())["units"] == "items/s"


def test_memory_plan_benchmark_covers_the_paper_models(tmp_path):
    from sgtr_em.bench import bench_memory

    plans = bench_memory(tmp_path)["plans"]
    assert set(plans) == {"qwen2.5-7b", "qwen2.5-32b", "seed-oss-36b"}
    on_one_gpu = plans["qwen2.5-32b"]["train_seq1024"]
    assert on_one_gpu["fits"] and on_one_gpu["checkpointing"] and on_one_gpu["gpus_needed"] == 1
    assert plans["seed-oss-36b"]["train_seq1024"]["gpus_needed"] == 2
    assert json.loads((tmp_path / "memory.json").read_text())["plans"] == plans


def test_start_up_benchmark_times_the_table_scripts_imports():
    """The table/figure job start-up is timed on what those scripts import (read from their source)."""
    from sgtr_em.bench import script_imports

    modules = script_imports()
    assert {"sgtr_em.aggregate", "sgtr_em.plot", "sgtr_em.report"} <= set(modules)
    assert not any(m.split(".")[0] in ("torch", "transformers") for m in modules)
