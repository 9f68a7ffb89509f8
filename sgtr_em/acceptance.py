"""GPU acceptance run: the project's GPU code paths on one GPU in under 8 minutes, with random-init
Qwen2.5-shaped models (no download). One PASS/FAIL/SKIP line per check, all of them in one JSON.

    python -m sgtr_em.acceptance [--shape mixed|0.5b|7b|tiny] [--out results/gpu_acceptance]

(`make gpu-acceptance`; docs/gpu.md says how to install it on a GPU machine without network.) `--shape tiny`
runs the same checks on the CPU with the tiny demo model (the tests do); the checks that need a GPU SKIP
there. The checks:

- cuda: the process sees a CUDA device that does bf16 (else it stops at once, as a model job would);
- training: bf16 LoRA training through `train_lora` with `gradient_checkpointing: auto`, its memory plan
  recorded (the uninterrupted run of `resume`);
- checkpointing_plan: the plan's decision under `auto` and its estimate against the measured peak memory,
  within 15%, with and without activation checkpointing (`sgtr_em.bench.bench_training`);
- shared_prefix_scoring, option_probabilities: next-token probabilities of the batched paths (shared
  article prefix; right-padded batches) against each prompt's own full forward pass;
- seeded_generation: batched sampling gives the same replies for the same seed and others for another;
- resume: a training SIGKILLed after a checkpoint resumes from it and ends where the uninterrupted one does;
- mfu, compute_fraction, bandwidth_fraction: the benchmarks' ratios to the GPU's limits (training model
  FLOP utilisation; scoring against the bf16 compute limit; generation against the memory-bandwidth limit);
- parent_adapter_training: a child stage trained on a parent adapter merged in, on 2,048-token rows (the
  recipe's max_length), its memory plan made before the model loads; the two-stage state then loads and scores;
- oom_split: a batch planned with a budget larger than the memory left (a filler tensor takes most of the GPU)
  runs out of memory, is split in halves until it fits, and gives the same probabilities as unhindered
  batches (on a CPU the out-of-memory error is simulated);
- mmlu_sized_group: 1,534 prompts sharing one five-shot-sized prefix (MMLU's largest subject) cut into batches
  by the row cap and the memory budget, each batch's measured peak within the plan's, probabilities against each
  prompt's own forward;
- real_vocabulary: a model with Qwen2.5's 151,936-token vocabulary: scoring against each prompt's own forward,
  and seeded sampling that gives the same tokens whether prompts run in one batch or one at a time;
- duration: the whole run in under 8 minutes.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import string
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .io import write_json, write_jsonl
from .runtime import versions

GPU_BUDGET_SECONDS = 8 * 60
# The memory plan's estimate against the measured peak of torch's allocator, relative to the measured peak.
PLAN_TOLERANCE = 0.15
# Below this a bf16 LoRA step is not using the tensor cores (fp32 fallback, or a step bound by overheads).
MIN_MFU = 0.05
# Batched next-token log-probabilities against each prompt's own forward pass (`centred_error`): fp32 on a
# CPU agrees to rounding; bf16 on a GPU to its precision (a wrong position or mask gives errors near 1).
SCORING_TOLERANCE = {"cpu": 1e-3, "cuda": 0.1}
# A resumed run's LoRA weights against the uninterrupted run's (largest relative difference of a tensor):
# identical on a CPU; on a GPU some kernels (attention backward) add in a nondeterministic order.
RESUME_TOLERANCE = {"cpu": 1e-4, "cuda": 0.05}

# The model each group of checks runs on: training and scoring at 7B, where memory and compute matter;
# the other paths at 0.5B, where start-up time dominates.
SHAPE_PLANS = {
    "mixed": {"training": "7b", "scoring": "7b", "paths": "0.5b"},
    "7b": {"training": "7b", "scoring": "7b", "paths": "7b"},
    "0.5b": {"training": "0.5b", "scoring": "0.5b", "paths": "0.5b"},
    "tiny": {"training": "tiny", "scoring": "tiny", "paths": "tiny"},
}
# Benchmark sizes: examples for training, prompts for scoring and generation.
ITEMS = {
    "cuda": {"training": 64, "scoring": 64, "generation": 16},
    "cpu": {"training": 16, "scoring": 8, "generation": 4},
}

# The resumed training: 12 chats in batches of 2 (6 steps), a checkpoint every 2 steps, killed after step 3.
RESUME_HP = {
    "lora_r": 8,
    "lora_alpha": 16,
    "lora_dropout": 0.0,
    "use_rslora": True,
    "target_modules": ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
    "epochs": 1,
    "learning_rate": 1e-4,
    "lr_scheduler": "linear",
    "warmup_steps": 0,
    "weight_decay": 0.0,
    "per_device_batch_size": 2,
    "gradient_accumulation_steps": 1,
    "max_length": 128,
    "gradient_checkpointing": "auto",
    "checkpoint_steps": 2,
}
RESUME_ROWS, RESUME_STEPS, KILL_AT_STEP, RESUME_FROM = 12, 6, 3, 2

PASS, FAIL, SKIP = "PASS", "FAIL", "SKIP"


@dataclass
class Check:
    name: str
    status: str
    detail: str
    values: dict[str, Any] = field(default_factory=dict)

    def line(self) -> str:
        return f"{self.status} {self.name}: {self.detail}"


def passed(ok: bool) -> str:
    return PASS if ok else FAIL


# ---------------------------------------------------------------------------------------- helpers --


def centred_error(got: Sequence[float], expected: Sequence[float]) -> float:
    """How far two log-probability vectors over the same options disagree, a shared offset aside:
    |(got - mean) - (expected - mean)| / |expected - mean|. Log-probabilities of a random-init model are
    all close to -log(vocabulary); their differences between options are what a position carries."""
    mean_got, mean_expected = sum(got) / len(got), sum(expected) / len(expected)
    diff = math.sqrt(sum(((g - mean_got) - (e - mean_expected)) ** 2 for g, e in zip(got, expected, strict=True)))
    spread = math.sqrt(sum((e - mean_expected) ** 2 for e in expected))
    return diff / spread if spread > 0 else (0.0 if diff == 0 else math.inf)


def single_token_options(model: Any, limit: int = 40) -> list[str]:
    """Letters and digits that are one token each: many options, so a comparison sees the distribution."""
    chars = string.ascii_uppercase + string.digits + string.ascii_lowercase
    return [c for c in chars if len(model.tokenizer.encode(c, add_special_tokens=False)) == 1][:limit]


def reference_option_logprobs(model: Any, conversations: list, options: list[str]) -> list[list[float]]:
    """Each prompt alone through the model's own forward: log-softmax of its last position at the options."""
    import torch

    ids = model.option_token_ids(options)
    out = []
    with torch.no_grad():
        for conversation in conversations:
            enc = model.tokenizer(model.render(conversation), return_tensors="pt", add_special_tokens=False)
            logits = model.model(input_ids=enc["input_ids"].to(model.device)).logits[0, -1].float()
            out.append(torch.log_softmax(logits, dim=-1)[ids].tolist())
    return out


