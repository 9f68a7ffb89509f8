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
