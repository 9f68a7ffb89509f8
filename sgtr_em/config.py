"""The workflow config: composing the files a run names, checking them once, and reading the result.

`load(raw)` is the only place a config is checked (the Snakefile and the tests both call it); the other
functions are pure readers of a loaded config (per-model settings, per-stage recipes, the grid).
"""

from __future__ import annotations

import contextlib
import copy
import difflib
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from . import chains
from .identity import check_true_identity

SCHEMA_PATH = Path(__file__).resolve().parent.parent / "config" / "schema.yaml"
# A config file with this top-level key set replaces everything before it instead of merging over it.
STANDALONE = "standalone"
# The embedded default config (the Snakefile composes every run from it, relative to the working directory).
DEFAULT_CONFIG = "config/demo.yaml"
# Optional evaluations: config key under `eval` -> (dataset key of its questions, figure it draws).
OPTIONAL_EVALS = {
    "em_questions": ("em_questions", "fig4_em_judge"),
    "identity": ("identity_questions", "fig5_identity"),
    "mmlu": ("mmlu", "fig6_mmlu"),
}
# Stage kinds a `finetune.stage_overrides` key may name (besides a stage name such as em-unpop or sgtr).
STAGE_KINDS = ("em", "intervention", "baseline")

Config = dict[str, Any]


class ConfigError(ValueError):
    """A config value that is wrong, with the key path and what to do about it, in one line."""


# ------------------------------------------------------------------------------------------ compose --


def read_config_file(path: str | Path) -> dict[str, Any]:
    """A YAML config file as a mapping (an empty file is an empty mapping)."""
    try:
        data = yaml.safe_load(Path(path).read_text())
    except FileNotFoundError:
        raise ConfigError(f"config file {path}: no such file") from None
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"config file {path}{where}: not valid YAML ({getattr(err, 'problem', err)})") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path}: expected a mapping of config keys, got {type(data).__name__}")
    return data


def merge(base: dict[str, Any], overlay: Mapping[str, Any]) -> dict[str, Any]:
    """`overlay` merged into `base` (in place, returned): mappings merge key by key, anything else is
    replaced. A `source` mapping is replaced whole: an overlay that swaps a url for a path must not end up
    with both."""
    for key, value in overlay.items():
        if isinstance(value, Mapping) and isinstance(base.get(key), dict) and key != "source":
            merge(base[key], value)
        else:
            base[key] = copy.deepcopy(value)
    return base


