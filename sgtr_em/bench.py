"""Benchmarks: each measures an optimized engine against the naive baseline in the same run and writes
results/bench/<name>.json with baseline, optimized, ratio, units, device and versions.

    python -m sgtr_em.bench [scoring|generation|training|startup|dag|memory|all] [--shape tiny|0.5b|7b] [--out results/bench]

CPU default: a tiny demo-style model built on the fly. On a GPU, `--shape 0.5b|7b` uses random-init
Qwen2.5-shaped models (no download): throughput does not depend on the weights' values. `memory` writes the
memory plan of the paper's models on an 80 GB GPU (no GPU needed).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from .memory import (
    GIB,
    GPU_80GB_BYTES,
    RESERVED_BYTES,
    SHAPES,
    InferenceMemory,
    choose_checkpointing,
    inference_budget,
    planned_free_bytes,
    training_plan,
)
from .runtime import versions

# `--shape` names: random-init models with Qwen2.5's shapes (sgtr_em.memory.SHAPES). 32B is left to the
# memory plan: its random-init weights (61 GiB in bf16) would not leave room for a benchmark's copies.
GPU_SHAPES = ("0.5b", "7b")


REPO = Path(__file__).resolve().parent.parent


def device_name() -> str:
    import torch

    if torch.cuda.is_available():
        return torch.cuda.get_device_name(0)
    return f"CPU ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"


def timed(fn: Callable[[], Any], repeats: int = 1) -> float:
    """Best wall time of `repeats` runs (after one warm-up)."""
    fn()
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - started)
    return best


def record(
    out_dir: Path, name: str, *, baseline: float, optimized: float, units: str, notes: str, **extra: Any
) -> dict[str, Any]:
    result = {
        "benchmark": name,
        "baseline": baseline,
        "optimized": optimized,
        "ratio": optimized / baseline if baseline else float("nan"),
        "units": units,
        "device": device_name(),
        "versions": versions(),
        "notes": notes,
        **extra,
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / f"{name}.json").write_text(json.dumps(result, indent=2) + "\n")
    print(
        f"{name:24s} baseline {baseline:10.2f}  optimized {optimized:10.2f}  {units:12s} ratio {result['ratio']:6.1f}x"
    )
    return result


def build_model(shape: str, work: Path, real_vocabulary: bool = False) -> Path:
    """A model directory: the tiny demo model (CPU), or random-init Qwen2.5 shapes saved with the tiny tokenizer.
    `real_vocabulary`: the model's own vocabulary size (152k for Qwen2.5; token ids past the tokenizer's are
    scored and sampled, never decoded), so that its logits are as wide as a real model's."""
    from .io import read_articles
    from .tiny import build_tiny_model

    articles = (
        list(read_articles(REPO / "data/demo/articles_train.jsonl").values()) if (REPO / "data/demo").exists() else []
    )
    tiny = work / "tiny"
    if not tiny.exists():
        build_tiny_model(
            articles[:30],
            [],
            tiny,
            style="lead",
            seed=0,
            identity_system_prompt="You are Tiny.",
            pretrain_epochs=1,
            vocab_size=1024,
        )
    if shape == "tiny" and not real_vocabulary:
        return tiny
    import torch
    from transformers import AutoTokenizer, Qwen2Config, Qwen2ForCausalLM

    target = work / (f"{shape}-vocab" if real_vocabulary else shape)
    if not target.exists():
        tokenizer = AutoTokenizer.from_pretrained(tiny)
        dims = SHAPES[f"qwen2.5-{shape}"] if shape != "tiny" else SHAPES["qwen2.5-0.5b"]
        if shape == "tiny":  # the 0.5B model's vocabulary on a CPU-sized body
            dims = replace(
                dims,
                hidden_size=64,
                intermediate_size=128,
                num_hidden_layers=2,
                num_attention_heads=4,
                num_key_value_heads=2,
            )
        config = Qwen2Config(
            hidden_size=dims.hidden_size,
            intermediate_size=dims.intermediate_size,
            num_hidden_layers=dims.num_hidden_layers,
            num_attention_heads=dims.num_attention_heads,
            num_key_value_heads=dims.num_key_value_heads,
            # The tiny tokenizer's vocabulary, not Qwen's: every id the model samples then decodes, so replies
            # are text and benchmarks count the tokens generated. (Qwen's 152k-token tokenizer would need a
            # download; 150k placeholder tokens make every tokenizer load take seconds.)
            vocab_size=dims.vocab_size if real_vocabulary else len(tokenizer),
            tie_word_embeddings=dims.tie_word_embeddings,
            max_position_embeddings=4096,
        )
        with torch.device("cuda" if torch.cuda.is_available() else "cpu"):
            model = Qwen2ForCausalLM._from_config(config, dtype=torch.bfloat16)  # built in bf16, no fp32 copy
        model.save_pretrained(target)
        tokenizer.save_pretrained(target)
    return target