def compare_option_probs(model: Any, conversations: list, tolerance: float) -> tuple[bool, dict[str, Any]]:
    options = single_token_options(model)
    probs = model.option_probs(conversations, options)
    got = [[math.log(p[o]) if p[o] > 0 else -math.inf for o in options] for p in probs]
    expected = reference_option_logprobs(model, conversations, options)
    errors = [centred_error(g, e) for g, e in zip(got, expected, strict=True)]
    worst = max(errors)
    return worst <= tolerance, {"options": len(options), "prompts": len(conversations), "worst_error": worst}


def free_gpu_memory() -> None:
    import gc

    import torch

    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


# ----------------------------------------------------------------------------------------- checks --


def check_shared_prefix(model_dir: Path, kind: str) -> Check:
    """Both orderings of each article's pair: the shared-prefix path against each prompt's own forward."""
    from .backends.hf import HFChatModel, shared_prefix_groups
    from .bench import pair_conversations

    model = HFChatModel(model_dir, batch_size=8)
    conversations = pair_conversations(8, 120)
    token_ids = [model.tokenizer(model.render(c), add_special_tokens=False)["input_ids"] for c in conversations]
    grouped = sum(len(members) for _, members in shared_prefix_groups(token_ids) if len(members) > 1)
    ok, values = compare_option_probs(model, conversations, SCORING_TOLERANCE[kind])
    values.update(prompts_sharing_a_prefix=grouped, prefix_sharing=model._prefix_sharing_supported())
    ok = ok and grouped == len(conversations) and values["prefix_sharing"]
    return Check(
        "shared_prefix_scoring",
        passed(ok),
        f"{grouped}/{len(conversations)} prompts scored from a shared prefix; largest error against a per-prompt forward {values['worst_error']:.2g} (tolerance {SCORING_TOLERANCE[kind]:g})",
        values,
    )


