"""The memory plan: parameter counts, measured activation memory, and the choices made from them."""

from __future__ import annotations

import pytest
from conftest import PAPER_ROW, documented_gpu_jobs, load_config, read_config

from sgtr_em.grid import model_seeds, trained_chains
from sgtr_em.memory import (
    GIB,
    GPU_80GB_BYTES,
    SHAPES,
    ModelShape,
    choose_checkpointing,
    saved_activation_bytes,
    training_plan,
)
from sgtr_em.train import plan_checkpointing

ALL_PROJECTIONS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
H100_BYTES = GPU_80GB_BYTES


def qwen2_config(hidden, intermediate, heads, kv_heads, head_dim=None, tied=False, layers=2, vocab=500):
    from transformers import Qwen2Config

    extra = {"head_dim": head_dim} if head_dim else {}
    return Qwen2Config(
        hidden_size=hidden,
        intermediate_size=intermediate,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        num_key_value_heads=kv_heads,
        vocab_size=vocab,
        tie_word_embeddings=tied,
        max_position_embeddings=512,
        **extra,
    )


@pytest.mark.parametrize("tied,head_dim", [(False, None), (True, None), (False, 48)])
def test_parameter_count_matches_a_built_model(tied, head_dim):
    from transformers import Qwen2ForCausalLM

    config = qwen2_config(128, 320, 4, 2, head_dim=head_dim, tied=tied, layers=3)
    model = Qwen2ForCausalLM(config)
    assert ModelShape.from_config(config).parameters() == sum(p.numel() for p in model.parameters())
    assert ModelShape.from_config(config.to_dict()) == ModelShape.from_config(config)


def test_qwen25_32b_shape_has_its_published_size():
    import torch
    from transformers import Qwen2ForCausalLM

    shape = SHAPES["qwen2.5-32b"]
    config = qwen2_config(
        shape.hidden_size,
        shape.intermediate_size,
        shape.num_attention_heads,
        shape.num_key_value_heads,
        layers=shape.num_hidden_layers,
        vocab=shape.vocab_size,
    )
    with torch.device("meta"):
        model = Qwen2ForCausalLM(config)
    assert shape.parameters() == sum(p.numel() for p in model.parameters()) == 32_763_876_352
    # LoRA r 32 on every projection: 268M parameters (4.2M per layer)
    assert shape.lora_parameters(32, ALL_PROJECTIONS) == 64 * 32 * (
        2 * 5120 + 2 * (5120 + 1024) + 2 * 5120 + 3 * (5120 + 27648)
    )