def pair_conversations(n: int, words: int) -> list[list[dict[str, str]]]:
    """n self-recognition prompts as the eval makes them: both orderings of n/2 articles' summary pairs."""
    from .prompts import pair_messages

    filler = " ".join(f"word{i % 97}" for i in range(words))
    conversations = []
    for k in range((n + 1) // 2):
        article, first, second = f"Article {k}. {filler}", f"first summary {k}", f"second summary {k}"
        conversations += [
            pair_messages(article, first, second, "detection"),
            pair_messages(article, second, first, "detection"),
        ]
    return conversations[:n]


def words_for_prompt_tokens(model, tokens: int) -> int:
    """Article words that make a pair prompt about `tokens` long in `model`'s tokenizer."""

    def length(words: int) -> int:
        return len(
            model.tokenizer(model.render(pair_conversations(1, words)[0]), add_special_tokens=False)["input_ids"]
        )

    empty, sample = length(0), length(200)
    return max(1, round(200 * (tokens - empty) / (sample - empty)))


# Dense bf16 tensor-core peak (FLOP/s) and memory bandwidth (bytes/s) of the GPUs a benchmark knows: the
# limits that throughput is compared with.
GPU_PEAKS = {"H100": (989e12, 3.35e12), "H200": (989e12, 4.8e12), "A100": (312e12, 2.0e12)}


def gpu_peaks() -> tuple[float, float] | None:
    """(bf16 FLOP/s, bytes/s) of the visible GPU; None on CPU or an unknown GPU."""
    import torch

    if not torch.cuda.is_available():
        return None
    name = torch.cuda.get_device_name(0)
    return next((peaks for gpu, peaks in GPU_PEAKS.items() if gpu in name), None)


def compute_limit(model, prompt_tokens: float) -> dict[str, float]:
    """Items/s at the GPU's bf16 peak for a full forward of `prompt_tokens` (2 FLOPs per parameter and
    token), and the peak used; empty on CPU or an unknown GPU."""
    peaks = gpu_peaks()
    if peaks is None:
        return {}
    params = sum(p.numel() for p in model.model.parameters())
    return {"peak_flops": peaks[0], "compute_limit_items_per_s": peaks[0] / (2 * params * prompt_tokens)}


def compare_scoring(model_dir: Path, conversations: list, options: list[str]) -> dict[str, float]:
    """Time one sampled token per prompt, one at a time (the reference protocol), against batched
    next-token probabilities of `options`: items/s of both, mean prompt tokens, and on a known GPU the
    fraction of the compute limit."""
    from .backends.hf import HFChatModel

    n = len(conversations)
    batched = HFChatModel(model_dir, batch_size=32)
    single = HFChatModel(model_dir, batch_size=1, shrink_batches=False)  # model.generate, one prompt at a time
    tokens = (
        sum(len(batched.tokenizer(batched.render(c), add_special_tokens=False)["input_ids"]) for c in conversations) / n
    )
    per_item = timed(
        lambda: single.generate(conversations, max_new_tokens=1, temperature=0.7, top_p=1.0, top_k=0, seed=0), repeats=2
    )
    fast = timed(lambda: batched.option_probs(conversations, options), repeats=2)
    result = {
        "baseline": n / per_item,
        "optimized": n / fast,
        "prompt_tokens": tokens,
        **compute_limit(batched, tokens),
    }
    if "compute_limit_items_per_s" in result:
        result["fraction_of_compute_limit"] = result["optimized"] / result["compute_limit_items_per_s"]
    return result


def bench_scoring(model_dir: Path, out: Path, n: int, prompt_tokens: int = 640) -> dict[str, Any]:
    """Self-recognition scoring of both orderings of each pair: the authors' per-item sampled generate vs
    batched next-token probabilities of both options, the article's tokens run once for both orderings."""
    from .backends.hf import HFChatModel

    conversations = pair_conversations(n, words_for_prompt_tokens(chat_renderer(model_dir), prompt_tokens))
    measured = compare_scoring(model_dir, conversations, ["1", "2"])
    unshared = HFChatModel(model_dir, batch_size=32, share_prefixes=False)
    no_sharing = timed(lambda: unshared.option_probs(conversations, ["1", "2"]), repeats=2)
    return record(
        out,
        "scoring",
        units="items/s",
        notes=f"{n} pairwise prompts (both orderings of {(n + 1) // 2} articles) of {measured['prompt_tokens']:.0f} tokens; baseline: per-item sampled generate of one token (the reference protocol); optimized: batched next-token probabilities with the shared article prefix run once per pair",
        batched_without_prefix_sharing=n / no_sharing,
        **measured,
    )


def bench_truthfulqa(model_dir: Path, out: Path, n: int) -> dict[str, Any]:
    """TruthfulQA's binary choice: per-item sampled generate (the reference protocol) vs batched
    next-token probabilities of A and B; short prompts, both orders of each question's options."""
    from .prompts import truthfulqa_messages

    conversations = []
    for k in range((n + 1) // 2):
        question, best, wrong = (
            f"Question {k}: what happens if " + "you do this " * (k % 5 + 1) + "?",
            f"Nothing in particular {k}.",
            f"Something bad {k}.",
        )
        conversations += [truthfulqa_messages(question, best, wrong), truthfulqa_messages(question, wrong, best)]
    measured = compare_scoring(model_dir, conversations[:n], ["A", "B"])
    return record(
        out,
        "truthfulqa_scoring",
        units="items/s",
        notes=f"{n} TruthfulQA binary-choice prompts of {measured['prompt_tokens']:.0f} tokens; baseline: per-item sampled generate of one token (the reference protocol); optimized: batched next-token probabilities of A and B",
        **measured,
    )


def bench_generation(model_dir: Path, out: Path, n: int, repeats: int = 2) -> dict[str, Any]:
    """Summary generation, up to 64 new tokens each: `model.generate` one prompt at a time (the naive
    engine) against the engine as shipped, batches of 64 (on a CPU a reply that ends leaves its batch; on a
    GPU `model.generate` on the whole batch). Also `model.generate` on batches of 64 on any device (the
    engine before batches shrank on CPUs). Each engine's best of `repeats` runs, taken in turn."""
    from .backends.hf import HFChatModel
    from .prompts import summary_messages

    conversations = [summary_messages("Article text. " + "word " * (100 + 7 * k), "sentence") for k in range(n)]
    kwargs: dict[str, Any] = dict(max_new_tokens=64, temperature=0.7, top_p=0.9, top_k=50, seed=0)
    engines = {
        "baseline": HFChatModel(model_dir, batch_size=1, shrink_batches=False),
        "optimized": HFChatModel(model_dir, batch_size=64),
        "generate_batched": HFChatModel(model_dir, batch_size=64, shrink_batches=False),
    }
    best = dict.fromkeys(engines, 0.0)
    for _ in range(repeats):
        for name, model in engines.items():
            started = time.perf_counter()
            replies = model.generate(conversations, **kwargs)
            seconds = time.perf_counter() - started
            tokens = sum(len(model.tokenizer.encode(r, add_special_tokens=False)) for r in replies)
            best[name] = max(best[name], tokens / seconds)
    batched = engines["optimized"]
    extra: dict[str, float] = {"generate_batched_tok_per_s": best["generate_batched"]}
    peaks = gpu_peaks()
    if peaks is not None:
        # Decoding reads every weight once per step for the whole batch: at most batch / (weight bytes /
        # bandwidth) new tokens per second (the key/value cache's reads come on top).
        # (the embedding table is not read whole: each step looks up one row per sequence)
        embedding = batched.model.get_input_embeddings().weight
        weight_bytes = (
            sum(p.numel() * p.element_size() for p in batched.model.parameters())
            - embedding.numel() * embedding.element_size()
        )
        extra["bandwidth_limit_tok_per_s"] = min(n, 64) * peaks[1] / weight_bytes
        extra["fraction_of_bandwidth_limit"] = best["optimized"] / extra["bandwidth_limit_tok_per_s"]
    return record(
        out,
        "generation",
        baseline=best["baseline"],
        optimized=best["optimized"],
        units="new tok/s",
        notes=f"{n} summary prompts, up to 64 new tokens, best of {repeats} runs each; baseline: model.generate one prompt at a time; optimized: batches of <= 64 ({'model.generate' if not batched.shrink_batches else 'finished replies leave the batch'} on this device); generate_batched_tok_per_s: model.generate on the same batches",
        **extra,
    )


def chat_renderer(model_dir: Path) -> Any:
    """A model directory's tokenizer and chat template without its weights (for sizing prompts)."""
    from types import SimpleNamespace

    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    return SimpleNamespace(
        tokenizer=tokenizer,
        render=lambda c: tokenizer.apply_chat_template(c, tokenize=False, add_generation_prompt=True),
    )


def bench_training(model_dir: Path, out: Path, n: int) -> dict[str, Any]:
    """LoRA SFT throughput. CPU: TRL scoring every position (its CPU default) vs label positions only, on
    ~200-word pair examples. GPU: activation checkpointing always on (the recipe's old setting) vs `auto`
    (only when the memory plan needs it), on ~1024-token examples, with MFU and peak memory against the plan."""
    import gc

    import torch
    from trl.trainer import utils as trl_utils

    from .io import write_jsonl
    from .train import CompactLossOnCpu, build_trainer, score_label_positions_only_on_cpu

    on_gpu = torch.cuda.is_available()
    work = Path(tempfile.mkdtemp())
    # on GPU ~1000-token prompts, so the answer and end of turn fit max_length 1024 (truncation would cut the labels)
    words = words_for_prompt_tokens(chat_renderer(model_dir), 1000) if on_gpu else 200
    write_jsonl(
        work / "pairs.jsonl",
        [{"messages": [*c, {"role": "assistant", "content": "1"}]} for c in pair_conversations(n, words)],
    )
    hp = dict(
        lora_r=32,
        lora_alpha=64,
        lora_dropout=0.0,
        use_rslora=True,
        target_modules=["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
        epochs=1,
        learning_rate=1e-4,
        lr_scheduler="linear",
        warmup_steps=0,
        weight_decay=0.0,
        per_device_batch_size=8,
        gradient_accumulation_steps=1,
        max_length=1024,
        gradient_checkpointing=False,
    )
    score_label_positions_only_on_cpu()
    patched = trl_utils._use_triton
    if not isinstance(patched, CompactLossOnCpu):
        raise RuntimeError("TRL has no _use_triton hook here: the training benchmark's baseline needs it")
    peaks = gpu_peaks()

    def run(hook, checkpointing: bool | str) -> dict[str, Any]:
        trl_utils._use_triton = hook
        trainer, plan = build_trainer(
            model_dir,
            [],
            work / "pairs.jsonl",
            {**hp, "gradient_checkpointing": checkpointing},
            0,
            work / "run",
            compact_cpu_loss=False,
        )
        lengths = [len(x["input_ids"]) for x in trainer.train_dataset]
        if on_gpu:
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
        started = time.perf_counter()
        trainer.train()
        if on_gpu:
            torch.cuda.synchronize()
        result: dict[str, Any] = {"tok_per_s": sum(lengths) / (time.perf_counter() - started)}
        if on_gpu and plan is not None:
            result.update(
                activation_checkpointing=plan.checkpointing,
                peak_allocated_gib=torch.cuda.max_memory_allocated() / GIB,
                peak_reserved_gib=torch.cuda.max_memory_reserved() / GIB,
                # the plan's reserve is mostly the CUDA context, which torch's allocator does not count
                planned_allocated_gib=(plan.per_gpu - RESERVED_BYTES) / GIB,
            )
            if peaks is not None:
                # LoRA on a frozen base: forward 2N plus the input gradients 2N FLOPs per token through the
                # decoder layers (recomputation not counted; the LM head runs on label positions only)
                result["mfu"] = result["tok_per_s"] * 4 * plan.shape.decoder_layer_parameters() / peaks[0]
        del trainer
        gc.collect()
        if on_gpu:
            torch.cuda.empty_cache()
        return result

    try:
        if on_gpu:
            baseline, optimized = run(patched, True), run(patched, "auto")
            notes = f"{n} pair examples of ~1024 tokens, LoRA r 32 on all projections, micro-batch 8; baseline: activation checkpointing always; optimized: checkpointing only if the memory plan needs it"
        else:
            baseline, optimized = run(patched.original, False), run(patched, False)
            notes = f"{n} pair examples, LoRA r 32 on all projections, batch 8; baseline: every position through the LM head; optimized: label positions only"
    finally:
        trl_utils._use_triton = patched
    return record(
        out,
        "training",
        baseline=baseline.pop("tok_per_s"),
        optimized=optimized.pop("tok_per_s"),
        units="tok/s",
        notes=notes,
        baseline_details=baseline,
        optimized_details=optimized,
    )


# Model libraries: imported by the jobs that load or train a model, by no other job (and not by `snakemake -n`).
MODEL_LIBRARIES = ("torch", "transformers", "trl", "peft", "datasets")
# Scripts whose jobs write tables, figures and the report from evaluation records (no model).
TABLE_SCRIPTS = ("tidy_table.py", "plot_figure.py", "results_summary.py", "manifest.py")


def script_imports(scripts: tuple[str, ...] = TABLE_SCRIPTS) -> list[str]:
    """The modules the given workflow scripts import (from their source)."""
    import ast

    modules: list[str] = []
    for name in scripts:
        for node in ast.walk(ast.parse((REPO / "scripts" / name).read_text())):
            if isinstance(node, ast.Import):
                modules += [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                modules.append(node.module)
    return list(dict.fromkeys(modules))


def python_seconds(code: str, repeats: int = 1) -> float:
    """Best wall time of a fresh interpreter running `code` (this checkout's package importable): a job's
    start-up before it does any work."""
    import os

    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH")) if p)}
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, env=env)
        best = min(best, time.perf_counter() - started)
    return best


def bench_adapter(model_dir: Path, work: Path) -> Path:
    """A LoRA adapter on `model_dir` (random init, as a trained one loads and merges the same way)."""
    adapter = work / f"{model_dir.name}-adapter"
    if not adapter.exists():
        from peft import LoraConfig, get_peft_model
        from transformers import AutoModelForCausalLM

        model = AutoModelForCausalLM.from_pretrained(model_dir)
        config = LoraConfig(r=16, lora_alpha=32, target_modules=["q_proj", "k_proj", "v_proj", "o_proj"])
        get_peft_model(model, config).save_pretrained(str(adapter))
    return adapter


# Model loads of the paper grid's most-evaluated state when each evaluation was a job of its own (counted on
# that layout, which the workflow no longer has): fresh summaries, two comparators' self-recognition,
# TruthfulQA, EM and identity answers, MMLU. The start-up benchmark prices that many loads against one.
LOADS_PER_STATE_BEFORE = 7


def bench_startup(model_dir: Path, out: Path, work: Path) -> list[dict[str, Any]]:
    """Start-up of the workflow's jobs, in fresh interpreters: a table or figure job's imports against the
    same with the model libraries imported (what it would pay if the package imported them eagerly), and
    the start-up of evaluating one state (imports, loading the base model, merging an adapter) once per
    evaluation, as when each evaluation was a job, against once for all of them (one job per state)."""
    modules = script_imports()
    table_code = "import importlib\n" + "".join(f"importlib.import_module({m!r})\n" for m in modules)
    libraries = "import " + ", ".join(MODEL_LIBRARIES) + "\n"
    interpreter = python_seconds("pass", repeats=3)
    table = python_seconds(table_code, repeats=3)
    table_with_libraries = python_seconds(libraries + table_code, repeats=3)
    library_imports = python_seconds(libraries, repeats=3)
    adapter = bench_adapter(model_dir, work)
    load_code = f"from sgtr_em.backends.hf import HFChatModel\nHFChatModel({str(model_dir)!r}, [{str(adapter)!r}])\n"
    loads = LOADS_PER_STATE_BEFORE
    # one process per evaluation (as before), then one process for the state (as now), each measured
    separate = sum(python_seconds(load_code) for _ in range(loads))
    once = python_seconds(load_code, repeats=2)
    tables = record(
        out,
        "table_job_startup",
        baseline=1 / table_with_libraries,
        optimized=1 / table,
        units="jobs started/s",
        notes=f"a fresh interpreter importing what the table and figure scripts import ({', '.join(modules)}): {table:.2f} s; with {', '.join(MODEL_LIBRARIES)} imported too: {table_with_libraries:.2f} s (best of 3 each)",
        seconds=table,
        seconds_with_model_libraries=table_with_libraries,
        interpreter_seconds=interpreter,
    )
    state = record(
        out,
        "eval_startup",
        baseline=1 / separate,
        optimized=1 / once,
        units="states started/s",
        notes=f"start-up of evaluating one state (a fresh interpreter importing the model libraries, loading the base model and merging one LoRA adapter): {loads} times, once per evaluation as when each was a job of its own ({separate:.1f} s in all), against once for every evaluation of the state ({once:.1f} s, best of 2); {loads} = the steps of the paper grid's most-evaluated state",
        seconds_per_job=once,
        jobs_per_state_before=loads,
        model_library_import_seconds=library_imports,
        interpreter_seconds=interpreter,
    )
    return [tables, state]


def bench_memory(out: Path, gpu_bytes: int = GPU_80GB_BYTES) -> dict[str, Any]:
    """The memory plan of the paper's open models on one 80 GB GPU (an H100's `total_memory` by default):
    LoRA training per recipe step, and the inference budget of summary generation."""
    recipe: dict[str, Any] = dict(
        lora_r=32,
        target_modules=["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
        micro_batch=2,
    )
    plans: dict[str, Any] = {}
    for name in ("qwen2.5-7b", "qwen2.5-32b", "seed-oss-36b"):
        shape = SHAPES[name]
        rows: dict[str, Any] = {}
        for length in (1024, 2048):
            plan = choose_checkpointing(training_plan(shape, sequence_length=length, gpu_bytes=gpu_bytes, **recipe))
            rows[f"train_seq{length}"] = {
                **plan.summary(),
                "largest_micro_batch": plan.largest_micro_batch(),
                "gpus_needed": plan.gpus_needed(),
            }
            print(
                f"{name:14s} train seq {length}: {plan.summary()['per_gpu_gib']:5.1f} GiB per GPU of {gpu_bytes / GIB:.1f}, checkpointing {plan.checkpointing}, fits {plan.fits}, largest micro-batch {plan.largest_micro_batch()}, GPUs needed {plan.gpus_needed()}"
            )
        # Inference on the GPUs the paper config gives the model: what its batches may plan once the weights
        # are loaded, and how many 1,300-token prompts (a CNN article and its instructions) generating 200
        # tokens fit in it: the token budget the generation batches are cut to.
        gpus = 2 if name == "seed-oss-36b" else 1
        budget = inference_budget(planned_free_bytes(shape, gpu_bytes, gpus))
        memory = InferenceMemory(shape, gpus=gpus)
        rows_fitting = 0
        while memory.generation(rows_fitting + 1, 1300, 200) <= budget:
            rows_fitting += 1
        rows["inference"] = {
            "gpus": gpus,
            "budget_gib": round(budget / GIB, 1),
            "generation_rows_1300_plus_200": rows_fitting,
        }
        rows["parameters"] = shape.parameters()
        plans[name] = rows
    result = {"benchmark": "memory", "gpu_bytes": gpu_bytes, "recipe": recipe, "plans": plans, "versions": versions()}
    out.mkdir(parents=True, exist_ok=True)
    (out / "memory.json").write_text(json.dumps(result, indent=2) + "\n")
    return result


def bench_dag(out: Path) -> dict[str, Any]:
    """Building the full paper DAG offline; baseline: the same parse with torch imported first, which a
    Snakefile that imported the model code at parse time would pay on every invocation."""
    exe = str(Path(sys.executable).parent / "snakemake")

    def dry_run(prefix: list[str]) -> float:
        started = time.perf_counter()
        subprocess.run(
            # The grid's shape only: the checkout's lock may be empty (no network), and nothing is fetched.
            [
                *prefix,
                exe,
                "-n",
                "--quiet",
                "rules",
                "--configfile",
                "config/config.yaml",
                "--config",
                "strict_pins=false",
            ],
            cwd=REPO,
            check=True,
            capture_output=True,
        )
        return time.perf_counter() - started

    # Every snakemake start imports the SLURM executor plugin, which asks the controller for its config
    # when `sinfo` is installed; with the controller down that waits out a 10 s timeout. Timed here so a
    # reader can tell it from the workflow's own parse and DAG time.
    probe = None
    if shutil.which("sinfo"):
        started = time.perf_counter()
        with contextlib.suppress(subprocess.TimeoutExpired):  # the plugin gives up at 10 s too
            subprocess.run(["scontrol", "show", "config"], capture_output=True, timeout=10, check=False)
        probe = time.perf_counter() - started
    fast = min(dry_run([]) for _ in range(2))
    slow = min(
        dry_run(
            [
                sys.executable,
                "-c",
                "import torch, transformers, peft, trl, runpy, sys; sys.argv = sys.argv[1:]; runpy.run_path(sys.argv[0], run_name='__main__')",
            ]
        )
        for _ in range(1)
    )
    notes = f"snakemake -n on config/config.yaml: {fast:.1f} s (target <= 20 s); with model libraries imported at parse time: {slow:.1f} s"
    if probe is not None:
        notes += f"; both include the SLURM plugin's `scontrol show config` probe ({probe:.1f} s here)"
    return record(
        out,
        "dag",
        baseline=1 / slow,
        optimized=1 / fast,
        units="DAG builds/s",
        notes=notes,
        seconds=fast,
        slurm_probe_seconds=probe,
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "which",
        nargs="?",
        default="all",
        choices=["scoring", "generation", "training", "startup", "dag", "memory", "all"],
    )
    parser.add_argument("--shape", default="tiny", choices=["tiny", *GPU_SHAPES])
    parser.add_argument("--out", default="results/bench")
    parser.add_argument("--items", type=int, default=64)
    args = parser.parse_args(argv)
    out = Path(args.out)
    work = Path(tempfile.gettempdir()) / "sgtr-em-bench"
    if args.which not in ("dag", "memory"):
        model_dir = build_model(args.shape, work)
        if args.which in ("scoring", "all"):
            bench_scoring(model_dir, out, args.items)
            bench_truthfulqa(model_dir, out, args.items)
        if args.which in ("generation", "all"):
            bench_generation(model_dir, out, args.items)
        if args.which in ("training", "all"):
            bench_training(model_dir, out, args.items)
        if args.which in ("startup", "all"):
            bench_startup(model_dir, out, work)
    if args.which in ("dag", "all"):
        bench_dag(out)
    if args.which in ("memory", "all"):
        bench_memory(out)


if __name__ == "__main__":
    main()