def check_option_path(model_dir: Path, kind: str) -> Check:
    """TruthfulQA-style prompts of different lengths in one right-padded batch, no prefix sharing."""
    from .backends.hf import HFChatModel
    from .prompts import truthfulqa_messages

    model = HFChatModel(model_dir, batch_size=8, share_prefixes=False)
    conversations = [
        truthfulqa_messages(f"Question {k}: what happens if " + "you do this " * (3 * k + 1) + "?", "Nothing.", "Harm.")
        for k in range(8)
    ]
    lengths = [len(model.tokenizer(model.render(c), add_special_tokens=False)["input_ids"]) for c in conversations]
    ok, values = compare_option_probs(model, conversations, SCORING_TOLERANCE[kind])
    values["padded_positions"] = len(lengths) * max(lengths) - sum(lengths)
    return Check(
        "option_probabilities",
        passed(ok and values["padded_positions"] > 0),
        f"{len(conversations)} prompts of {min(lengths)}-{max(lengths)} tokens in one padded batch; largest error against a per-prompt forward {values['worst_error']:.2g} (tolerance {SCORING_TOLERANCE[kind]:g})",
        values,
    )


def check_generation(model_dir: Path) -> Check:
    from .backends.hf import HFChatModel
    from .prompts import summary_messages

    model = HFChatModel(model_dir, batch_size=4)
    conversations = [summary_messages("Article text. " + "word " * (20 + 9 * k), "sentence") for k in range(8)]

    def sample(seed: int) -> list[str]:
        return model.generate(conversations, max_new_tokens=16, temperature=1.0, top_p=1.0, top_k=0, seed=seed)

    first, again, other = sample(0), sample(0), sample(1)
    values = {
        "prompts": len(conversations),
        "batch_size": 4,
        "same_seed_same_replies": first == again,
        "other_seed_differs": first != other,
        "non_empty_replies": sum(bool(r) for r in first),
    }
    ok = first == again and first != other and values["non_empty_replies"] > 0
    return Check(
        "seeded_generation",
        passed(ok),
        f"{len(conversations)} prompts in batches of 4: seed 0 twice {'identical' if first == again else 'DIFFERENT'}, seed 1 {'differs' if first != other else 'IDENTICAL'}",
        values,
    )


# The issue-25 paths: how many prompts share one prefix (MMLU's largest subject), and of how many tokens.
MMLU_GROUP = {"cuda": (1_534, 900), "cpu": (40, 120)}
# A planned batch's measured peak (torch's allocator, above the weights) against its plan.
BATCH_PLAN_TOLERANCE = 0.25


def long_rows(n: int, words: int) -> list[dict[str, Any]]:
    return [
        {
            "messages": [
                {"role": "user", "content": f"Article {i}: " + " ".join(f"word{(i + k) % 89}" for k in range(words))},
                {"role": "assistant", "content": "12"[i % 2]},
            ]
        }
        for i in range(n)
    ]


def check_parent_adapter_training(model_dir: Path, parent: Path, work: Path, kind: str) -> Check:
    """A child stage on a merged parent adapter, trained on rows of max_length tokens; the state loads."""
    from .backends.hf import HFChatModel
    from .train import train_lora

    train_file = work / "long.jsonl"
    write_jsonl(train_file, long_rows(4, 500))  # about 2,000 tokens each with the tiny tokenizer
    hp = {**RESUME_HP, "max_length": 2_048, "checkpoint_steps": 0}
    meta = train_lora(model_dir, [parent], train_file, work / "child", hp, seed=0, work_dir=work / "work-child")
    plan = meta["memory_plan"]
    model = HFChatModel(model_dir, [parent, work / "child"], batch_size=4)
    probs = model.option_probs([[{"role": "user", "content": "Which one, 1 or 2?"}]], ["1", "2"])[0]
    losses = meta["loss_per_step"]
    ok = bool(losses) and all(math.isfinite(x) for x in losses) and 0 <= probs["1"] <= 1
    if kind == "cuda":
        ok = ok and plan is not None and plan["sequence_length"] >= 1_500
    planned = f"plan {plan['per_gpu_gib']} GiB at {plan['sequence_length']} tokens" if plan else "no plan on CPU"
    return Check(
        "parent_adapter_training",
        passed(ok),
        f"child of a merged parent: {len(losses)} steps on ~2,048-token rows, {planned}; the two-stage state scores",
        {"memory_plan": plan, "loss_per_step": losses, "executed_batch": meta.get("executed_batch")},
    )


