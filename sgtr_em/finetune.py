"""Fine-tuning dispatch: one stage of a chain becomes a LoRA adapter (a local model) or an OpenAI
fine-tuning job (a model behind the API), so the training script is the same for every kind of model."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from .backends import local_model_dir, model_kind
from .runtime import model_identity


def train_stage(
    *,
    source: dict,
    model_dir: str | Path | list,
    parents: list,
    train_file: str,
    out_dir: str,
    hp: dict,
    seed: int,
    work_dir: str,
    threads: int,
    model_id: str,
    model: str,
    chain: str,
    rule: str,
    api_config: dict | None = None,
    provenance: dict | None = None,
    card: Callable[[dict], str] | None = None,
) -> dict:
    """Train one stage of a chain: a LoRA adapter (hf) or an OpenAI fine-tuning job (openai) whose
    `openai_model.json` lands in `out_dir`. `work_dir` (outside the output) keeps what must survive a
    failed or killed job: trainer scratch, or the fine-tuning job's state file. `provenance` goes into the
    stage's record and `card(record)` (a LoRA adapter's model card) beside it, written with the output, so the
    output appears complete or not at all. `hp`: the stage's tracked and untracked settings
    (`grid.training_settings`). `rule` (the job's, which differs by model kind) names the job in messages."""
    who = f"{rule} {model}/{chain}/seed{seed}"
    if model_kind(source) == "openai":
        from .backends.openai_api import ApiSettings
        from .backends.openai_state import parent_model_id
        from .openai_ft import FineTuneSettings, fine_tune, job_suffix

        api_config = api_config or {}
        ft = FineTuneSettings.from_config(hp)
        return fine_tune(
            base_model=parent_model_id(source["openai"], list(parents)),
            train_file=train_file,
            out_dir=out_dir,
            state_dir=work_dir,
            seed=seed,
            suffix=job_suffix(chain, seed),
            settings=ApiSettings.from_config(api_config),
            ft=ft,
            who=who,
            provenance=provenance,
        )
    from .train import train_lora

    return train_lora(
        local_model_dir(model_dir, who),
        parents,
        train_file,
        out_dir,
        hp,
        seed=seed,
        work_dir=work_dir,
        threads=threads,
        model_id=model_id,
        # A hub model's commit identifies it (a built or local model is identified by its files' content).
        base_revision=model_identity(model, source, model_dir)["revision"] if "hf" in source else None,
        model_name=f"{model}/{chain}/seed{seed}",
        provenance=provenance,
        card=card,
    )


def tracking_settings(report_to: str | list[str], run_name: str, tracking_dir: str | Path) -> dict:
    """What a LoRA training adds to its hyperparameters for experiment tracking (finetune.report_to): the
    trackers and the run's name. Stops, naming the key, when a tracker's package is not installed (before the
    model loads, not after), and points TensorBoard at `tracking_dir` unless TENSORBOARD_LOGGING_DIR is set."""
    import os

    trackers = [report_to] if isinstance(report_to, str) else list(report_to)
    trackers = [t for t in trackers if t != "none"]
    if not trackers:
        return {"report_to": "none"}
    from transformers.integrations import get_available_reporting_integrations

    available = set(get_available_reporting_integrations())
    missing = [t for t in trackers if t not in available]
    if missing:
        raise ValueError(
            f"config key finetune.report_to: {', '.join(missing)} is not installed in this environment "
            f"(installed trackers: {', '.join(sorted(available)) or 'none'}); install it or set report_to: none"
        )
    if "tensorboard" in trackers:
        os.environ.setdefault("TENSORBOARD_LOGGING_DIR", str(tracking_dir))
    return {"report_to": trackers, "run_name": run_name}