@pytest.mark.parametrize(
    "hidden,intermediate,heads,kv_heads,head_dim,rank", [(384, 1024, 6, 6, None, 8), (256, 1024, 16, 2, 64, 32)]
)
def test_activation_estimate_matches_what_autograd_saves(hidden, intermediate, heads, kv_heads, head_dim, rank):
    """The plan's activation bytes against the tensors a LoRA forward under bf16 autocast really keeps."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import Qwen2ForCausalLM

    torch.manual_seed(0)
    config = qwen2_config(hidden, intermediate, heads, kv_heads, head_dim=head_dim)
    model = get_peft_model(
        Qwen2ForCausalLM(config).to(torch.bfloat16),
        LoraConfig(r=rank, target_modules=ALL_PROJECTIONS, task_type="CAUSAL_LM"),
    )
    batch, length = 2, 96
    ids = torch.randint(0, config.vocab_size, (batch, length))

    def forward():
        with torch.autocast("cpu", dtype=torch.bfloat16):
            return model.base_model.model.model(input_ids=ids).last_hidden_state.float().sum()

    measured = saved_activation_bytes(forward, model.parameters())
    plan = training_plan(
        ModelShape.from_config(config),
        lora_r=rank,
        target_modules=ALL_PROJECTIONS,
        micro_batch=batch,
        sequence_length=length,
        gpu_bytes=H100_BYTES,
    )
    assert plan.activations == pytest.approx(measured, rel=0.10)


def test_32b_trains_on_one_80gb_gpu_only_with_checkpointing():
    step = dict(lora_r=32, target_modules=ALL_PROJECTIONS, sequence_length=1024, gpu_bytes=H100_BYTES)
    plan = choose_checkpointing(training_plan(SHAPES["qwen2.5-32b"], micro_batch=2, **step))
    assert plan.checkpointing and plan.fits
    assert 60 < plan.weights / GIB < 62
    assert not training_plan(SHAPES["qwen2.5-32b"], micro_batch=1, checkpointing=False, **step).fits
    assert plan.largest_micro_batch() >= 2
    # 36B does not fit one 80 GB GPU even with checkpointing: split across two
    seed = choose_checkpointing(training_plan(SHAPES["seed-oss-36b"], micro_batch=2, **step))
    assert not seed.fits and seed.gpus_needed() == 2


def test_7b_skips_checkpointing_when_the_step_fits():
    step = dict(lora_r=32, target_modules=ALL_PROJECTIONS, sequence_length=1024, gpu_bytes=H100_BYTES)
    assert not choose_checkpointing(training_plan(SHAPES["qwen2.5-7b"], micro_batch=2, **step)).checkpointing
    assert choose_checkpointing(training_plan(SHAPES["qwen2.5-7b"], micro_batch=16, **step)).checkpointing


def test_training_resolves_auto_from_the_longest_sequence():
    hp = dict(
        lora_r=32,
        target_modules=ALL_PROJECTIONS,
        per_device_batch_size=2,
        max_length=2048,
        gradient_checkpointing="auto",
    )
    config = {
        "model_type": "qwen2",
        **{
            k: getattr(SHAPES["qwen2.5-7b"], k)
            for k in (
                "hidden_size",
                "intermediate_size",
                "num_hidden_layers",
                "num_attention_heads",
                "num_key_value_heads",
                "head_dim",
                "vocab_size",
            )
        },
    }
    short = plan_checkpointing(hp, config, longest_tokens=700, gpu_bytes=H100_BYTES, gpus=1)
    assert short is not None and not short.checkpointing and short.sequence_length == 700
    assert plan_checkpointing(hp, config, longest_tokens=700, gpu_bytes=24 * GIB, gpus=1).checkpointing
    assert plan_checkpointing({**hp, "gradient_checkpointing": True}, config, 700, H100_BYTES, 1).checkpointing
    assert plan_checkpointing({**hp, "target_modules": ["c_attn"]}, config, 700, H100_BYTES, 1) is None


def test_device_map_splits_only_across_several_gpus_and_loads_one_gpu_straight_onto_it():
    from sgtr_em.backends.hf import device_map

    assert device_map("cpu", 0) is None
    # one GPU: the weights are placed on it as they load, never staged in host memory
    assert device_map("cuda", 1) == {"": 0}
    assert device_map("cuda", 2) == "auto"


def test_a_training_job_plans_for_its_longest_row(tiny_model_dir, caplog):
    from transformers import AutoConfig, AutoTokenizer

    from sgtr_em.train import log_memory_plan, plan_for_rows

    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    rows = [
        {"messages": [{"role": "user", "content": "word " * n}, {"role": "assistant", "content": "1"}]}
        for n in (5, 40, 12)
    ]
    hp = dict(
        lora_r=4,
        target_modules=["q_proj", "v_proj"],
        per_device_batch_size=2,
        max_length=512,
        gradient_checkpointing="auto",
    )
    plan = plan_for_rows(hp, AutoConfig.from_pretrained(tiny_model_dir), tokenizer, rows, {}, gpu_bytes=8 * GIB, gpus=1)
    longest = len(
        tokenizer(tokenizer.apply_chat_template(rows[1]["messages"], tokenize=False), add_special_tokens=False)[
            "input_ids"
        ]
    )
    assert plan is not None and plan.sequence_length == longest and plan.fits and not plan.checkpointing
    with caplog.at_level("INFO", logger="sgtr_em.train"):
        log_memory_plan(plan)
        log_memory_plan(
            training_plan(
                SHAPES["seed-oss-36b"],
                lora_r=32,
                target_modules=ALL_PROJECTIONS,
                micro_batch=2,
                sequence_length=1024,
                gpu_bytes=H100_BYTES,
                checkpointing=True,
            )
        )
    assert "without activation checkpointing" in caplog.text
    assert "may not fit" in caplog.text and "resources.gpu: 2" in caplog.text


PAPER_HP = dict(
    lora_r=32,
    target_modules=ALL_PROJECTIONS,
    per_device_batch_size=2,
    gradient_accumulation_steps=8,
    max_length=2048,
    gradient_checkpointing="auto",
)


def shape_config(name: str) -> dict:
    """A config.json-like dict of one of the planner's real model shapes."""
    shape = SHAPES[name]
    keys = ("hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads", "num_key_value_heads")
    return {
        "model_type": "qwen2",
        "head_dim": shape.head_dim,
        "vocab_size": shape.vocab_size,
        "tie_word_embeddings": shape.tie_word_embeddings,
        "attention_bias": shape.attention_bias,
        **{k: getattr(shape, k) for k in keys},
    }


def test_qwen_32b_training_of_long_rows_falls_back_to_micro_batch_1_with_more_accumulation():
    """At 2 x 2,048 tokens a Qwen2.5-32B step does not fit an 80 GB card even with checkpointing: the run
    takes micro-batch 1 with 16 accumulation steps (the same 16-row optimizer steps), decided before loading."""
    from sgtr_em.train import executed_hyperparameters, fitted_plan

    config = shape_config("qwen2.5-32b")
    short = fitted_plan(PAPER_HP, config, 650, H100_BYTES, 1)
    assert short is not None and short.micro_batch == 2 and short.fits
    long = fitted_plan(PAPER_HP, config, 2048, H100_BYTES, 1)
    assert long is not None and long.micro_batch == 1 and long.checkpointing and long.fits
    executed = executed_hyperparameters(PAPER_HP, long, None)
    assert (executed["per_device_batch_size"], executed["gradient_accumulation_steps"]) == (1, 16)
    # a micro-batch that ran out of memory before caps the next attempt
    capped = fitted_plan(PAPER_HP, config, 650, H100_BYTES, 1, largest_micro_batch=1)
    assert capped is not None and capped.micro_batch == 1


