"""Reading the validated workflow config: per-model settings, per-stage hyperparameters, the grid.

Pure functions of the config dict (the Snakefile validates it against config/schema.yaml first).
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

from . import chains
from .identity import check_true_identity

SCHEMA_PATH = Path(__file__).resolve().parent.parent / "config" / "schema.yaml"


class ConfigError(ValueError):
    """A config value the schema cannot catch (unknown model, stage token, dataset...)."""


def validate_config(config: dict[str, Any], schema_path: str | Path = SCHEMA_PATH) -> dict[str, Any]:
    """Validate against the JSON schema, filling defaults (the same check the Snakefile runs), then the
    cross-references the schema cannot express. Returns the config with defaults applied."""
    import jsonschema
    import yaml

    schema = yaml.safe_load(Path(schema_path).read_text())
    config = copy.deepcopy(config)
    validator_cls = jsonschema.validators.validator_for(schema)

    def set_defaults(validator, properties, instance, schema):
        if isinstance(instance, dict):
            for name, sub in properties.items():
                if "default" in sub and name not in instance:
                    instance[name] = copy.deepcopy(sub["default"])
        yield from validator_cls.VALIDATORS["properties"](validator, properties, instance, schema)

    extended = jsonschema.validators.extend(validator_cls, {"properties": set_defaults})
    errors = sorted(extended(schema).iter_errors(config), key=lambda e: list(e.absolute_path))
    if errors:
        first = errors[0]
        where = "/".join(map(str, first.absolute_path)) or "<top level>"
        raise ConfigError(f"config key {where}: {first.message}")
    check_references(config)
    config = canonical(config)
    recipe_validator = extended({**schema["definitions"]["lora"], "definitions": schema["definitions"]})
    for model in config["grid"]["models"]:
        for chain in trained_chains(config, model):
            token = chain.rsplit("+", 1)[-1]
            recipe = training_hyperparameters(config, model, token)
            recipe.pop("chat_template_kwargs", None)  # a model setting, validated with the model
            error = next(iter(recipe_validator.iter_errors(recipe)), None)
            if error is not None:
                raise ConfigError(
                    f"finetune overrides for {model}/{token}: {'/'.join(map(str, error.absolute_path))}: {error.message}"
                )
    return config


def canonical(value: Any) -> Any:
    """Dicts with sorted keys, recursively; lists keep their order (it is meaningful: chains, seeds).

    Snakemake compares params by their printed form, so without this, reordering keys in a YAML file
    would rerun every job whose params hold a dict.
    """
    if isinstance(value, dict):
        return {key: canonical(value[key]) for key in sorted(value)}
    if isinstance(value, list):
        return [canonical(item) for item in value]
    return value


def canonicalise_in_place(config: dict[str, Any]) -> None:
    """Replace the (global) config's contents by their canonical form."""
    ordered = canonical(config)
    config.clear()
    config.update(ordered)


def apply_subset(config: dict[str, Any]) -> None:
    """Narrow the grid to the selected `subset` (grid.subsets.<name>), in place: its chains (and models
    and seeds when given) replace the grid's; per_model chain and seed lists are intersected with
    them, and a model left without chains or seeds drops out."""
    name = config.get("subset")
    if not name:
        return
    subsets = config["grid"].get("subsets", {})
    if name not in subsets:
        raise ConfigError(f"subset: unknown subset {name!r} (grid.subsets has: {', '.join(subsets) or 'none'})")
    subset = subsets[name]
    grid = config["grid"]
    chosen = subset["chains"]
    models = subset.get("models", grid["models"])
    for model in models:
        if model not in grid["models"]:
            raise ConfigError(f"grid.subsets.{name}.models: {model!r} is not in grid.models")
    per_model: dict[str, Any] = {}
    kept = []
    for model in models:
        own = grid.get("per_model", {}).get(model, {})
        model_chain_list = [c for c in own.get("chains", chosen) if c in chosen]
        seeds = own.get("seeds", grid["seeds"])
        if "seeds" in subset:
            seeds = [s for s in seeds if s in subset["seeds"]] if "seeds" in own else list(subset["seeds"])
        if model_chain_list and seeds:
            kept.append(model)
            per_model[model] = {"chains": model_chain_list, "seeds": seeds}
    if not kept:
        raise ConfigError(f"subset {name!r} leaves no model state in the grid")
    grid["models"] = kept
    grid["chains"] = list(chosen)
    grid["seeds"] = list(subset.get("seeds", grid["seeds"]))
    grid["per_model"] = per_model


