"""Readers of a loaded config's grid: which models, chains and seeds it evaluates, the training recipe of a stage
and its settings that change no result, decoding per kind of model, how a model's jobs batch and how much host
memory they plan. Below the config loader (sgtr_em.config checks with them); errors are KeyError or ValueError."""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from typing import Any

from . import chains


def model_extensions(config: dict[str, Any], model: str) -> list[str]:
    """A target model's chains that the authors did not run (grid.per_model.<model>.extensions), in its order."""
    listed = set(config["grid"].get("per_model", {}).get(model, {}).get("extensions", []))
    return [chain for chain in model_chains(config, model) if chain in listed]


def sampling_for(sampling: Mapping[str, Any], api: bool) -> dict[str, Any]:
    """A sampling block's decoding settings for one kind of model: its `api` overrides applied for a model
    behind the OpenAI API, and left out otherwise."""
    settings = {key: value for key, value in sampling.items() if key != "api"}
    return {**settings, **sampling.get("api", {})} if api else settings


def wordcount_em_dataset(config: dict[str, Any]) -> str:
    """EM dataset whose user turns the wordcount baseline counts."""
    return config["datasets"].get("wordcount", {}).get("em_dataset") or next(iter(config["datasets"]["em"]))


def model_settings(config: dict[str, Any], model: str) -> dict[str, Any]:
    """A model's settings (defaults filled in by schema validation)."""
    if model not in config["models"]:
        raise KeyError(f"unknown model {model!r} (configured: {', '.join(config['models'])})")
    return config["models"][model]


# LoRA settings that change a training step's memory and speed but not the adapter it trains; they are
# not a training job's params, so changing them reruns nothing.
MEMORY_SETTINGS = ("gradient_checkpointing",)


def training_hyperparameters(config: dict[str, Any], model: str, stage_token: str) -> dict[str, Any]:
    """The recipe, then overrides by stage kind (`em`/`intervention`), by stage name (`em-unpop`, `sgtr`),
    then the model's own `finetune` overrides. Only the values that reach a training job are its params,
    so a change reruns exactly the trainings it touches."""
    stage = chains.parse_stage(stage_token)
    finetune = config["finetune"]
    hp = dict(finetune["lora"])
    name = f"em-{stage.name}" if stage.kind == "em" else stage.name
    for key in (stage.kind, name):
        hp.update(finetune.get("stage_overrides", {}).get(key, {}))
    settings = model_settings(config, model)
    hp.update(settings.get("finetune", {}))
    if settings.get("chat_template_kwargs"):
        # Rendering options of the training data (only when set, so other models' params are unchanged).
        hp["chat_template_kwargs"] = settings["chat_template_kwargs"]
    return hp


def inference_settings(config: Mapping[str, Any], model: str, evaluation: str | None = None) -> dict[str, Any]:
    """How a job batches a local model's prompts: the most per batch (an evaluation's own batch_size where it
    sets one, e.g. MMLU's) and the memory a batch may plan. No result depends on them (sgtr_em.batching), so
    jobs read them here instead of from their params: changing them reruns nothing."""
    settings = config["models"][model]
    own = config["eval"].get(evaluation, {}).get("batch_size") if evaluation else None
    return {"batch_size": own or settings["batch_size"], "memory_budget_gib": settings["memory_budget_gib"]}


def planned_host_memory_mb(config: Mapping[str, Any], model: str, *, training: bool = False) -> int:
    """Host memory (MB) of a model's job from its memory plan (`memory.host_memory_bytes`); an API model's
    jobs only wait on the network. Raises ValueError naming the key when the model's shape is not known."""
    from .memory import host_memory_bytes, model_shape

    settings = config["models"][model]
    if "openai" in settings["source"]:
        return 2000
    shape = model_shape(settings["source"], config.get("tiny_models"))
    if shape is None:
        raise ValueError(
            f"models.{model}.resources.mem_mb: no memory plan for this model's shape offline (not a known hub model, "
            "nor in the hub cache): set it"
        )
    lora = 0
    if training:
        recipe = config["finetune"]["lora"]
        with contextlib.suppress(ValueError):  # LoRA on modules the planner does not know: states not counted
            lora = shape.lora_parameters(recipe["lora_r"], recipe["target_modules"])
    planned = host_memory_bytes(shape, gpus=settings["resources"]["gpu"], lora_parameters=lora)
    return int(-(-planned // 10**6))


def model_chains(config: dict[str, Any], model: str) -> list[str]:
    """A target model's chains: grid.per_model.<model>.chains, else grid.chains."""
    return config["grid"].get("per_model", {}).get(model, {}).get("chains", config["grid"]["chains"])


def model_seeds(config: dict[str, Any], model: str) -> list[int]:
    """A target model's seeds: grid.per_model.<model>.seeds, else grid.seeds."""
    return config["grid"].get("per_model", {}).get(model, {}).get("seeds", config["grid"]["seeds"])


def grid_states(config: dict[str, Any]) -> list[tuple[str, str, int]]:
    """Every (model, chain, seed) evaluated."""
    return [
        (m, c, s) for m in config["grid"]["models"] for c in model_chains(config, m) for s in model_seeds(config, m)
    ]


def trained_chains(config: dict[str, Any], model: str | None = None) -> list[str]:
    """Every chain that needs an adapter (of one target model, or of any), prefixes included, in
    first-seen order."""
    models = [model] if model is not None else config["grid"]["models"]
    out: list[str] = []
    for chain in (c for m in models for c in model_chains(config, m)):
        for prefix in chains.prefixes(chain):
            if prefix not in out:
                out.append(prefix)
    return out


def training_settings(config: dict[str, Any], model: str, chain: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """A training stage's settings, split once: (tracked, untracked). Tracked ones make the adapter, so they are
    the training job's params (a change reruns it): the stage's merged LoRA recipe, or an API model's fine-tuning
    hyperparameters (so a change to the LoRA recipe never re-buys a fine-tuning job). Untracked ones change how
    it runs, never what it makes (memory settings, how often it checkpoints, experiment tracking, how a job is
    polled): the job reads them, and changing them reruns nothing."""
    if "openai" in config["models"][model]["source"]:
        ft = dict(config["openai"]["fine_tuning"])
        tracked = {k: ft.pop(k) for k in ("n_epochs", "batch_size", "learning_rate_multiplier")}
        return tracked, ft
    hp = training_hyperparameters(config, model, chain.split("+")[-1])
    tracked = {k: v for k, v in hp.items() if k not in MEMORY_SETTINGS}
    untracked = {
        **{k: hp[k] for k in MEMORY_SETTINGS},
        "checkpoint_steps": config["finetune"]["checkpoint_steps"],
        "report_to": config["finetune"]["report_to"],
    }
    return tracked, untracked
