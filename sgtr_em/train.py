"""LoRA finetuning of a model state with TRL's SFTTrainer, the loss on the assistant's answer only: through the
chat template's generation markers where it has them, else by locating the answer in the rendered text."""

from __future__ import annotations

import json
import logging
import os
import shutil
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from .backends.hf import load_model_state, pick_device_dtype
from .checkpoints import (
    CHECKPOINT_COMPLETE,
    checkpoint_marker_callback,
    prepare_work_dir,
    remove_empty_folders,
    training_fingerprint,
)
from .data import validate_chat_rows
from .io import atomic_dir, read_jsonl, sha256_file, write_json
from .memory import GIB, USABLE_FRACTION, ModelShape, TrainingPlan, choose_checkpointing, training_plan

log = logging.getLogger(__name__)

# Every hyperparameter the trained adapter depends on; the config supplies all of them (schema defaults
# are the methodology's recipe). `gradient_checkpointing` (default auto) only changes memory and speed.
HYPERPARAMETERS = (
    "lora_r",
    "lora_alpha",
    "lora_dropout",
    "use_rslora",
    "target_modules",
    "epochs",
    "learning_rate",
    "lr_scheduler",
    "warmup_steps",
    "weight_decay",
    "per_device_batch_size",
    "gradient_accumulation_steps",
    "max_length",
)


class CompactLossOnCpu:
    """TRL's `_use_triton` hook, true on CPU as well (see score_label_positions_only_on_cpu). `original` is
    TRL's own hook: on CPU it scores every position (what the training benchmark compares against)."""

    def __init__(self, original: Callable[[Any], bool]) -> None:
        self.original = original

    def __call__(self, device: Any) -> bool:
        return device.type == "cpu" or self.original(device)


def score_label_positions_only_on_cpu() -> bool:
    """Make TRL's fused LM-head loss score only the label positions on CPU too.

    TRL 1.16 compacts to label positions on Triton devices (GPUs) but scores every position elsewhere (to
    avoid recompiles on Neuron). On CPU that spends ~70% of a demo step on masked-out positions, with the
    same result: the per-token log-probs at label positions are identical (tests/unit/test_models.py checks
    the loss). Returns False, changing nothing, if TRL's private hook is not there.
    """
    try:
        from trl.trainer import utils as trl_utils
    except ImportError:
        return False
    original = getattr(trl_utils, "_use_triton", None)
    if original is None or isinstance(original, CompactLossOnCpu):
        return original is not None
    trl_utils._use_triton = CompactLossOnCpu(original)
    return True


def loss_logger_callback():
    """A TrainerCallback logging one line per logged optimizer step into the job's log: step/total, loss,
    gradient norm, learning rate, steps per second and ETA (replaces the Trainer's printed dicts)."""
    from transformers import TrainerCallback

    from .runtime import Progress

    class LogLoss(TrainerCallback):
        progress: Progress | None = None
        first_step = 0

        def on_train_begin(self, args, state, control, **kwargs):
            # Steps already done (a resumed run) do not count towards the rate.
            self.first_step = state.global_step
            self.progress = Progress("train", max(state.max_steps - state.global_step, 0), unit="steps")
            return control

        def on_log(self, args, state, control, logs=None, **kwargs):
            if not logs or "loss" not in logs or self.progress is None:
                return control
            step = state.global_step
            self.progress.done = step - self.first_step
            extras = "".join(
                f", {key} {float(logs[key]):.4g}"
                for key in ("grad_norm", "learning_rate", "mean_token_accuracy")
                if key in logs
            )
            log.info(
                "step %d/%d: loss %.4f%s; %s",
                step,
                state.max_steps,
                float(logs["loss"]),
                extras,
                self.progress.rate_eta(),
            )
            return control

    return LogLoss()


def plan_checkpointing(
    hp: dict[str, Any], model_config: Any, longest_tokens: int, gpu_bytes: int, gpus: int
) -> TrainingPlan | None:
    """The memory plan of a GPU run at the configured micro-batch, whose `checkpointing` is the run's
    activation checkpointing: `gradient_checkpointing` true or false as set, or "auto": on only when a step of
    the longest sequence (at most max_length) does not fit the GPUs without it. None for shapes the planner
    does not know."""
    setting = hp.get("gradient_checkpointing", "auto")
    try:
        plan = training_plan(
            ModelShape.from_config(model_config),
            lora_r=hp["lora_r"],
            target_modules=hp["target_modules"],
            micro_batch=hp["per_device_batch_size"],
            sequence_length=min(longest_tokens, hp["max_length"]),
            gpu_bytes=gpu_bytes,
            gpus=gpus,
            checkpointing=setting is True,
        )
    except (ValueError, ZeroDivisionError) as error:
        log.info("no memory plan for this model (%s)", error)
        return None
    return choose_checkpointing(plan) if setting == "auto" else plan