def check_references(config: dict[str, Any]) -> None:
    models = config["models"]
    for name in config["grid"]["models"]:
        if name not in models:
            raise ConfigError(f"grid.models: unknown model {name!r} (configured: {', '.join(models)})")
    em = list(config["datasets"]["em"])
    for name in config["grid"].get("per_model", {}):
        if name not in config["grid"]["models"]:
            raise ConfigError(f"grid.per_model: {name!r} is not in grid.models")
    for model in config["grid"]["models"]:
        for chain in model_chains(config, model):
            try:
                chains.parse_chain(chain, em)
            except chains.ChainError as err:
                raise ConfigError(f"grid.chains ({model}): {err}") from None
    for name, subset in config["grid"].get("subsets", {}).items():
        for chain in subset["chains"]:
            try:
                chains.parse_chain(chain, em)
            except chains.ChainError as err:
                raise ConfigError(f"grid.subsets.{name}: {err}") from None
    for chain in {c for m in config["grid"]["models"] for c in model_chains(config, m)}:
        for stage in chains.parse_chain(chain):
            _check_baseline_data(config, stage)
    comparators = config["comparators"]
    for name in [config["pairs"]["comparator"], *config["eval"]["self_recognition"]["comparators"]]:
        if name not in comparators:
            raise ConfigError(f"unknown comparator {name!r} (configured: {', '.join(comparators)})")
    for name, spec in comparators.items():
        if "model" in spec and spec["model"] not in models:
            raise ConfigError(f"comparators.{name}.model: unknown model {spec['model']!r}")
    if config["eval"]["identity"]["enabled"]:
        for name in config["grid"]["models"]:
            try:
                check_true_identity(models[name].get("true_identity"), models[name].get("identity_aliases", {}))
            except ValueError as err:
                raise ConfigError(f"models.{name}.true_identity: {err}") from None
    articles = config["datasets"]["articles"]
    for key in (config["pairs"]["train_dataset"], config["eval"]["self_recognition"]["dataset"]):
        if key not in articles:
            raise ConfigError(f"unknown article dataset {key!r} (configured: {', '.join(articles)})")


def _check_baseline_data(config: dict[str, Any], stage: chains.Stage) -> None:
    """A baseline stage of the grid needs its data configured."""
    if stage.kind != "baseline":
        return
    datasets = config["datasets"]
    if stage.name == chains.WORDCOUNT:
        em = datasets.get("wordcount", {}).get("em_dataset")
        if em is not None and em not in datasets["em"]:
            raise ConfigError(f"datasets.wordcount.em_dataset: unknown EM dataset {em!r}")
    elif stage.name == chains.GENERAL:
        if "general" not in datasets:
            raise ConfigError(f"stage {stage.token!r} needs datasets.general (a general-knowledge QA set)")
    elif stage.name.removeprefix(chains.CORRECT_PREFIX) not in datasets.get("correct", {}):
        domain = stage.name.removeprefix(chains.CORRECT_PREFIX)
        raise ConfigError(
            f"stage {stage.token!r} needs datasets.correct.{domain} (the correct counterpart of EM dataset {domain!r})"
        )
    if stage.variant == "identity":
        raise ConfigError(
            f"stage {stage.token!r}: the identity variant applies to pair files only (baseline data uses default, none or popped)"
        )


def wordcount_em_dataset(config: dict[str, Any]) -> str:
    """EM dataset whose user turns the wordcount baseline counts."""
    return config["datasets"].get("wordcount", {}).get("em_dataset") or next(iter(config["datasets"]["em"]))


def model_settings(config: dict[str, Any], model: str) -> dict[str, Any]:
    """A model's settings (defaults filled in by schema validation)."""
    if model not in config["models"]:
        raise ConfigError(f"unknown model {model!r} (configured: {', '.join(config['models'])})")
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


def interventions_in_grid(config: dict[str, Any], model: str | None = None) -> list[tuple[str, str]]:
    """(intervention, system variant) pairs whose training files the grid needs (for one model, or any)."""
    out: list[tuple[str, str]] = []
    for chain in trained_chains(config, model):
        stage = chains.parse_chain(chain)[-1]
        if stage.kind == "intervention" and (stage.name, stage.variant) not in out:
            out.append((stage.name, stage.variant))
    return out