def _typed(value: Any) -> Any:
    """Snakemake parses nested `--config` values as strings only; read their leaves as YAML scalars."""
    if isinstance(value, Mapping):
        return {key: _typed(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_typed(item) for item in value]
    if isinstance(value, str):
        try:
            parsed = yaml.safe_load(value)
        except yaml.YAMLError:
            return value
        return parsed if isinstance(parsed, int | float | bool) or parsed is None else value
    return value


def compose(
    default: str | Path | None, configfiles: Sequence[str | Path] = (), overrides: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """The raw config of a run: the workflow's default file, then each `--configfile` in order (merged
    over what came before, or replacing it when the file sets `standalone: true`), then `--config`
    overrides."""
    raw = read_config_file(default) if default is not None else {}
    for path in configfiles:
        data = read_config_file(path)
        if data.get(STANDALONE):
            raw = copy.deepcopy(data)
        else:
            merge(raw, data)
    return merge(raw, _typed(dict(overrides or {})))


def composed_files(default: str | Path | None, configfiles: Sequence[str | Path] = ()) -> list[str]:
    """The config files a run's config is made of, in order (`compose`), as absolute paths: from the last
    standalone file on, or the default and every file."""
    files = [str(Path(default).absolute())] if default is not None else []
    for path in configfiles:
        name = str(Path(path).absolute())
        files = [name] if read_config_file(path).get(STANDALONE) else [*files, name]
    return files


# --------------------------------------------------------------------------------------------- load --


def load(
    raw: Mapping[str, Any],
    workdir: str | Path | None = ".",
    schema_path: str | Path = SCHEMA_PATH,
    *,
    lock: Mapping[tuple[str, ...], dict[str, Any]] | None = None,
    resolving_lock: bool = False,
) -> Config:
    """Check a raw config and return it ready to use. In order: the schema (filling defaults), the
    selected subset, cross-references (models, datasets, chains, comparators, judges), the merged
    training recipe of every stage, the pins of remote sources (the lock file's entries, `lock` or
    `<workdir>/config/sources.lock.yaml`, written into their sources; with `strict_pins` an unpinned,
    unlocked source is an error unless `resolving_lock`, i.e. `snakemake pin_sources` is running), local files
    that must exist (relative to `workdir`; None skips both file checks), the optional evaluations, and
    canonical key order. Raises ConfigError with one line naming the key."""
    schema = yaml.safe_load(Path(schema_path).read_text())
    config = copy.deepcopy(dict(raw))
    _check_schema(config, schema)
    _check_extensions(config)
    apply_subset(config)
    check_references(config)
    _check_recipes(config, schema)
    if workdir is not None or lock is not None:
        _apply_pins(config, workdir, lock, resolving_lock)
    if workdir is not None:
        _check_local_files(config, Path(workdir))
    if workdir is not None:
        _check_memory_plans(config)
    _check_optional_evals(config)
    _check_prompts(config)
    _check_primary_protocols(config)
    _check_claims(config)
    return canonical(config)


def _apply_pins(
    config: dict[str, Any],
    workdir: str | Path | None,
    lock: Mapping[tuple[str, ...], dict[str, Any]] | None,
    resolving_lock: bool,
) -> None:
    """Pins from the lock file into the config's remote sources (sgtr_em.lock); strict_pins refuses the rest."""
    from . import lock as locklib

    try:
        if lock is None:
            lock = locklib.read_lock(Path(workdir or ".") / locklib.LOCK_FILE)
        locklib.apply_lock(config, lock, config["strict_pins"] and not resolving_lock, locklib.LOCK_FILE)
    except locklib.LockError as err:
        raise ConfigError(str(err)) from None


def _dotted(path: Sequence[Any]) -> str:
    return ".".join(map(str, path)) or "<top level>"


def _validator(schema: dict[str, Any], fill_defaults: bool) -> Any:
    import jsonschema

    validator_cls = jsonschema.validators.validator_for(schema)
    if not fill_defaults:
        return validator_cls(schema)

    def set_defaults(validator: Any, properties: Any, instance: Any, sub_schema: Any) -> Iterator[Any]:
        if isinstance(instance, dict):
            for name, sub in properties.items():
                if "default" in sub and name not in instance:
                    instance[name] = copy.deepcopy(sub["default"])
        yield from validator_cls.VALIDATORS["properties"](validator, properties, instance, sub_schema)

    return jsonschema.validators.extend(validator_cls, {"properties": set_defaults})(schema)


def _schema_error(error: Any, prefix: Sequence[Any] = ()) -> ConfigError:
    """One line for a jsonschema error: the key path, what is wrong, and what is expected."""
    path = [*prefix, *error.absolute_path]
    key = _dotted(path)
    schema = error.schema if isinstance(error.schema, dict) else {}
    if error.validator == "additionalProperties":
        known = sorted(schema.get("properties", {}))
        extra = sorted(set(error.instance) - set(known)) if isinstance(error.instance, dict) else []
        name = extra[0] if extra else "?"
        where = f"{key}.{name}" if path else name
        close = difflib.get_close_matches(name, known, n=1)
        hint = f"did you mean {close[0]!r}?" if close else f"known keys: {', '.join(known)}"
        return ConfigError(f"config key {where}: unknown key ({hint})")
    if error.validator == "required":
        return ConfigError(f"config key {key}: {error.message} (see config/README.md)")
    if error.validator == "oneOf":
        forms = [" + ".join(option.get("required", [])) for option in error.validator_value if "required" in option]
        expected = f"give exactly one of: {'; '.join(forms)}" if forms else "does not match any allowed form"
        return ConfigError(f"config key {key}: {expected}")
    value = error.instance
    shown = repr(value) if len(repr(value)) <= 60 else f"{type(value).__name__} value"
    if error.validator == "enum":
        allowed = [str(option) for option in error.validator_value]
        close = difflib.get_close_matches(str(value), allowed, n=1)
        hint = f"did you mean {close[0]!r}?" if close else f"allowed: {', '.join(allowed)}"
        return ConfigError(f"config key {key}: {shown} is not allowed ({hint})")
    message = error.message if len(error.message) <= 120 else f"{shown} is not allowed ({error.validator})"
    description = schema.get("description")
    return ConfigError(f"config key {key}: {message}" + (f"; expected: {description}" if description else ""))


def _check_schema(config: dict[str, Any], schema: dict[str, Any]) -> None:
    """Validate against the JSON schema, filling defaults in place."""
    from jsonschema.exceptions import best_match

    errors = list(_validator(schema, fill_defaults=True).iter_errors(config))
    if errors:
        first = min(errors, key=lambda e: (len(e.absolute_path), list(map(str, e.absolute_path))))
        raise _schema_error(best_match([e for e in errors if e.absolute_path == first.absolute_path]) or first)


def _check_recipes(config: dict[str, Any], schema: dict[str, Any]) -> None:
    """Every override block of the LoRA recipe has the recipe's types and ranges, every override key names
    a stage kind or a stage, and the merged recipe of every trained stage of the grid is valid."""
    lora = schema["definitions"]["lora"]
    # Without filling defaults: an override block holds only the keys it changes.
    validator = _validator({**lora, "definitions": schema["definitions"]}, fill_defaults=False)
    em = list(config["datasets"]["em"])
    blocks: list[tuple[list[Any], Any]] = [
        (["finetune", "stage_overrides", name], block) for name, block in config["finetune"]["stage_overrides"].items()
    ]
    blocks += [(["models", name, "finetune"], model.get("finetune", {})) for name, model in config["models"].items()]
    for prefix, block in blocks:
        error = next(iter(validator.iter_errors(block)), None)
        if error is not None:
            raise _schema_error(error, prefix)
    for name in config["finetune"]["stage_overrides"]:
        if name in STAGE_KINDS:
            continue
        try:
            stage = chains.parse_stage(name, em)
        except chains.ChainError as err:
            raise ConfigError(
                f"config key finetune.stage_overrides.{name}: not a stage kind ({', '.join(STAGE_KINDS)}) "
                f"or stage name ({err})"
            ) from None
        if stage.variant != "default":
            raise ConfigError(
                f"config key finetune.stage_overrides.{name}: overrides apply to a stage name without its "
                f"system variant (use {name.partition('.')[0]!r})"
            )
    for model in config["grid"]["models"]:
        for chain in trained_chains(config, model):
            token = chain.rsplit("+", 1)[-1]
            recipe = training_hyperparameters(config, model, token)
            recipe.pop("chat_template_kwargs", None)  # a model setting, validated with the model
            error = next(iter(validator.iter_errors(recipe)), None)
            if error is not None:
                raise _schema_error(error, ["finetune", f"<merged recipe of {model}/{token}>"])


def local_source_paths(config: Mapping[str, Any]) -> dict[str, str]:
    """Every local file or folder the config's data and model sources name, by dotted key."""
    out: dict[str, str] = {}

    def visit(value: Any, path: list[str]) -> None:
        if isinstance(value, Mapping):
            source = value.get("source")
            if isinstance(source, Mapping) and isinstance(source.get("path"), str):
                out[_dotted([*path, "source", "path"])] = source["path"]
            for key, item in value.items():
                if key != "source":
                    visit(item, [*path, str(key)])

    visit(config.get("datasets", {}), ["datasets"])
    visit(config.get("comparators", {}), ["comparators"])
    visit(config.get("models", {}), ["models"])
    visit(config.get("prompts", {}), ["prompts"])
    return out


def _check_local_files(config: Mapping[str, Any], workdir: Path) -> None:
    for key, path in local_source_paths(config).items():
        if not (workdir / path).exists():
            raise ConfigError(
                f"config key {key}: no such file or folder {path!r} (relative to {workdir.resolve()}); "
                "fix the path or use a url/hf source"
            )


def _check_memory_plans(config: Mapping[str, Any]) -> None:
    """Every model job's host memory is known: configured (resources.mem_mb) or planned from its shape."""
    for model, settings in config["models"].items():
        if not settings["resources"]["mem_mb"]:
            planned_host_memory_mb(config, model)


def _check_optional_evals(config: Mapping[str, Any]) -> None:
    """An enabled optional evaluation needs its questions, a configured judge and valid chains."""
    em = list(config["datasets"]["em"])
    for key, (dataset, _) in OPTIONAL_EVALS.items():
        settings = config["eval"][key]
        if not settings["enabled"]:
            continue
        if dataset not in config["datasets"]:
            raise ConfigError(f"config key eval.{key}.enabled: needs datasets.{dataset} (or set enabled: false)")
        judge = settings.get("judge")
        if judge is not None and judge not in config["models"]:
            raise ConfigError(
                f"config key eval.{key}.judge: unknown model {judge!r} (configured: {', '.join(config['models'])})"
            )
        for chain in settings["chains"] or []:
            try:
                chains.parse_chain(chain, em)
            except chains.ChainError as err:
                raise ConfigError(f"config key eval.{key}.chains: {err}") from None


def _check_prompts(config: Mapping[str, Any]) -> None:
    """The authors' prompt files (prompts.set paper) are files pinned by content: a url or path with a sha256."""
    prompts = config["prompts"]
    if prompts["set"] != "paper":
        return
    for name, spec in prompts["paper_files"].items():
        source = spec["source"]
        if "hf" in source:
            raise ConfigError(f"config key prompts.paper_files.{name}.source: a prompt file needs a url or a path")
        if not source.get("sha256"):
            raise ConfigError(
                f"config key prompts.paper_files.{name}.source.sha256: required (the prompt texts are pinned by content)"
            )


def _check_primary_protocols(config: Mapping[str, Any]) -> None:
    """The protocol an evaluation draws in its figures is one it computes."""
    for key in ("self_recognition", "truthfulqa", "em_questions"):
        settings = config["eval"][key]
        if settings["primary_protocol"] not in settings["protocols"]:
            raise ConfigError(
                f"config key eval.{key}.primary_protocol: {settings['primary_protocol']!r} is not computed "
                f"(eval.{key}.protocols: {', '.join(settings['protocols'])})"
            )


def claim_evaluations(config: Mapping[str, Any]) -> dict[str, str]:
    """Evaluation names a claim may give -> the table it means: `self_recognition` (the first comparator's),
    `self_recognition-<comparator>`, `truthfulqa`, and each optional evaluation."""
    comparators = config["eval"]["self_recognition"]["comparators"]
    names = {"self_recognition": f"self_recognition-{comparators[0]}"}
    names.update({f"self_recognition-{c}": f"self_recognition-{c}" for c in comparators})
    names.update({name: name for name in ("truthfulqa", *OPTIONAL_EVALS)})
    return names


def _check_claims(config: Mapping[str, Any]) -> None:
    """Every claim names a known evaluation, a protocol it runs, two different well-formed conditions and
    configured models; ids are unique. Conditions outside a model's grid are not errors: the claim is
    reported as not run for that model."""
    known = claim_evaluations(config)
    seen: set[str] = set()
    for index, claim in enumerate(config["claims"]["list"]):
        key = f"claims.list.{index}"
        if claim["id"] in seen:
            raise ConfigError(f"config key {key}.id: duplicate claim id {claim['id']!r}")
        seen.add(claim["id"])
        evaluation = claim["evaluation"]
        if evaluation not in known:
            raise ConfigError(
                f"config key {key}.evaluation: unknown evaluation {evaluation!r} (known: {', '.join(known)})"
            )
        kind = "self_recognition" if evaluation.startswith("self_recognition") else evaluation
        protocol = claim.get("protocol")
        if protocol is not None and kind in ("self_recognition", "truthfulqa"):
            run = config["eval"][kind]["protocols"]
            if protocol not in run:
                raise ConfigError(
                    f"config key {key}.protocol: {protocol!r} is not run (eval.{kind}.protocols: {', '.join(run)})"
                )
        for field in ("treatment", "reference"):
            try:
                chains.parse_chain(claim[field])
            except chains.ChainError as err:
                raise ConfigError(f"config key {key}.{field}: {err}") from None
        if claim["treatment"] == claim["reference"]:
            raise ConfigError(f"config key {key}: treatment and reference are the same condition")
        for model in claim.get("models") or []:
            if model not in config["models"]:
                raise ConfigError(f"config key {key}.models: unknown model {model!r}")


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


def _check_extensions(config: dict[str, Any]) -> None:
    """A model's extensions (conditions the authors did not run) are chains of that model."""
    for model, own in config["grid"].get("per_model", {}).items():
        chains_of_model = own.get("chains", config["grid"]["chains"])
        for chain in own.get("extensions", []):
            if chain not in chains_of_model:
                raise ConfigError(f"config key grid.per_model.{model}.extensions: {chain!r} is not a chain of {model}")


def model_extensions(config: dict[str, Any], model: str) -> list[str]:
    """A target model's chains that the authors did not run (grid.per_model.<model>.extensions), in its order."""
    listed = set(config["grid"].get("per_model", {}).get(model, {}).get("extensions", []))
    return [chain for chain in model_chains(config, model) if chain in listed]


def apply_subset(config: dict[str, Any]) -> None:
    """Narrow the grid to the selected `subset` (grid.subsets.<name>), in place: its chains (and models
    and seeds when given) replace the grid's; per_model chain and seed lists are intersected with
    them, and a model left without chains or seeds drops out. A subset without chains keeps each model's own;
    with `extensions: false` it leaves out each model's extensions."""
    name = config.get("subset")
    if not name:
        return
    subsets = config["grid"].get("subsets", {})
    if name not in subsets:
        raise ConfigError(
            f"config key subset: unknown subset {name!r} (grid.subsets has: {', '.join(subsets) or 'none'})"
        )
    subset = subsets[name]
    grid = config["grid"]
    chosen = subset.get("chains")
    models = subset.get("models", grid["models"])
    for model in models:
        if model not in grid["models"]:
            raise ConfigError(f"config key grid.subsets.{name}.models: {model!r} is not in grid.models")
    per_model: dict[str, Any] = {}
    kept = []
    for model in models:
        own = grid.get("per_model", {}).get(model, {})
        if chosen is None:
            model_chain_list = list(own.get("chains", grid["chains"]))
        else:
            model_chain_list = [c for c in own.get("chains", chosen) if c in chosen]
        if not subset.get("extensions", True):
            model_chain_list = [c for c in model_chain_list if c not in own.get("extensions", [])]
        seeds = own.get("seeds", grid["seeds"])
        if "seeds" in subset:
            seeds = [s for s in seeds if s in subset["seeds"]] if "seeds" in own else list(subset["seeds"])
        if model_chain_list and seeds:
            kept.append(model)
            extensions = [c for c in own.get("extensions", []) if c in model_chain_list]
            per_model[model] = {"chains": model_chain_list, "seeds": seeds, "extensions": extensions}
    if not kept:
        raise ConfigError(f"config key subset: subset {name!r} leaves no model state in the grid")
    grid["models"] = kept
    grid["chains"] = list(chosen) if chosen is not None else list(grid["chains"])
    grid["seeds"] = list(subset.get("seeds", grid["seeds"]))
    grid["per_model"] = per_model


def check_references(config: dict[str, Any]) -> None:
    models = config["models"]
    for name in config["grid"]["models"]:
        if name not in models:
            raise ConfigError(f"config key grid.models: unknown model {name!r} (configured: {', '.join(models)})")
    em = list(config["datasets"]["em"])
    # Settings of a configured model outside grid.models are inert, so an overlay that narrows grid.models
    # (e.g. the one-GPU presets over config/config.yaml) need not remove them; a name no model has is a typo.
    for name in config["grid"].get("per_model", {}):
        if name not in models:
            raise ConfigError(f"config key grid.per_model.{name}: unknown model (configured: {', '.join(models)})")
    for model in config["grid"]["models"]:
        for chain in model_chains(config, model):
            try:
                chains.parse_chain(chain, em)
            except chains.ChainError as err:
                raise ConfigError(f"config key grid.chains ({model}): {err}") from None
    for name, subset in config["grid"].get("subsets", {}).items():
        for chain in subset.get("chains", []):
            try:
                chains.parse_chain(chain, em)
            except chains.ChainError as err:
                raise ConfigError(f"config key grid.subsets.{name}.chains: {err}") from None
    for chain in {c for m in config["grid"]["models"] for c in model_chains(config, m)}:
        for stage in chains.parse_chain(chain):
            _check_baseline_data(config, stage)
            if stage.kind == "em" and stage.variant == "identity":
                raise ConfigError(
                    f"config key grid.chains: stage {stage.token!r}: EM data has no system turn; `default` "
                    "already gives the template's identity prompt"
                )
    comparators = config["comparators"]
    for key, name in [
        ("pairs.comparator", config["pairs"]["comparator"]),
        *(("eval.self_recognition.comparators", c) for c in config["eval"]["self_recognition"]["comparators"]),
    ]:
        if name not in comparators:
            raise ConfigError(f"config key {key}: unknown comparator {name!r} (configured: {', '.join(comparators)})")
    for model in config["grid"]["models"]:
        for intervention, names in models[model].get("pair_comparators", {}).items():
            for name in names:
                where = f"config key models.{model}.pair_comparators.{intervention}"
                if name not in comparators:
                    raise ConfigError(f"{where}: unknown comparator {name!r} (configured: {', '.join(comparators)})")
                dataset = config["pairs"]["train_dataset"]
                if "summaries" in comparators[name] and dataset not in comparators[name]["summaries"]:
                    raise ConfigError(f"{where}: comparator {name!r} has no summaries of {dataset!r}")
    for name, spec in comparators.items():
        if "model" in spec and spec["model"] not in models:
            raise ConfigError(f"config key comparators.{name}.model: unknown model {spec['model']!r}")
    if config["eval"]["identity"]["enabled"]:
        for name in config["grid"]["models"]:
            try:
                check_true_identity(models[name].get("true_identity"), models[name].get("identity_aliases", {}))
            except ValueError as err:
                raise ConfigError(f"config key models.{name}.true_identity: {err}") from None
    articles = config["datasets"]["articles"]
    for key, name in (
        ("pairs.train_dataset", config["pairs"]["train_dataset"]),
        ("eval.self_recognition.dataset", config["eval"]["self_recognition"]["dataset"]),
    ):
        if name not in articles:
            raise ConfigError(f"config key {key}: unknown article dataset {name!r} (configured: {', '.join(articles)})")


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


def inference_settings(config: Mapping[str, Any], model: str, evaluation: str | None = None) -> dict[str, Any]:
    """How a job batches a local model's prompts: the most per batch (an evaluation's own batch_size where it
    sets one, e.g. MMLU's) and the memory a batch may plan. No result depends on them (sgtr_em.batching), so
    jobs read them here instead of from their params: changing them reruns nothing."""
    settings = config["models"][model]
    own = config["eval"].get(evaluation, {}).get("batch_size") if evaluation else None
    return {"batch_size": own or settings["batch_size"], "memory_budget_gib": settings["memory_budget_gib"]}


def planned_host_memory_mb(config: Mapping[str, Any], model: str, *, training: bool = False) -> int:
    """Host memory (MB) of a model's job from its memory plan (`memory.host_memory_bytes`); an API model's
    jobs only wait on the network. Raises ConfigError naming the key when the model's shape is not known."""
    from .memory import host_memory_bytes, model_shape

    settings = config["models"][model]
    if "openai" in settings["source"]:
        return 2000
    shape = model_shape(settings["source"], config.get("tiny_models"))
    if shape is None:
        raise ConfigError(
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