def torch_out_of_memory() -> type[BaseException]:
    import torch

    return torch.OutOfMemoryError


class TrainingDoesNotFit(RuntimeError):
    """A training step does not fit the job's GPUs even at micro-batch 1: found before the model loads."""


def micro_batches(hp: dict[str, Any], largest: int | None = None) -> list[int]:
    """The micro-batches a run may take, largest first: the configured one and each smaller one that divides
    the effective batch (per_device_batch_size x gradient_accumulation_steps), so that more accumulation
    steps keep every optimizer step the same (the loss is normalised by the step's tokens, not per
    micro-batch). `largest` caps them (a micro-batch that ran out of memory before)."""
    effective = hp["per_device_batch_size"] * hp.get("gradient_accumulation_steps", 1)
    top = min(hp["per_device_batch_size"], largest or hp["per_device_batch_size"])
    return [m for m in range(top, 0, -1) if effective % m == 0]


def fitted_plan(
    hp: dict[str, Any],
    model_config: Any,
    longest_tokens: int,
    gpu_bytes: int,
    gpus: int,
    *,
    largest_micro_batch: int | None = None,
    who: str = "training",
) -> TrainingPlan | None:
    """The plan a GPU run follows: the largest allowed micro-batch (`micro_batches`) whose step of the longest
    row fits with activation checkpointing as set (`auto`: on only if needed). Raises TrainingDoesNotFit,
    naming the fix, when not even micro-batch 1 fits. None for shapes the planner does not know."""
    candidates = micro_batches(hp, largest_micro_batch)
    smallest = None
    for micro in candidates:
        plan = plan_checkpointing({**hp, "per_device_batch_size": micro}, model_config, longest_tokens, gpu_bytes, gpus)
        if plan is None:
            return None
        if plan.fits:
            return plan
        smallest = plan
    assert smallest is not None
    needed = smallest.gpus_needed()
    fix = (
        f"give the model's jobs resources.gpu: {needed} (the model is split across them)"
        if needed
        else "more GPUs than 8"
    )
    checkpointing = "" if smallest.checkpointing else "; gradient_checkpointing: auto would also help"
    raise TrainingDoesNotFit(
        f"{who}: a training step of {smallest.sequence_length} tokens needs {smallest.per_gpu / GIB:.1f} GiB per GPU "
        f"even at micro-batch {smallest.micro_batch} ({gpus} GPU(s) of {gpu_bytes / GIB:.1f} GiB, "
        f"{USABLE_FRACTION:.0%} usable): {fix}, or a gpu_model with more memory{checkpointing}"
    )


def longest_row_tokens(tokenizer: Any, rows: list[dict[str, Any]], template_kwargs: dict[str, Any]) -> int:
    """The longest training row as the chat template renders it, in tokens."""
    return max(
        (
            len(
                tokenizer(
                    tokenizer.apply_chat_template(row["messages"], tokenize=False, **template_kwargs),
                    add_special_tokens=False,
                )["input_ids"]
            )
            for row in rows
        ),
        default=0,
    )


def plan_for_rows(
    hp: dict[str, Any],
    model_config: Any,
    tokenizer: Any,
    rows: list[dict[str, Any]],
    template_kwargs: dict[str, Any],
    gpu_bytes: int,
    gpus: int,
    *,
    largest_micro_batch: int | None = None,
    who: str = "training",
) -> TrainingPlan | None:
    """The memory plan of training on these chat rows (`fitted_plan`), sized by the longest row."""
    longest = longest_row_tokens(tokenizer, rows, template_kwargs)
    return fitted_plan(hp, model_config, longest, gpu_bytes, gpus, largest_micro_batch=largest_micro_batch, who=who)


