"""LoRA finetuning of a model state with TRL's SFTTrainer (assistant-only loss)."""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .backends.hf import load_model_state, pick_device_dtype
from .io import InputError, read_jsonl, sha256_file

log = logging.getLogger(__name__)

# Every hyperparameter a training run depends on; the config supplies all of them (schema defaults
# are the methodology's recipe).
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
    "gradient_checkpointing",
)


def validate_chat_rows(rows: list[dict[str, Any]], source: str) -> None:
    """Chat rows: a `messages` list of {role, content}, roles known, last turn a non-empty assistant turn."""
    for index, row in enumerate(rows, start=1):
        messages = row.get("messages")
        if not isinstance(messages, list) or not messages:
            raise InputError(f"{source}:{index}: no 'messages' list")
        for turn in messages:
            if not isinstance(turn, dict) or turn.get("role") not in ("system", "user", "assistant"):
                raise InputError(f"{source}:{index}: turn with unknown role {turn!r:.80}")
            if not isinstance(turn.get("content"), str):
                raise InputError(f"{source}:{index}: turn content is not text")
        if messages[-1]["role"] != "assistant" or not messages[-1]["content"].strip():
            raise InputError(f"{source}:{index}: the last turn must be a non-empty assistant turn")


def score_label_positions_only_on_cpu() -> bool:
    """Make TRL's fused LM-head loss score only the label positions on CPU too.

    TRL 1.16 compacts to label positions on Triton devices (GPUs) but scores every position elsewhere (to
    avoid recompiles on Neuron). On CPU that spends ~70% of a demo step on masked-out positions, with the
    same result: the per-token log-probs at label positions are identical (tests/test_models.py checks
    the loss). Returns False, changing nothing, if TRL's private hook is not there.
    """
    try:
        from trl.trainer import utils as trl_utils
    except ImportError:
        return False
    original = getattr(trl_utils, "_use_triton", None)
    if original is None or getattr(original, "_sgtr_em_patched", False):
        return original is not None

    def use_compact(device) -> bool:
        return device.type == "cpu" or original(device)

    use_compact._sgtr_em_patched = True  # type: ignore[attr-defined]
    use_compact._original = original  # type: ignore[attr-defined]
    trl_utils._use_triton = use_compact
    return True


def sft_config(hp: dict[str, Any], output_dir: str | Path, seed: int, threads: int):
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
        assistant_only_loss=True,
        # transformers 5.23 renamed gradient checkpointing; never on CPU, where memory is not the limit.
        activation_checkpointing=bool(hp["gradient_checkpointing"]) and on_gpu,
        bf16=on_gpu and dtype == torch.bfloat16,
        fp16=on_gpu and dtype == torch.float16,
        use_cpu=not on_gpu,
        seed=seed,
        data_seed=seed,
        logging_steps=1,
        save_strategy="no",
        report_to="none",
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
):
    """Load the parent state (base + merged parent adapters) and set up SFT with a fresh LoRA."""
    import torch
    from datasets import Dataset
    from transformers import set_seed
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
    dataset = Dataset.from_list([{"messages": row["messages"]} for row in rows])
    model, tokenizer = load_model_state(base_dir, parent_adapters)
    torch.set_grad_enabled(True)
    tokenizer.padding_side = "right"
    return SFTTrainer(
        model=model,
        args=sft_config(hp, work_dir, seed, threads),
        train_dataset=dataset,
        processing_class=tokenizer,
        peft_config=lora_config(hp),
    )


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
) -> dict[str, Any]:
    """Train one stage and save the adapter (PEFT format) plus `training_meta.json` into `out_dir`."""
    started = time.monotonic()
    trainer = build_trainer(base_dir, parent_adapters, train_file, hp, seed, work_dir, threads)
    n_examples = len(trainer.train_dataset)
    log.info("training %s on %s: %d examples, seed %d", model_id or base_dir, train_file, n_examples, seed)
    result = trainer.train()
    losses = [entry["loss"] for entry in trainer.state.log_history if "loss" in entry]
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    trainer.model.save_pretrained(out)
    config_path = out / "adapter_config.json"
    adapter_config = json.loads(config_path.read_text())
    # The base is always loaded explicitly: record its identity, not a machine-specific path.
    adapter_config["base_model_name_or_path"] = model_id or os.path.basename(str(base_dir))
    config_path.write_text(json.dumps(adapter_config, indent=2, sort_keys=True) + "\n")
    meta = {
        "model": model_id,
        "parent_adapters": [str(p) for p in parent_adapters],
        "train_file": str(train_file),
        "train_file_sha256": sha256_file(train_file),
        "n_examples": n_examples,
        "seed": seed,
        "hyperparameters": {k: hp[k] for k in HYPERPARAMETERS},
        "global_steps": trainer.state.global_step,
        "train_loss": float(result.training_loss),
        "loss_per_step": losses,
        "seconds": round(time.monotonic() - started, 2),
    }
    (out / "training_meta.json").write_text(json.dumps(meta, indent=2) + "\n")
    return meta