def simulated_out_of_memory(model: Any, rows: int) -> None:
    """Make the model's decoder raise an out-of-memory error on any forward of more than `rows` prompts."""
    import torch

    decoder = model.model.get_decoder()
    forward = decoder.forward

    def limited(*args, **kwargs):
        ids = kwargs.get("input_ids", args[0] if args else None)
        if ids is not None and ids.shape[0] > rows:
            raise torch.OutOfMemoryError("CUDA out of memory (simulated on a CPU)")
        return forward(*args, **kwargs)

    decoder.forward = limited


def check_oom_split(model_dir: Path, kind: str) -> Check:
    """A budget larger than the memory left: the batch runs out of memory, is split, and changes nothing."""
    import logging

    import torch

    from .backends.hf import HFChatModel
    from .bench import pair_conversations

    conversations = pair_conversations(32, 300)
    reference = HFChatModel(model_dir, batch_size=32)
    expected = reference.option_probs(conversations, ["1", "2"])
    del reference
    free_gpu_memory()
    model = HFChatModel(model_dir, batch_size=32)
    filler = None
    if kind == "cuda":
        # leave ~1 GiB free, and plan as if a whole free GPU were there
        free, _ = torch.cuda.mem_get_info()
        filler = torch.empty(max(free - (1 << 30), 0), dtype=torch.uint8, device="cuda")
        model.budget = 64 * (1 << 30)
    else:
        simulated_out_of_memory(model, 4)
    records: list[str] = []
    handler = logging.Handler()
    handler.emit = lambda record: records.append(record.getMessage())  # type: ignore[method-assign]
    logging.getLogger("sgtr_em.backends.hf").addHandler(handler)
    try:
        got = model.option_probs(conversations, ["1", "2"])
    finally:
        logging.getLogger("sgtr_em.backends.hf").removeHandler(handler)
        del filler
    splits = sum("ran out of GPU memory" in r for r in records)
    worst = max(abs(a[o] - b[o]) for a, b in zip(got, expected, strict=True) for o in ("1", "2"))
    tolerance = 0.0 if kind == "cpu" else 1e-2
    return Check(
        "oom_split",
        passed(splits > 0 and worst <= tolerance),
        f"{splits} out-of-memory splits{' (simulated)' if kind == 'cpu' else ''}; largest difference from unhindered batches {worst:.2g} (tolerance {tolerance:g})",
        {"splits": splits, "worst_difference": worst},
    )