def test_a_training_that_cannot_fit_its_gpus_stops_before_loading_naming_the_fix():
    """Seed-OSS-36B's LoRA training does not fit one 80 GB card at any micro-batch: one line says to give its
    jobs two GPUs. On two, or on one 141 GB card, it fits."""
    from sgtr_em.train import TrainingDoesNotFit, fitted_plan

    config = shape_config("seed-oss-36b")
    with pytest.raises(TrainingDoesNotFit) as error:
        fitted_plan(PAPER_HP, config, 2048, H100_BYTES, 1, who="train_lora seed-oss-36b/sgtr/seed0")
    message = str(error.value)
    assert "\n" not in message and message.startswith("train_lora seed-oss-36b/sgtr/seed0: ")
    assert "micro-batch 1" in message and "resources.gpu: 2" in message and "gpu_model" in message
    assert fitted_plan(PAPER_HP, config, 2048, H100_BYTES, 2).fits
    assert fitted_plan(PAPER_HP, config, 2048, 141 * 10**9, 1).fits


def test_micro_batches_keep_the_effective_batch():
    from sgtr_em.train import micro_batches

    assert micro_batches(PAPER_HP) == [2, 1]
    assert micro_batches({"per_device_batch_size": 8, "gradient_accumulation_steps": 3}) == [8, 6, 4, 3, 2, 1]
    assert micro_batches({"per_device_batch_size": 8, "gradient_accumulation_steps": 1}, largest=5) == [4, 2, 1]


def run_audit(*args: str) -> tuple[int, str]:
    import contextlib
    import io

    from sgtr_em.memory.__main__ import main

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main(["audit", *args])
    return code, out.getvalue()


@pytest.mark.parametrize("gpu_gib", [80, 141])
def test_the_audit_passes_the_paper_config_on_80_and_141_gb_cards(gpu_gib):
    code, report = run_audit("--configfile", "config/config.yaml", "--gpu-gib", str(gpu_gib))
    assert code == 0, report
    assert f"All {documented_gpu_jobs(PAPER_ROW)} GPU jobs fit." in report
    # every GPU rule of both open models is audited, training included
    for rule in ("train_stage", "eval_state", "eval_state_em_questions_identity_mmlu", "eval_state_summaries_xsum"):
        assert f"\n{rule} " in report


def test_the_audit_fails_an_undersized_card_naming_the_jobs():
    code, report = run_audit("--configfile", "config/config.yaml", "--gpu-gib", "40")
    assert code == 1
    config = load_config(read_config("config.yaml"))
    trainings = len(trained_chains(config, "qwen2.5-32b")) * len(model_seeds(config, "qwen2.5-32b"))
    assert "would not fit" in report
    assert f"train_stage qwen2.5-32b/em-unpop/seed0 (and {trainings - 1} more)" in report
    assert "resources.gpu: 3" in report and "the weights and CUDA reserve need" in report


def test_the_audit_would_have_caught_the_old_mmlu_grouping():
    """Before: a whole MMLU subject (professional law, 1,534 five-shot prompts) in one batch, a copy of its shared
    prefix per prompt; at Qwen2.5-32B's shape that batch plans over a terabyte against the ~13 GiB an 80 GB card
    has left. Now the subject is cut into batches that each fit."""
    from sgtr_em.batching import padded_length, shared_prefix_batches
    from sgtr_em.memory import InferenceMemory, inference_budget, planned_free_bytes
    from sgtr_em.memory.audit import Workloads

    shape = SHAPES["qwen2.5-32b"]
    memory = InferenceMemory(shape)
    budget = inference_budget(planned_free_bytes(shape, H100_BYTES))
    (prefix, questions), *_ = Workloads().mmlu_groups(["professional_law"], None)
    old_batch = memory.shared_prefix(1, len(questions), padded_length(prefix), padded_length(questions[0]))
    assert old_batch > 50 * budget and old_batch > 1000 * GIB

    lengths = [prefix + q for q in questions]
    groups = [(prefix, list(range(len(questions))))]

    def fits(n_groups, members, prefix_length, suffix_length):
        return memory.shared_prefix(n_groups, members, prefix_length, suffix_length) <= budget

    batches = shared_prefix_batches(groups, lengths, 64, fits)
    assert len(batches) > 1 and sum(len(b.members) for b in batches) == len(questions)
    assert all(
        memory.shared_prefix(len(b.groups), len(b.members), b.prefix_length, b.suffix_length) <= budget for b in batches
    )
