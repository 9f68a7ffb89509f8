"""The GPU acceptance run (issue 19): a GPU shape stops at once without a GPU, and the judgements its GPU checks
make, on records shaped like a GPU run's (its CPU smoke variant end to end: tests/e2e/test_gpu_acceptance_tiny.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import acceptance

from sgtr_em.acceptance import (
    FAIL,
    PASS,
    SCORING_TOLERANCE,
    SKIP,
    centred_error,
    fraction_check,
    reference_option_logprobs,
    single_token_options,
    training_checks,
)


def test_a_gpu_shape_without_a_gpu_stops_at_once(tmp_path):
    result = acceptance("--shape", "0.5b", "--out", "out", "--work", str(tmp_path / "work"), cwd=tmp_path)
    assert result.returncode == 2
    assert "gpu acceptance (--shape 0.5b) asked for 1 GPU but sees none" in result.stderr
    assert not (tmp_path / "work").exists()


def random_qwen(tiny_model_dir: Path, out: Path) -> Path:
    """A random-init Qwen2 model (as the GPU run builds, at a test's size) with the tiny tokenizer."""
    import torch
    from transformers import AutoTokenizer, Qwen2Config, Qwen2ForCausalLM

    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    config = Qwen2Config(
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        vocab_size=len(tokenizer),
        tie_word_embeddings=True,
    )
    torch.manual_seed(0)
    Qwen2ForCausalLM(config).save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


def test_the_scoring_comparison_tells_a_wrong_position_apart_on_a_random_model(tiny_model_dir, tmp_path):
    """A random model's log-probabilities are all near -log(vocabulary), yet the centred comparison puts
    the next-to-last position (an off-by-one) far outside even the GPU's bf16 tolerance."""
    import torch

    from sgtr_em.backends.hf import HFChatModel
    from sgtr_em.prompts import truthfulqa_messages

    model = HFChatModel(random_qwen(tiny_model_dir, tmp_path / "random"))
    conversations = [truthfulqa_messages(f"Question {k}: why?", "Because.", "No.") for k in range(4)]
    options = single_token_options(model)
    assert len(options) >= 20
    expected = reference_option_logprobs(model, conversations, options)
    ids = model.option_token_ids(options)
    wrong = []
    for conversation in conversations:
        enc = model.tokenizer(model.render(conversation), return_tensors="pt", add_special_tokens=False)
        logits = model.model(input_ids=enc["input_ids"]).logits[0, -2].float()
        wrong.append(torch.log_softmax(logits, dim=-1)[ids].tolist())
    assert min(centred_error(w, e) for w, e in zip(wrong, expected, strict=True)) > 3 * SCORING_TOLERANCE["cuda"]
    assert max(centred_error(e, e) for e in expected) == 0.0


def gpu_training_record(auto_planned: float, auto_peak: float, mfu: float) -> dict:
    """bench_training's record on a GPU: `auto` (optimized) and always-on (baseline) checkpointing."""
    return {
        "optimized": 9000.0,
        "optimized_details": {
            "activation_checkpointing": False,
            "peak_allocated_gib": auto_peak,
            "peak_reserved_gib": auto_peak + 2,
            "planned_allocated_gib": auto_planned,
            "mfu": mfu,
        },
        "baseline_details": {
            "activation_checkpointing": True,
            "peak_allocated_gib": 20.0,
            "peak_reserved_gib": 22.0,
            "planned_allocated_gib": 21.0,
            "mfu": mfu * 0.7,
        },
    }


def test_the_memory_plan_passes_within_15_percent_of_the_measured_peak_and_fails_beyond():
    plan, mfu = training_checks(gpu_training_record(70.0, 75.0, 0.4), on_gpu=True)
    assert (plan.status, mfu.status) == (PASS, PASS)
    assert "auto: checkpointing False, planned 70.0 GiB vs measured 75.0 (7%)" in plan.detail
    plan, _ = training_checks(gpu_training_record(55.0, 75.0, 0.4), on_gpu=True)  # 27% under the peak
    assert plan.status == FAIL and plan.values["errors"]["auto"] == pytest.approx(20 / 75)
    _, mfu = training_checks(gpu_training_record(70.0, 75.0, 0.01), on_gpu=True)
    assert mfu.status == FAIL
    assert [c.status for c in training_checks({}, on_gpu=False)] == [SKIP, SKIP]


def test_a_fraction_above_the_limit_is_a_failure():
    record = {"optimized": 10.0, "baseline": 2.0, "ratio": 5.0, "units": "items/s"}
    assert fraction_check("compute_fraction", {**record, "share": 0.3}, "share", "scoring", True).status == PASS
    assert fraction_check("compute_fraction", {**record, "share": 1.7}, "share", "scoring", True).status == FAIL
    assert fraction_check("compute_fraction", record, "share", "scoring", True).status == SKIP