def check_mmlu_sized_group(model_dir: Path, kind: str) -> Check:
    """An MMLU subject's worth of prompts on one shared prefix: cut by the cap and the budget, each batch within
    its plan, probabilities as each prompt's own forward gives them."""
    import torch

    from .backends.hf import HFChatModel
    from .batching import shared_prefix_batches, shared_prefix_groups

    members, prefix_words = MMLU_GROUP[kind]
    header = "The following are multiple choice questions (with answers). " + " ".join(
        f"shot{k % 53}" for k in range(prefix_words)
    )
    conversations = [
        [{"role": "user", "content": f"{header}\nQuestion {i}: which is right? A. x{i} B. y C. z D. w\nAnswer:"}]
        for i in range(members)
    ]
    model = HFChatModel(model_dir, batch_size=64)
    token_ids = model._token_ids(model.prompts(conversations))
    groups = shared_prefix_groups(token_ids)
    batches = shared_prefix_batches(groups, [len(t) for t in token_ids], model.batch_size)
    values: dict[str, Any] = {"prompts": members, "groups": len(groups), "batches": len(batches)}
    if kind == "cuda":
        torch.cuda.reset_peak_memory_stats()
        before = torch.cuda.memory_allocated()
    probs = model.option_probs(conversations, list("ABCD"))
    ok = len(groups) == 1 and all(len(b.members) <= model.batch_size for b in batches)
    memory_plan, budget = model.memory, model.budget
    if kind == "cuda" and memory_plan is not None and budget is not None:
        measured = torch.cuda.max_memory_allocated() - before

        def fits(n_groups: int, n_members: int, prefix: int, suffix: int) -> bool:
            return memory_plan.shared_prefix(n_groups, n_members, prefix, suffix) <= budget

        planned = max(
            memory_plan.shared_prefix(len(b.groups), len(b.members), b.prefix_length, b.suffix_length)
            for b in shared_prefix_batches(groups, [len(t) for t in token_ids], model.batch_size, fits)
        )
        values.update(measured_gib=measured / (1 << 30), planned_gib=planned / (1 << 30), budget_gib=budget / (1 << 30))
        ok = ok and measured <= budget and measured <= planned * (1 + BATCH_PLAN_TOLERANCE)
    sample = conversations[:: max(members // 8, 1)][:8]
    expected = reference_option_logprobs(model, sample, list("ABCD"))
    got = [[math.log(p[o]) for o in "ABCD"] for p in probs[:: max(members // 8, 1)][:8]]
    worst = max(centred_error(g, e) for g, e in zip(got, expected, strict=True))
    values["worst_error"] = worst
    ok = ok and worst <= SCORING_TOLERANCE[kind]
    memory = (
        f", peak {values['measured_gib']:.2f} GiB planned {values['planned_gib']:.2f} (budget {values['budget_gib']:.1f})"
        if "measured_gib" in values
        else ""
    )
    return Check(
        "mmlu_sized_group",
        passed(ok),
        f"{members} prompts on one shared prefix in {len(batches)} batches of <= {model.batch_size}{memory}; largest error against a per-prompt forward {worst:.2g}",
        values,
    )


def check_real_vocabulary(model_dir: Path, kind: str) -> Check:
    """151,936-wide logits: scoring against each prompt's own forward; seeded sampling batched and alone."""
    from .backends.hf import HFChatModel, prompt_seeds

    model = HFChatModel(model_dir, batch_size=8)
    conversations = [[{"role": "user", "content": f"Tell me about {w} " * (k + 1)}] for k, w in enumerate("abcdefgh")]
    ok, values = compare_option_probs(model, conversations, SCORING_TOLERANCE[kind])
    prompts = model.prompts(conversations)
    token_ids = model._token_ids(prompts)
    seeds = prompt_seeds(prompts, 0)
    length = max(map(len, token_ids))
    settings: dict[str, Any] = {"max_new_tokens": 8, "temperature": 1.0, "top_p": 1.0, "top_k": 0}
    together = model._generate_batch(model._encode(token_ids, length, "left"), seeds, **settings)
    alone = [
        model._generate_batch(model._encode([t], length, "left"), [s], **settings)[0]
        for t, s in zip(token_ids, seeds, strict=True)
    ]
    agreement = sum(a == b for x, y in zip(together, alone, strict=True) for a, b in zip(x, y, strict=False)) / sum(
        map(len, alone)
    )
    # bf16 logits of a batch and of one prompt may differ in their last bits, which can move a draw among 152k
    # near-equal tokens of a random-init model; on a CPU in fp32 they agree exactly
    needed = 1.0 if kind == "cpu" else 0.9
    values.update(vocabulary=model.model.config.vocab_size, sampled_agreement=agreement)
    return Check(
        "real_vocabulary",
        passed(ok and agreement >= needed and model.model.config.vocab_size >= 150_000),
        f"vocabulary {model.model.config.vocab_size}: scoring error {values['worst_error']:.2g}; seeded samples batched vs alone agree on {agreement:.0%} of tokens (needed {needed:.0%})",
        values,
    )


def kill_at_step_callback(step: int):
    """A TrainerCallback that SIGKILLs its own process at the end of optimizer step `step` (no cleanup:
    what a scheduler's or the OOM killer's kill does)."""
    import signal

    from transformers import TrainerCallback

    class KillAtStep(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            if state.global_step == step:
                os.kill(os.getpid(), signal.SIGKILL)
            return control

    return KillAtStep()


def train_worker(argv: Sequence[str]) -> None:
    """`python -m sgtr_em.acceptance --train-worker MODEL TRAIN_FILE OUT WORK KILL_AT`: one `train_lora` run."""
    from .train import train_lora

    model_dir, train_file, out_dir, work_dir, kill_at = argv
    callbacks = [kill_at_step_callback(int(kill_at))] if int(kill_at) > 0 else []
    meta = train_lora(
        model_dir, [], train_file, out_dir, dict(RESUME_HP), seed=0, work_dir=work_dir, callbacks=callbacks
    )
    print(
        json.dumps(
            {
                k: meta[k]
                for k in ("global_steps", "resumed_from_step", "steps_computed", "loss_per_step", "memory_plan")
            }
        )
    )


def run_training(model_dir: Path, train_file: Path, out_dir: Path, work_dir: Path, kill_at: int = 0):
    repo = str(Path(__file__).resolve().parent.parent)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([repo, *filter(None, [os.environ.get("PYTHONPATH")])])}
    args = [str(model_dir), str(train_file), str(out_dir), str(work_dir), str(kill_at)]
    return subprocess.run(
        [sys.executable, "-m", "sgtr_em.acceptance", "--train-worker", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=900,
    )


def adapter_difference(adapter: Path, reference: Path) -> float:
    """The largest relative difference |a - b| / |b| of any LoRA tensor of two adapters."""
    from safetensors.torch import load_file

    got = load_file(str(adapter / "adapter_model.safetensors"))
    expected = load_file(str(reference / "adapter_model.safetensors"))
    if got.keys() != expected.keys() or not got:
        return math.inf
    return max(
        float((got[k].float() - expected[k].float()).norm() / max(float(expected[k].float().norm()), 1e-12))
        for k in expected
    )


def check_resume(model_dir: Path, work: Path, kind: str) -> list[Check]:
    """`training` (the uninterrupted run) and `resume` (killed after step 3, rerun from checkpoint 2)."""
    shutil.rmtree(work, ignore_errors=True)  # a fresh start (a rerun of the acceptance finds no checkpoints)
    work.mkdir(parents=True)
    train_file = work / "train.jsonl"
    write_jsonl(
        train_file,
        [
            {
                "messages": [
                    {"role": "user", "content": f"Which of the two summaries of article {i} did you write?"},
                    {"role": "assistant", "content": "12"[i % 2]},
                ]
            }
            for i in range(RESUME_ROWS)
        ],
    )
    started = time.perf_counter()
    reference = run_training(model_dir, train_file, work / "reference", work / "work-reference")
    seconds = time.perf_counter() - started
    if reference.returncode != 0:
        failed = Check(
            "training", FAIL, f"train_lora exited {reference.returncode}", {"stderr": reference.stderr[-3000:]}
        )
        return [failed, Check("resume", FAIL, "no uninterrupted run to compare with")]
    meta = json.loads(reference.stdout.splitlines()[-1])
    losses = meta["loss_per_step"]
    plan = meta["memory_plan"]
    ok = meta["global_steps"] == RESUME_STEPS and len(losses) == RESUME_STEPS and all(math.isfinite(x) for x in losses)
    if kind == "cuda":
        ok = ok and plan is not None
        planned = (
            f"memory plan {plan['per_gpu_gib']} GiB, checkpointing {plan['checkpointing']} (auto)"
            if plan
            else "NO memory plan"
        )
    else:
        planned = "no memory plan on CPU"
    training = Check(
        "training",
        passed(ok),
        f"train_lora {meta['global_steps']} steps in {seconds:.0f} s, losses {losses[0]:.3f} -> {losses[-1]:.3f}, {planned}",
        {"seconds": seconds, **meta},
    )

    killed = run_training(model_dir, train_file, work / "adapter", work / "work", kill_at=KILL_AT_STEP)
    checkpoints = sorted(p.name for p in (work / "work").glob("checkpoint-*"))
    resumed = run_training(model_dir, train_file, work / "adapter", work / "work")
    values: dict[str, Any] = {"killed_returncode": killed.returncode, "checkpoints_left": checkpoints}
    if resumed.returncode != 0:
        values["stderr"] = resumed.stderr[-3000:]
        return [training, Check("resume", FAIL, f"the rerun exited {resumed.returncode}", values)]
    after = json.loads(resumed.stdout.splitlines()[-1])
    difference = adapter_difference(work / "adapter", work / "reference")
    values.update(
        resumed_from_step=after["resumed_from_step"],
        steps_computed=after["steps_computed"],
        largest_difference=difference,
    )
    ok = (
        killed.returncode == -9
        and after["resumed_from_step"] == RESUME_FROM
        and after["steps_computed"] == RESUME_STEPS - RESUME_FROM
        and difference <= RESUME_TOLERANCE[kind]
    )
    return [
        training,
        Check(
            "resume",
            passed(ok),
            f"killed at step {KILL_AT_STEP} (exit {killed.returncode}), resumed from step {after['resumed_from_step']}, {after['steps_computed']} steps computed; adapter vs uninterrupted run {difference:.2g} (tolerance {RESUME_TOLERANCE[kind]:g})",
            values,
        ),
    ]


def training_checks(record: dict[str, Any], on_gpu: bool) -> list[Check]:
    """checkpointing_plan and mfu from `bench_training`'s record (GPU: always vs auto checkpointing)."""
    if not on_gpu:
        note = "GPU only (the memory plan and MFU apply to GPU runs)"
        return [Check("checkpointing_plan", SKIP, note), Check("mfu", SKIP, note)]
    runs = {"auto": record["optimized_details"], "always": record["baseline_details"]}
    errors, parts = {}, []
    for name, run in runs.items():
        if "peak_allocated_gib" not in run:
            return [
                Check("checkpointing_plan", FAIL, f"no memory plan for the {name} run", record),
                Check("mfu", FAIL, "no memory plan"),
            ]
        errors[name] = abs(run["planned_allocated_gib"] - run["peak_allocated_gib"]) / run["peak_allocated_gib"]
        parts.append(
            f"{name}: checkpointing {run['activation_checkpointing']}, planned {run['planned_allocated_gib']:.1f} GiB vs measured {run['peak_allocated_gib']:.1f} ({errors[name]:+.0%})".replace(
                "+", ""
            )
        )
    ok = runs["always"]["activation_checkpointing"] is True and all(e <= PLAN_TOLERANCE for e in errors.values())
    plan = Check(
        "checkpointing_plan",
        passed(ok),
        "; ".join(parts) + f" (tolerance {PLAN_TOLERANCE:.0%})",
        {"errors": errors, **{f"{name}_run": run for name, run in runs.items()}},
    )
    mfu = runs["auto"].get("mfu")
    if mfu is None:
        return [plan, Check("mfu", SKIP, "GPU without known peak FLOP/s (sgtr_em.bench.GPU_PEAKS)")]
    return [
        plan,
        Check(
            "mfu",
            passed(MIN_MFU <= mfu <= 1),
            f"LoRA training {mfu:.1%} of the bf16 peak ({record['optimized']:.0f} tok/s; always checkpointing {runs['always'].get('mfu', math.nan):.1%})",
            {"mfu": mfu, "tok_per_s": record["optimized"], "baseline_mfu": runs["always"].get("mfu")},
        ),
    ]


def fraction_check(name: str, record: dict[str, Any], key: str, what: str, on_gpu: bool) -> Check:
    if not on_gpu:
        return Check(name, SKIP, "GPU only (a GPU's peak FLOP/s and bandwidth)")
    fraction = record.get(key)
    if fraction is None:
        return Check(name, SKIP, "GPU without known peaks (sgtr_em.bench.GPU_PEAKS)")
    return Check(
        name,
        passed(0 < fraction <= 1),
        f"{what} at {fraction:.1%} of the limit ({record['optimized']:.1f} {record['units']}, {record['ratio']:.1f}x the naive baseline)",
        {key: fraction, "optimized": record["optimized"], "baseline": record["baseline"], "ratio": record["ratio"]},
    )


# -------------------------------------------------------------------------------------------- run --


def guarded(checks: list[Check], names: Sequence[str], fn: Callable[[], list[Check] | Check]) -> None:
    """Run a group of checks; an exception fails the group's checks (with the error) and the run goes on."""
    try:
        result = fn()
        new = result if isinstance(result, list) else [result]
    except Exception as error:
        detail = f"{type(error).__name__}: {str(error)[:300]}"
        new = [Check(name, FAIL, detail, {"traceback": traceback.format_exc()[-4000:]}) for name in names]
    for check in new:
        print(check.line(), flush=True)
    checks.extend(new)
    free_gpu_memory()


def run(shape: str, out: Path, work: Path) -> dict[str, Any]:
    from .bench import bench_generation, bench_scoring, bench_training, build_model
    from .gpus import CudaStatus

    started = time.perf_counter()
    status = CudaStatus.probe()
    on_gpu = status.device_count > 0
    kind = "cuda" if on_gpu else "cpu"
    items = ITEMS[kind]
    plan = SHAPE_PLANS[shape]
    checks: list[Check] = []
    if on_gpu:
        import torch

        bf16 = torch.cuda.is_bf16_supported()
        checks.append(Check("cuda", passed(bf16), f"{status.devices[0]}; bf16 {bf16}; {status.summary()}"))
    else:
        checks.append(Check("cuda", SKIP, f"no CUDA device, CPU smoke run: {status.summary()}"))
    print(checks[0].line(), flush=True)
    models = {name: build_model(name, work) for name in sorted(set(plan.values()))}
    bench_out = out / "bench"
    paths_model = models[plan["paths"]]
    guarded(checks, ["option_probabilities"], lambda: check_option_path(paths_model, kind))
    guarded(checks, ["shared_prefix_scoring"], lambda: check_shared_prefix(paths_model, kind))
    guarded(checks, ["seeded_generation"], lambda: check_generation(paths_model))
    resume_work = work / f"resume-{plan['paths']}"
    guarded(checks, ["training", "resume"], lambda: check_resume(paths_model, resume_work, kind))
    guarded(
        checks,
        ["parent_adapter_training"],
        lambda: check_parent_adapter_training(paths_model, resume_work / "reference", resume_work, kind),
    )
    guarded(checks, ["oom_split"], lambda: check_oom_split(models[plan["scoring"]], kind))
    guarded(checks, ["mmlu_sized_group"], lambda: check_mmlu_sized_group(paths_model, kind))
    guarded(
        checks,
        ["real_vocabulary"],
        lambda: check_real_vocabulary(build_model(plan["paths"], work, real_vocabulary=True), kind),
    )
    guarded(
        checks,
        ["checkpointing_plan", "mfu"],
        lambda: training_checks(bench_training(models[plan["training"]], bench_out, items["training"]), on_gpu),
    )
    guarded(
        checks,
        ["compute_fraction"],
        lambda: fraction_check(
            "compute_fraction",
            bench_scoring(models[plan["scoring"]], bench_out, items["scoring"]),
            "fraction_of_compute_limit",
            "pair scoring (shared prefixes)",
            on_gpu,
        ),
    )
    guarded(
        checks,
        ["bandwidth_fraction"],
        lambda: fraction_check(
            "bandwidth_fraction",
            bench_generation(paths_model, bench_out, items["generation"]),
            "fraction_of_bandwidth_limit",
            "batched generation",
            on_gpu,
        ),
    )
    seconds = time.perf_counter() - started
    if on_gpu and shape != "tiny":
        duration = Check(
            "duration", passed(seconds < GPU_BUDGET_SECONDS), f"{seconds:.0f} s (budget {GPU_BUDGET_SECONDS} s)"
        )
    else:
        duration = Check("duration", SKIP, f"{seconds:.0f} s (the {GPU_BUDGET_SECONDS} s budget is for the GPU run)")
    print(duration.line(), flush=True)
    checks.append(duration)
    result = {
        "shape": shape,
        "models": plan,
        "device": status.report_lines(),
        "versions": versions(),
        "seconds": round(seconds, 1),
        "passed": not any(c.status == FAIL for c in checks),
        "checks": [asdict(c) for c in checks],
    }
    write_json(out / "acceptance.json", result)
    return result


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m sgtr_em.acceptance",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--shape", default="mixed", choices=list(SHAPE_PLANS))
    parser.add_argument("--out", default="results/gpu_acceptance", type=Path)
    parser.add_argument(
        "--work",
        default=Path(tempfile.gettempdir()) / "sgtr-em-acceptance",
        type=Path,
        help="models and scratch (kept for reruns)",
    )
    # The resume check's training runs in a child process that it can SIGKILL (run_training): not for users.
    parser.add_argument("--train-worker", nargs=5, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.train_worker:
        train_worker(args.train_worker)
        return 0
    if args.shape != "tiny":
        from .gpus import CudaStatus, check_devices

        problem = check_devices(f"gpu acceptance (--shape {args.shape})", 1, CudaStatus.probe())
        if problem is not None:
            print(f"FAIL cuda: {problem} (--shape tiny runs the CPU smoke test)", file=sys.stderr)
            return 2
    result = run(args.shape, args.out, args.work)
    counts = {s: sum(c["status"] == s for c in result["checks"]) for s in (PASS, FAIL, SKIP)}
    print(
        f"gpu acceptance ({args.shape}): {counts[PASS]} passed, {counts[FAIL]} failed, {counts[SKIP]} skipped in {result['seconds']:.0f} s; {args.out / 'acceptance.json'}"
    )
    return 0 if result["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