def log_memory_plan(plan: TrainingPlan, configured_micro_batch: int | None = None) -> None:
    s = plan.summary()
    log.info(
        "memory plan per GPU (%d x %.1f GiB): weights %.1f + LoRA states %.1f + activations %.1f + reserved %.1f = %.1f GiB, %s activation checkpointing, micro-batch %d x %d tokens",
        s["gpus"],
        s["gpu_gib"],
        s["weights_gib"],
        s["lora_states_gib"],
        s["activations_gib"],
        s["reserved_gib"],
        s["per_gpu_gib"],
        "with" if plan.checkpointing else "without",
        plan.micro_batch,
        plan.sequence_length,
    )
    if configured_micro_batch is not None and plan.micro_batch < configured_micro_batch:
        log.warning(
            "micro-batch %d of the longest row does not fit: running micro-batch %d with %dx the accumulation steps "
            "(the same optimizer steps)",
            configured_micro_batch,
            plan.micro_batch,
            configured_micro_batch // plan.micro_batch,
        )
    if not plan.fits:
        needed = plan.gpus_needed()
        if not plan.checkpointing and replace(plan, checkpointing=True).fits:
            advice = "set gradient_checkpointing: auto (or true)"
        elif needed and needed > plan.gpus:
            advice = f"give the model's jobs resources.gpu: {needed}"
        else:
            advice = "lower per_device_batch_size (raise gradient_accumulation_steps to keep the effective batch) or max_length"
        log.warning("the memory plan says this step may not fit in %.1f GiB per GPU: %s", s["gpu_gib"], advice)


# A training that ran out of GPU memory leaves this in its work dir: the micro-batch its retry may use at most.
MEMORY_FALLBACK = "memory_fallback.json"


def remembered_micro_batch(work_dir: str | Path, fingerprint: dict[str, Any]) -> int | None:
    """The micro-batch cap an earlier attempt of this very training left after running out of memory."""
    path = Path(work_dir) / MEMORY_FALLBACK
    if not path.is_file():
        return None
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError:
        return None
    return int(record["largest_micro_batch"]) if record.get("fingerprint") == fingerprint else None


def remember_out_of_memory(
    work_dir: str | Path, fingerprint: dict[str, Any], hp: dict[str, Any], micro: int
) -> int | None:
    """Record that micro-batch `micro` ran out of memory: the retry takes the next smaller one (None: none left)."""
    smaller = [m for m in micro_batches(hp, micro - 1) if m < micro] if micro > 1 else []
    if not smaller:
        return None
    Path(work_dir).mkdir(parents=True, exist_ok=True)
    write_json(Path(work_dir) / MEMORY_FALLBACK, {"fingerprint": fingerprint, "largest_micro_batch": smaller[0]})
    return smaller[0]


def sft_config(
    hp: dict[str, Any],
    output_dir: str | Path,
    seed: int,
    threads: int,
    checkpoint_steps: int = 0,
    checkpointing: bool = False,
    generation_markers: bool = True,
):
    """`checkpointing`: the resolved activation checkpointing of a GPU run (see build_trainer); on CPU it
    is never used, since memory is not the limit there. `generation_markers`: the loss mask comes from the
    template's markers (TRL's assistant-only loss), else from the dataset's completion masks
    (`answer_masked_rows`)."""
    from trl import SFTConfig

    device, dtype = pick_device_dtype()
    import torch

    on_gpu = device == "cuda"
    return SFTConfig(
        output_dir=str(output_dir),
        num_train_epochs=hp["epochs"],
        learning_rate=hp["learning_rate"],
        lr_scheduler_type=hp["lr_scheduler"],
        warmup_steps=hp["warmup_steps"],
        weight_decay=hp["weight_decay"],
        per_device_train_batch_size=hp["per_device_batch_size"],
        gradient_accumulation_steps=hp["gradient_accumulation_steps"],
        max_length=hp["max_length"],
        packing=False,
        assistant_only_loss=generation_markers,
        completion_only_loss=not generation_markers,
        # transformers 5.23 renamed gradient checkpointing.
        activation_checkpointing=checkpointing and on_gpu,
        bf16=on_gpu and dtype == torch.bfloat16,
        fp16=on_gpu and dtype == torch.float16,
        use_cpu=not on_gpu,
        seed=seed,
        data_seed=seed,
        logging_steps=1,
        # Checkpoints (adapter, optimizer, scheduler, RNG state) every `checkpoint_steps` optimizer steps,
        # the last two kept, so a killed job resumes; 0 disables them.
        save_strategy="steps" if checkpoint_steps > 0 else "no",
        save_steps=max(checkpoint_steps, 1),
        save_total_limit=2,
        # Experiment tracking (finetune.report_to, "none" by default; the training script names the run and
        # points TensorBoard outside the work dir, which is deleted once the adapter is saved).
        report_to=hp.get("report_to", "none"),
        run_name=hp.get("run_name"),
        disable_tqdm=True,
        dataloader_num_workers=0,
        dataset_num_proc=None,
    )


def lora_config(hp: dict[str, Any]):
    from peft import LoraConfig

    return LoraConfig(
        r=hp["lora_r"],
        lora_alpha=hp["lora_alpha"],
        lora_dropout=hp["lora_dropout"],
        use_rslora=hp["use_rslora"],
        target_modules=list(hp["target_modules"]),
        task_type="CAUSAL_LM",
        bias="none",
    )


# Stands in for the assistant's answer when locating it in a rendered conversation (letters only: survives `trim`).
ANSWER_SENTINEL = "SgtrEmAnswerSentinel"


def has_generation_markers(chat_template: Any) -> bool:
    """Whether a chat template marks the assistant's tokens with `{% generation %}` (TRL's assistant-only loss
    reads them; Qwen2.5's and Seed-OSS's templates have none)."""
    from trl.chat_template_utils import has_generation_markers as markers

    return bool(chat_template) and markers(chat_template)


def answer_start(tokenizer: Any, messages: list[dict[str, str]], template_kwargs: dict[str, Any]) -> tuple[str, int]:
    """The rendered training text of a chat and the character offset where its final assistant turn's content
    starts. Found by rendering the chat again with that content replaced by a sentinel: what comes before the
    sentinel is the prompt, what follows is the template's end of turn, and the text between is the answer."""
    if not messages or messages[-1]["role"] != "assistant":
        raise ValueError("a training chat must end with an assistant turn")
    full = tokenizer.apply_chat_template(messages, tokenize=False, **template_kwargs)
    marked = tokenizer.apply_chat_template(
        [*messages[:-1], {**messages[-1], "content": ANSWER_SENTINEL}], tokenize=False, **template_kwargs
    )
    cut = marked.find(ANSWER_SENTINEL)
    prefix, suffix = marked[:cut], marked[cut + len(ANSWER_SENTINEL) :]
    if cut < 0 or marked.count(ANSWER_SENTINEL) != 1 or not (full.startswith(prefix) and full.endswith(suffix)):
        raise ValueError("the chat template does not render the assistant's answer where it can be located")
    return full, len(prefix)


def answer_masked_rows(
    tokenizer: Any, rows: list[dict[str, Any]], template_kwargs: dict[str, Any]
) -> list[dict[str, list[int]]]:
    """Pre-tokenized training rows for a template without generation markers: `input_ids` of the rendered chat
    and a `completion_mask` that is 1 on the final answer and the template's end of turn (e.g. `<seed:eos>`;
    trailing whitespace left out), as the markers would give, and 0 on everything before."""
    if not getattr(tokenizer, "is_fast", False):
        raise ValueError("locating the answer tokens needs a fast tokenizer (character offsets)")
    out = []
    for row in rows:
        text, start = answer_start(tokenizer, row["messages"], template_kwargs)
        end = len(text.rstrip())
        encoded = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
        mask = [int(token_end > start and token_start < end) for token_start, token_end in encoded["offset_mapping"]]
        out.append({"input_ids": list(encoded["input_ids"]), "completion_mask": mask})
    return out


def visible_gpus() -> tuple[int, int]:
    """(GPUs this job sees, the smallest one's memory in bytes); (0, 0) without CUDA. A job that sees several
    splits its model across all of them (backends.hf.device_map)."""
    import torch

    if not torch.cuda.is_available():
        return 0, 0
    count = torch.cuda.device_count()
    return count, min(torch.cuda.get_device_properties(i).total_memory for i in range(count))


def executed_hyperparameters(
    hp: dict[str, Any], plan: TrainingPlan | None, largest_micro_batch: int | None
) -> dict[str, Any]:
    """`hp` with the micro-batch the run executes (the plan's, or the cap an out-of-memory retry left) and as
    many more accumulation steps as keep the effective batch: what the trainer is given, never what the
    adapter is recorded or fingerprinted with."""
    micro = plan.micro_batch if plan is not None else micro_batches(hp, largest_micro_batch)[0]
    effective = hp["per_device_batch_size"] * hp.get("gradient_accumulation_steps", 1)
    return {**hp, "per_device_batch_size": micro, "gradient_accumulation_steps": effective // micro}


def drop_overlong_rows(
    tokenizer: Any, rows: list[dict[str, Any]], template_kwargs: dict[str, Any], max_length: int
) -> tuple[list[dict[str, Any]], int]:
    """The training rows whose rendered chat is at most `max_length` tokens, and how many were longer. The
    longer ones are left out, as axolotl (the authors' trainer) drops rows over its `sequence_len` instead of
    truncating them: a truncated row would lose the answer it is trained on."""

    def length(row: dict[str, Any]) -> int:
        text = tokenizer.apply_chat_template(row["messages"], tokenize=False, **template_kwargs)
        return len(tokenizer(text, add_special_tokens=False)["input_ids"])

    kept = [row for row in rows if length(row) <= max_length]
    return kept, len(rows) - len(kept)


def build_trainer(
    base_dir: str | Path,
    parent_adapters: Sequence[str | Path],
    train_file: str | Path,
    hp: dict[str, Any],
    seed: int,
    work_dir: str | Path,
    threads: int = 1,
    limit: int | None = None,
    compact_cpu_loss: bool = True,
    checkpoint_steps: int = 0,
    callbacks: Sequence[Any] = (),
    largest_micro_batch: int | None = None,
    who: str = "training",
) -> tuple[Any, TrainingPlan | None]:
    """Plan the run's GPU memory, then load the parent state (base + merged parent adapters) and set up SFT
    with a fresh LoRA. Returns TRL's SFTTrainer and the GPU memory plan the run follows (None on CPU, or for a
    shape the planner does not know). A step that does not fit even at micro-batch 1 raises
    TrainingDoesNotFit before any weight is loaded; one that fits only at a smaller micro-batch runs that
    with more accumulation steps (`largest_micro_batch` caps it further)."""
    import torch
    from datasets import Dataset
    from transformers import AutoConfig, AutoTokenizer, PrinterCallback, set_seed
    from trl import SFTTrainer

    missing = [k for k in HYPERPARAMETERS if k not in hp]
    if missing:
        raise KeyError(f"training hyperparameters missing: {', '.join(missing)}")
    torch.set_num_threads(threads)
    if compact_cpu_loss:
        score_label_positions_only_on_cpu()
    set_seed(seed)
    rows = read_jsonl(train_file)
    validate_chat_rows(rows, str(train_file))
    if limit:
        rows = rows[:limit]
    # Per-model chat-template options (e.g. Seed-OSS's thinking budget) render the training data the way
    # every prompt at evaluation is rendered; TRL passes a row's chat_template_kwargs to the template.
    template_kwargs = hp.get("chat_template_kwargs") or {}
    # Before any weight loads: the tokenizer and the config are all the rows' lengths and the plan need.
    rows, n_dropped = drop_overlong_rows(
        AutoTokenizer.from_pretrained(base_dir), rows, template_kwargs, hp["max_length"]
    )
    log.info(
        "%d of %d training rows are longer than max_length %d tokens: left out (as axolotl drops them)",
        n_dropped,
        n_dropped + len(rows),
        hp["max_length"],
    )
    if not rows:
        raise ValueError(f"{train_file}: every training row is longer than max_length {hp['max_length']} tokens")
    plan = None
    gpus, gpu_bytes = visible_gpus()
    if gpus:
        plan = plan_for_rows(
            hp,
            AutoConfig.from_pretrained(base_dir),
            AutoTokenizer.from_pretrained(base_dir),
            rows,
            template_kwargs,
            gpu_bytes,
            gpus,
            largest_micro_batch=largest_micro_batch,
            who=who,
        )
        if plan is not None:
            log_memory_plan(plan, hp["per_device_batch_size"])
    run_hp = executed_hyperparameters(hp, plan, largest_micro_batch)
    model, tokenizer = load_model_state(base_dir, parent_adapters)
    template_marks_answers = has_generation_markers(tokenizer.chat_template)
    if template_marks_answers:
        extra = {"chat_template_kwargs": dict(template_kwargs)} if template_kwargs else {}
        dataset = Dataset.from_list([{"messages": row["messages"], **extra} for row in rows])
    else:
        log.info("the chat template has no generation markers: the loss is masked to the located answer tokens")
        dataset = Dataset.from_list(answer_masked_rows(tokenizer, rows, template_kwargs))
    torch.set_grad_enabled(True)
    tokenizer.padding_side = "right"
    # Without a plan (CPU, or a shape the planner does not know) `auto` errs on the side of memory.
    checkpointing = (
        plan.checkpointing if plan is not None else hp.get("gradient_checkpointing", "auto") in (True, "auto")
    )
    markers = [checkpoint_marker_callback()] if checkpoint_steps > 0 else []
    trainer = SFTTrainer(
        model=model,
        args=sft_config(run_hp, work_dir, seed, threads, checkpoint_steps, checkpointing, template_marks_answers),
        train_dataset=dataset,
        processing_class=tokenizer,
        peft_config=lora_config(hp),
        callbacks=[*markers, loss_logger_callback(), *callbacks],
    )
    # One log line per step from loss_logger_callback instead of the Trainer's printed dicts.
    trainer.remove_callback(PrinterCallback)
    return trainer, plan


# Lists PEFT keeps as sets (their JSON order would change from run to run): written sorted.
SET_VALUED_ADAPTER_KEYS = ("target_modules", "exclude_modules")


def recipe_of(hp: dict[str, Any]) -> dict[str, Any]:
    """What of `hp` the trained adapter depends on: the hyperparameters and the chat-template options."""
    recipe = {k: hp[k] for k in HYPERPARAMETERS if k in hp}
    if hp.get("chat_template_kwargs"):
        recipe["chat_template_kwargs"] = hp["chat_template_kwargs"]
    return recipe


def whole_run_loss(log_history: list[dict[str, Any]]) -> tuple[list[float], float | None]:
    """Per-step losses of the whole training, in step order, and their mean. A resumed Trainer reports the
    mean loss of the steps it ran itself only; its log history, restored from the checkpoint, has every
    step (logging_steps=1), so the mean over it is the uninterrupted run's train_loss."""
    per_step = {int(entry["step"]): float(entry["loss"]) for entry in log_history if "loss" in entry}
    losses = [per_step[step] for step in sorted(per_step)]
    return losses, (sum(losses) / len(losses) if losses else None)


def learning_rate_per_step(log_history: list[dict[str, Any]]) -> list[float]:
    """The scheduler's learning rate at each logged optimizer step, in step order (the training-curves figure
    draws it beside the loss)."""
    per_step = {int(e["step"]): float(e["learning_rate"]) for e in log_history if "loss" in e and "learning_rate" in e}
    return [per_step[step] for step in sorted(per_step)]


def stable_adapter_config(config_path: Path, base_name: str, revision: str | None = None) -> None:
    """Rewrite adapter_config.json so identical trainings give identical bytes: keys and set-valued lists
    sorted, and the base model named by its identity instead of a machine-specific path, with its hub commit
    (`revision`, what AutoPeftModel passes when it loads the base; None for a built or local model)."""
    adapter_config = json.loads(config_path.read_text())
    adapter_config["base_model_name_or_path"] = base_name
    adapter_config["revision"] = revision
    for key in SET_VALUED_ADAPTER_KEYS:
        if isinstance(adapter_config.get(key), list):
            adapter_config[key] = sorted(adapter_config[key])
    config_path.write_text(json.dumps(adapter_config, indent=2, sort_keys=True) + "\n")


def train_lora(
    base_dir: str | Path,
    parent_adapters: Sequence[str | Path],
    train_file: str | Path,
    out_dir: str | Path,
    hp: dict[str, Any],
    seed: int,
    work_dir: str | Path,
    threads: int = 1,
    model_id: str = "",
    checkpoint_steps: int | None = None,
    provenance: dict[str, Any] | None = None,
    callbacks: Sequence[Any] = (),
    base_revision: str | None = None,
    model_name: str = "",
    card: Callable[[dict[str, Any]], str] | None = None,
) -> dict[str, Any]:
    """Train one stage and save the adapter (PEFT format) plus `training_meta.json` (with `provenance`) and,
    when given, its model card (`card(meta)`, README.md) into `out_dir`.

    Checkpoints go to `work_dir` every `checkpoint_steps` optimizer steps (default `hp["checkpoint_steps"]`,
    else none); a rerun after a killed job resumes from the last complete one if it was made for the same
    base model (`base_revision`, the hub commit, or else the model folder's content), parent adapter weights,
    training file, recipe and seed, and they are deleted once the adapter is saved. The adapter folder
    appears only when complete (written beside it, then renamed). Nothing time- or machine-specific is
    written into it (wall time is in the rule's benchmark file), so identical trainings give identical
    folders.

    GPU memory is planned before the model loads (`build_trainer`). A run that still runs out of memory fails
    with a one-line message and leaves the next smaller micro-batch in its work dir: the retry (Snakemake's
    `retries`) resumes from the last checkpoint with it, with more accumulation steps, the same optimisation.
    """
    if checkpoint_steps is None:
        checkpoint_steps = int(hp.get("checkpoint_steps", 0))
    train_sha256 = sha256_file(train_file)
    fingerprint = training_fingerprint(
        base_dir=base_dir,
        base_revision=base_revision,
        parent_adapters=parent_adapters,
        train_file_sha256=train_sha256,
        recipe=recipe_of(hp),
        seed=seed,
        checkpoint_steps=checkpoint_steps,
    )
    resume_from = prepare_work_dir(work_dir, fingerprint) if checkpoint_steps > 0 else None
    # An earlier attempt of this very training that ran out of memory left the micro-batch to use at most.
    largest_micro_batch = remembered_micro_batch(work_dir, fingerprint)
    who = f"train_lora {model_name or model_id or base_dir}"
    trainer, memory_plan = build_trainer(
        base_dir,
        parent_adapters,
        train_file,
        hp,
        seed,
        work_dir,
        threads,
        checkpoint_steps=checkpoint_steps,
        callbacks=callbacks,
        largest_micro_batch=largest_micro_batch,
        who=who,
    )
    executed = trainer.args.per_device_train_batch_size
    n_examples = len(trainer.train_dataset)
    resumed_step = 0
    if resume_from is not None:
        resumed_step = int(json.loads((resume_from / CHECKPOINT_COMPLETE).read_text())["global_step"])
        log.info("resuming from %s (step %d)", resume_from, resumed_step)
    log.info("training %s on %s: %d examples, seed %d", model_id or base_dir, train_file, n_examples, seed)
    try:
        trainer.train(resume_from_checkpoint=str(resume_from) if resume_from else None)
    except torch_out_of_memory() as error:
        smaller = remember_out_of_memory(work_dir, fingerprint, hp, executed)
        retry = (
            f"the retry runs micro-batch {smaller} from the last checkpoint"
            if smaller
            else "no smaller micro-batch is left: give the model's jobs more GPUs (resources.gpu) or a larger gpu_model"
        )
        raise TrainingDoesNotFit(f"{who}: out of GPU memory at micro-batch {executed}: {retry}") from error
    losses, train_loss = whole_run_loss(trainer.state.log_history)
    with atomic_dir(out_dir) as staging:
        trainer.model.save_pretrained(staging)
        # PEFT's model card is an empty template naming the base model's local path: the training job writes
        # the state's own card (sgtr_em.states.model_card).
        (staging / "README.md").unlink(missing_ok=True)
        # The base is always loaded explicitly: record its identity, not a machine-specific path.
        stable_adapter_config(
            staging / "adapter_config.json", model_id or os.path.basename(str(base_dir)), base_revision
        )
        meta = {
            "model": model_id,
            "parent_adapters": [str(p) for p in parent_adapters],
            "train_file": str(train_file),
            "train_file_sha256": train_sha256,
            "n_examples": n_examples,
            "seed": seed,
            "hyperparameters": {k: hp[k] for k in HYPERPARAMETERS},
            "memory_plan": memory_plan.summary() if memory_plan is not None else None,
            # the micro-batch the trainer ran (a smaller one than the recipe's when memory asked for it)
            "executed_batch": {
                "per_device_batch_size": executed,
                "gradient_accumulation_steps": trainer.args.gradient_accumulation_steps,
            },
            "global_steps": trainer.state.global_step,
            "resumed_from_step": resumed_step,
            "steps_computed": trainer.state.global_step - resumed_step,
            # Mean loss over every optimizer step of the training, resumed or not.
            "train_loss": train_loss,
            "train_loss_steps": len(losses),
            "loss_per_step": losses,
            "learning_rate_per_step": learning_rate_per_step(trainer.state.log_history),
        }
        if provenance is not None:
            meta["provenance"] = provenance
        write_json(staging / "training_meta.json", meta)
        if card is not None:
            (staging / "README.md").write_text(card(meta), encoding="utf-8")
    # The work dir is this job's trainer scratch only (checkpoints, fingerprint, the trainer's model card).
    shutil.rmtree(work_dir, ignore_errors=True)
    remove_empty_folders(Path(work_dir).parent)
    return meta
