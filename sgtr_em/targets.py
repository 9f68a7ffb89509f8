"""Paths, target lists and input functions of the workflow: what each rule reads and writes, as plain
functions of a loaded config (`sgtr_em.config.load`). The rule files name these and hold rules only.

Input functions take Snakemake's wildcards object (anything with the wildcard names as attributes).
Importing this module imports no torch: `snakemake -n` stays fast.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from . import chains
from .backends.openai_api import api_requests_wanted
from .config import Config, claim_evaluations
from .evaluations import (
    EVALUATIONS,
    OPTIONAL,
    SELF_RECOGNITION,
    Evaluation,
    evaluation_of,
    self_recognition_table,
    summaries_dataset,
    summaries_step,
)
from .grid import (
    model_chains,
    model_extensions,
    model_seeds,
    planned_host_memory_mb,
    sampling_for,
    trained_chains,
    training_settings,
    wordcount_em_dataset,
)
from .paths import (
    ADAPTER,
    ARTICLES,
    ARTIFACT,
    BASELINE_DATA,
    CLAIMS,
    CLAIMS_FIGURE,
    EM_ANSWERS,
    EM_DATA,
    EVAL,
    EVAL_SELF_RECOGNITION,
    EVAL_TRUTHFULQA,
    EVAL_WORK_DIR,
    FIGURE,
    FIGURE_EVALS,
    FIGURE_FORMATS,
    FIGURE_VARIANT,
    FIGURES,
    IDENTITY_ANSWERS,
    MANIFEST,
    MMLU,
    MODEL_DIR,
    MODEL_RECORD,
    PAIRS,
    PROMPTS,
    QUESTIONS,
    RELEASED_SUMMARIES,
    RESULTS_SUMMARY,
    RESULTS_SUMMARY_HTML,
    SOURCES_LOCK,
    STATE_EVAL_LOG,
    STATE_EVAL_RULE,
    STATIC_SUMMARIES,
    SUMMARIES,
    TABLE,
    TABLE_SUMMARY,
    TRAINING_CURVES,
    TRAINING_WORK_DIR,
    TRUTHFULQA,
)

# Resources a model job asks for only when its model's config names one, else what the profile's
# default-resources say: an empty config value never overrides a site's partition.
PROFILE_RESOURCES = ("slurm_partition", "gpu_model", "cpus_per_gpu")
# What a judging job without a judge model asks of a cluster.
NO_JUDGE_RESOURCES = {"gpu": 0, "mem_mb": 1000, "runtime": 10}
# A state's jobs: its core job and, where its chain is listed by an optional evaluation, its optional job.
CORE_JOB, OPTIONAL_JOB = "core", "optional"

Wildcards = Any
InputFunction = Callable[..., Any]


def wildcards_of(**values: Any) -> Any:
    """A wildcards object with these values, to call an input function outside a job."""
    return type("Wildcards", (), values)()


@dataclass(frozen=True)
class StateJob:
    """A rule whose jobs each load one evaluated state and write some of its outputs (see Targets.state_jobs):
    `kind` core or optional, its steps in order, and the models, chains and seeds of its states; `local`: an
    API model's, run on the submit host."""

    rule: str
    kind: str
    steps: tuple[str, ...]
    models: tuple[str, ...]
    chains: tuple[str, ...]
    seeds: tuple[int, ...]
    local: bool


def exact_products(
    states: Sequence[tuple[str, str, int]],
) -> list[tuple[tuple[str, ...], tuple[str, ...], tuple[int, ...]]]:
    """Cover `states` with (models, chains, seeds) products that hold exactly them (wildcard constraints are
    per wildcard): chains with the same seeds and models with the same chains share a product."""
    seeds_of: dict[tuple[str, str], list[int]] = {}
    for model, chain, seed in states:
        seeds_of.setdefault((model, chain), []).append(seed)
    chains_of: dict[tuple[str, tuple[int, ...]], list[str]] = {}
    for (model, chain), seed_list in seeds_of.items():
        chains_of.setdefault((model, tuple(seed_list)), []).append(chain)
    models_of: dict[tuple[tuple[str, ...], tuple[int, ...]], list[str]] = {}
    for (model, seeds), chain_list in chains_of.items():
        models_of.setdefault((tuple(chain_list), seeds), []).append(model)
    return [(tuple(models), chain_list, seeds) for (chain_list, seeds), models in models_of.items()]


def written_resources(resources: Any, names: Sequence[str]) -> dict[str, Any]:
    """The values of resources `names` as written in Snakemake's default resources (a profile's
    `default-resources` or `--default-resources`): a Python literal, else the text itself, as Snakemake reads
    it; resources given as expressions of the job (`attempt`, `input`...) are left out."""
    import ast

    out: dict[str, Any] = {}
    for name in names:
        resource = resources.get(name) if resources is not None else None
        raw = getattr(resource, "raw", None)
        if raw in (None, ""):
            continue
        try:
            out[name] = ast.literal_eval(raw) if isinstance(raw, str) else raw
        except (ValueError, SyntaxError):
            if not any(word in raw for word in ("attempt", "input", "threads", "wildcards", "(")):
                out[name] = raw
    return out


def prepared_questions(dataset: str) -> str:
    """Where an evaluation's question set is prepared: its own file, or a question set's."""
    return {"truthfulqa": TRUTHFULQA, "mmlu": MMLU}.get(dataset, QUESTIONS.format(question_set=dataset))


def local_path(source: dict[str, Any]) -> list[str]:
    """A source's local file as a rule input (none for a download): editing it reruns what depends on it."""
    return [source["path"]] if "path" in source else []


class Targets:
    """The workflow's targets for one loaded config."""

    def __init__(self, config: Config, profile_resources: dict[str, Any] | None = None) -> None:
        """`profile_resources`: the default-resources the profile (or --default-resources) sets, by name."""
        self.config = config
        self.profile_resources = {k: v for k, v in (profile_resources or {}).items() if v not in (None, "")}

    # ------------------------------------------------------------------------------------- models --
    def model_settings(self, model: str) -> dict[str, Any]:
        return self.config["models"][model]

    def is_api_model(self, model: str) -> bool:
        """A model behind the OpenAI API (`source: {openai: ...}`): no local files, no GPU."""
        return "openai" in self.config["models"][model]["source"]

    def model_identity(self, model: str) -> str:
        """Hub id or API model id of a model (its short name for built or local models)."""
        source = self.config["models"][model]["source"]
        return source.get("hf") or source.get("openai") or model

    def model_id(self, wc: Wildcards) -> str:
        return self.model_identity(wc.model)

    def model_path(self, model: str) -> str | list[str]:
        """A model job's model input: a configured path, a demo model's folder (prepare_model) or a hub
        model's snapshot record (download_model, resolved by sgtr_em.hub); none ([]) for an API model."""
        source = self.config["models"][model]["source"]
        if self.is_api_model(model):
            return []
        if "path" in source:
            return source["path"]
        return (MODEL_RECORD if "hf" in source else MODEL_DIR).format(model=model)

    def models_from(self, kind: str) -> str:
        """A wildcard constraint matching the models whose source has `kind` (`hf`, `builder`): which
        models a preparation rule makes (none: a pattern that matches nothing)."""
        names = sorted(m for m, settings in self.config["models"].items() if kind in settings["source"])
        return "|".join(re.escape(name) for name in names) or "(?!)"

    def model_dir(self, wc: Wildcards) -> str | list[str]:
        return self.model_path(wc.model)

    def model_source(self, wc: Wildcards) -> dict[str, Any]:
        return self.config["models"][wc.model]["source"]

    def identity_system_prompt(self, wc: Wildcards) -> str | None:
        return self.model_settings(wc.model)["identity_system_prompt"]

    def identity_aliases(self, wc: Wildcards) -> dict[str, list[str]]:
        return self.model_settings(wc.model)["identity_aliases"]

    def true_identity(self, wc: Wildcards) -> str | None:
        return self.model_settings(wc.model)["true_identity"]

    def framing(self, wc: Wildcards) -> str:
        return self.model_settings(wc.model)["framing"]

    def backend_settings(self, model: str) -> dict[str, Any]:
        """What a job's results depend on in how it loads and queries a model: dtype, chat-template options and
        thinking blocks; for an API model also its source (the model id). How many prompts a batch holds
        (`config.inference_settings`) and the API connection settings (URL, retries, concurrency) are read from
        the config by the job, so changing them reruns nothing."""
        settings = self.model_settings(model)
        out = {k: settings[k] for k in ("chat_template_kwargs", "dtype", "thinking")}
        if self.is_api_model(model):
            out["source"] = settings["source"]
        return out

    def backend(self, wc: Wildcards) -> dict[str, Any]:
        return self.backend_settings(wc.model)

    def model_threads(self, wc: Wildcards) -> int:
        return self.model_settings(wc.model)["threads"]

    def model_job_resources(self, *, fine_tuning: bool = False) -> dict[str, InputFunction]:
        """Resources of a model job from its model's settings: GPUs; host memory (`host_memory_mb`) and wall
        time, both scaled by the attempt (a retry after running out of memory or time asks for more); the
        partition, GPU model and CPUs per GPU only where the model's config or the profile names them; and the
        API requests it keeps in flight (`api_requests`, bounded across all jobs by the profile)."""

        def gpus(wc: Wildcards) -> int:
            return self.model_settings(wc.model)["resources"]["gpu"]

        def mem_mb(wc: Wildcards, attempt: int = 1) -> int:
            return self.host_memory_mb(wc.model, training=fine_tuning) * attempt

        def runtime(wc: Wildcards, attempt: int = 1) -> int:
            return self.model_settings(wc.model)["resources"]["runtime"] * attempt

        def api_requests(wc: Wildcards) -> int:
            return api_requests_wanted(
                self.config["openai"], calls_api=self.is_api_model(wc.model), fine_tuning=fine_tuning
            )

        return {
            "gpu": gpus,
            "mem_mb": mem_mb,
            "runtime": runtime,
            **{key: self.site_resource(key) for key in self.site_resources_in_use()},
            "api_requests": api_requests,
        }

    def site_resources_in_use(self) -> list[str]:
        """The partition, GPU model and CPUs per GPU keys some model's config or the profile sets."""
        models = self.config["models"].values()
        return [k for k in PROFILE_RESOURCES if k in self.profile_resources or any(m["resources"][k] for m in models)]

    def site_resource(self, key: str) -> InputFunction:
        """A model's partition, GPU model or CPUs per GPU: its config's, else the profile's (None: not asked)."""

        def get(wc: Wildcards) -> Any:
            return self.model_settings(wc.model)["resources"][key] or self.profile_resources.get(key)

        return get

    def host_memory_mb(self, model: str, *, training: bool = False) -> int:
        """A model job's host memory (MB): `resources.mem_mb` when set, else from its memory plan (weights load
        straight onto the GPUs; `memory.host_memory_bytes`)."""
        resources = self.model_settings(model)["resources"]
        if resources["mem_mb"]:
            return int(resources["mem_mb"])
        return planned_host_memory_mb(self.config, model, training=training)

    def model_kinds(self) -> list[tuple[str, str, bool]]:
        """A model rule's variants: (name suffix, model wildcard constraint, local) for the configured models
        behind the OpenAI API (`_api`: local rules, run on the submit host, where the network is; the compute
        nodes of many clusters have none) and the others, each where the config has any."""
        kinds = []
        for suffix, api in (("", False), ("_api", True)):
            models = [m for m in self.config["models"] if self.is_api_model(m) == api]
            if models:
                kinds.append((suffix, "|".join(re.escape(m) for m in models), api))
        return kinds

    def gpu_check_resources(self) -> dict[str, Any]:
        """The GPU check asks for what the first target model's jobs ask for (at least one GPU, on its
        partition and GPU model, else the profile's)."""
        model = self.config["grid"]["models"][0]
        resources = self.model_settings(model)["resources"]
        site = {key: self.site_resource(key)(wildcards_of(model=model)) for key in self.site_resources_in_use()}
        return {
            "gpu": max(1, resources["gpu"]),
            "mem_mb": 2000,
            "runtime": 10,
            **{key: value for key, value in site.items() if value not in (None, "", 0)},
        }

    def demo_corpus(self, wc: Wildcards) -> list[str]:
        """Text a tiny demo model's tokenizer is trained on (nothing for other models)."""
        if "builder" not in self.config["models"][wc.model]["source"]:
            return []
        datasets = self.config["datasets"]
        return [
            *(ARTICLES.format(dataset=d) for d in datasets["articles"]),
            *(EM_DATA.format(dataset=d, sysvariant="default") for d in datasets["em"]),
            TRUTHFULQA,
        ]

    # ------------------------------------------------------------------------------ model states --
    def state_adapters(self, model: str, chain: str, seed: int | str) -> list[str]:
        """Adapters that make a model state, in training order (none for base)."""
        return [ADAPTER.format(model=model, chain=c, seed=seed) for c in chains.prefixes(chain)]

    def adapters(self, wc: Wildcards) -> list[str]:
        """The evaluated state's adapters."""
        return self.state_adapters(wc.model, wc.chain, wc.seed)

    def parent_adapters(self, wc: Wildcards) -> list[str]:
        """Adapters of the state a training stage starts from."""
        return self.state_adapters(wc.model, chains.parent(wc.chain), wc.seed)

    def stage_hyperparameters(self, wc: Wildcards) -> dict[str, Any]:
        """A training job's params: what makes the adapter or fine-tuned model (`grid.training_settings`'s
        tracked half); a change reruns exactly the trainings it touches."""
        return training_settings(self.config, wc.model, wc.chain)[0]

    def training_work_dir(self, wc: Wildcards) -> str:
        return TRAINING_WORK_DIR.format(model=wc.model, chain=wc.chain, seed=wc.seed)

    def grid_states(self) -> list[tuple[str, str, int]]:
        """Every (model, chain, seed) evaluated."""
        config = self.config
        return [
            (m, c, s) for m in config["grid"]["models"] for c in model_chains(config, m) for s in model_seeds(config, m)
        ]

    def sampling_settings(self, model: str, sampling: dict[str, Any]) -> dict[str, Any]:
        """A sampling block's decoding for one model: with its `api` overrides for an API model."""
        return sampling_for(sampling, self.is_api_model(model))

    def summary_sampling(self, wc: Wildcards) -> dict[str, Any]:
        return self.sampling_settings(wc.model, self.config["summaries"])

    # ------------------------------------------------------------------------------------ prompts --
    def prompt_settings(self) -> dict[str, Any]:
        """What the prompt set of the run is made from: the set's name and, for the paper's, its files (url
        or path, sha256); for the project's, the hash of its texts (editing them reruns what uses them)."""
        prompts = self.config["prompts"]
        if prompts["set"] == "paper":
            return {"set": "paper", "files": {name: spec["source"] for name, spec in prompts["paper_files"].items()}}
        from .prompts import PROJECT

        return {"set": "project", "texts_sha256": PROJECT.provenance()["texts_sha256"]}

    def prompt_source_files(self, wc: Wildcards) -> list[str]:
        """The paper prompt files given as local paths (none for downloads or the project's set)."""
        prompts = self.config["prompts"]
        if prompts["set"] != "paper":
            return []
        return [path for spec in prompts["paper_files"].values() for path in local_path(spec["source"])]

    def baseline_prompts(self, wc: Wildcards) -> str | list[str]:
        """The prompt set, for the baseline that asks a question (word counting); none for the others."""
        return PROMPTS if wc.baseline == chains.WORDCOUNT else []

    # ---------------------------------------------------------------------------------- summaries --
    def base_summaries(self, model: str, dataset: str) -> str:
        """A model's base summaries: a given file (models.<name>.summaries.<dataset>, e.g. the authors'
        released ones; generation is skipped) or generated ones, seeded by summary_seed."""
        if dataset in self.model_settings(model)["summaries"]:
            return RELEASED_SUMMARIES.format(model=model, dataset=dataset)
        return SUMMARIES.format(model=model, chain=chains.BASE, seed=self.config["summary_seed"], dataset=dataset)

    def comparator_summaries(self, other: str, dataset: str) -> str:
        """'Other' summaries: a configured model's base summaries, or a prepared static file."""
        spec = self.config["comparators"][other]
        if "model" in spec:
            return self.base_summaries(spec["model"], dataset)
        return STATIC_SUMMARIES.format(other=other, dataset=dataset)

    def summary_style(self, wc: Wildcards) -> str:
        return self.config["datasets"]["articles"][wc.dataset]["style"]

    # -------------------------------------------------------------------------------------- pairs --
    @property
    def pair_articles(self) -> str:
        return ARTICLES.format(dataset=self.config["pairs"]["train_dataset"])

    def pair_comparators(self, wc: Wildcards) -> list[str]:
        """Comparators whose summaries are 'other' in a pair file: the model's `pair_comparators` for the
        intervention (one drawn per article), else `pairs.comparator`."""
        own = self.model_settings(wc.model)["pair_comparators"].get(wc.intervention)
        return list(own) if own else [self.config["pairs"]["comparator"]]

    def pair_other_summaries(self, wc: Wildcards) -> list[str]:
        """The 'other' summaries of a pair file, one file per comparator (`pair_comparators`)."""
        dataset = self.config["pairs"]["train_dataset"]
        return [self.comparator_summaries(other, dataset) for other in self.pair_comparators(wc)]

    def pair_source(self, chain: str, seed: int | str) -> str:
        """Path segment naming whose summaries are 'self' in the pairs of a chain's last stage: `base`, or
        with pairs.source own and a trained parent, `own-<parent chain>-seed<N>`."""
        parent = chains.parent(chain)
        if self.config["pairs"]["source"] == "base" or parent == chains.BASE:
            return "base"
        return f"own-{parent}-seed{seed}"

    def pair_self_summaries(self, wc: Wildcards) -> str:
        """'Self' summaries of a pair file: the base model's, or those of the named parent state."""
        dataset = self.config["pairs"]["train_dataset"]
        if wc.source == "base":
            return self.base_summaries(wc.model, dataset)
        chain, _, seed = wc.source.removeprefix("own-").rpartition("-seed")
        return SUMMARIES.format(model=wc.model, chain=chain, seed=seed, dataset=dataset)

    def pair_file(self, model: str, chain: str, seed: int | str, framing: str | None = None) -> str:
        """Pair file that trains the last stage (an identity intervention) of a chain."""
        stage = chains.parse_chain(chain)[-1]
        return PAIRS.format(
            model=model,
            source=self.pair_source(chain, seed),
            intervention=stage.name,
            framing=framing or self.model_settings(model)["framing"],
            sysvariant=stage.variant,
        )

    def all_pair_files(self) -> list[str]:
        """Every pair file of the grid: each model's framing plus the configured extra framings (with
        pairs.source own, one per trained parent state and seed)."""
        out = []
        for model in self.config["grid"]["models"]:
            framings = dict.fromkeys([self.model_settings(model)["framing"], *self.config["pairs"]["framings"]])
            intervention_chains = [
                c for c in trained_chains(self.config, model) if chains.parse_chain(c)[-1].kind == "intervention"
            ] or ["sgtr"]
            for chain in intervention_chains:
                for seed in model_seeds(self.config, model):
                    out += [self.pair_file(model, chain, seed, framing) for framing in framings]
        return list(dict.fromkeys(out))

    # --------------------------------------------------------------------------------- train data --
    def stage_train_file(self, wc: Wildcards) -> str:
        """Training data of a chain's last stage."""
        stage = chains.parse_chain(wc.chain)[-1]
        if stage.kind == "em":
            return EM_DATA.format(dataset=stage.name, sysvariant=stage.variant)
        if stage.kind == "baseline":
            return BASELINE_DATA.format(baseline=stage.name, sysvariant=stage.variant)
        return self.pair_file(wc.model, wc.chain, wc.seed)

    def baseline_spec(self, wc: Wildcards) -> dict[str, Any]:
        datasets = self.config["datasets"]
        if wc.baseline == chains.WORDCOUNT:
            return datasets["wordcount"]
        if wc.baseline == chains.GENERAL:
            return datasets["general"]
        return datasets["correct"][wc.baseline.removeprefix(chains.CORRECT_PREFIX)]

    def baseline_inputs(self, wc: Wildcards) -> list[str]:
        """What a baseline's training file is made from: the EM chats whose user turns the wordcount
        baseline counts (unless it has a ready-made file), or a dataset's local file (none for a download)."""
        spec = self.baseline_spec(wc)
        if wc.baseline == chains.WORDCOUNT and "source" not in spec:
            return [EM_DATA.format(dataset=wordcount_em_dataset(self.config), sysvariant="default")]
        return local_path(spec["source"])

    # ------------------------------------------------------------------------------------ sources --
    def article_spec(self, wc: Wildcards) -> dict[str, Any]:
        return self.config["datasets"]["articles"][wc.dataset]

    def article_source_file(self, wc: Wildcards) -> list[str]:
        return local_path(self.article_spec(wc)["source"])

    def em_spec(self, wc: Wildcards) -> dict[str, Any]:
        return self.config["datasets"]["em"][wc.dataset]

    def em_source_file(self, wc: Wildcards) -> list[str]:
        return local_path(self.em_spec(wc)["source"])

    def dataset_source_file(self, key: str) -> list[str]:
        """A dataset's local source file (datasets.<key>; none for a download or an unconfigured dataset)."""
        spec = self.config["datasets"].get(key)
        return local_path(spec["source"]) if spec else []

    def question_spec(self, wc: Wildcards) -> dict[str, Any]:
        return self.config["datasets"][wc.question_set]

    def question_source_file(self, wc: Wildcards) -> list[str]:
        return local_path(self.question_spec(wc)["source"])

    def released_summaries_spec(self, wc: Wildcards) -> dict[str, Any]:
        return self.model_settings(wc.model)["summaries"][wc.dataset]

    def released_summaries_source_file(self, wc: Wildcards) -> list[str]:
        return local_path(self.released_summaries_spec(wc)["source"])

    def comparator_spec(self, wc: Wildcards) -> dict[str, Any]:
        return self.config["comparators"][wc.other]["summaries"][wc.dataset]

    def comparator_source_file(self, wc: Wildcards) -> list[str]:
        return local_path(self.comparator_spec(wc)["source"])

    # -------------------------------------------------------------------------------- evaluations --
    def enabled_optional_evals(self) -> list[str]:
        """Optional evaluations switched on, and with at least one listed chain in the grid: a smaller grid
        runs a smaller DAG, so listed chains outside the grid are not evaluated, and an eval none of whose
        chains is in the grid is skipped for this run."""
        grid_chains = {c for _, c, _ in self.grid_states()}
        out = []
        for key in OPTIONAL:
            settings = self.config["eval"][key]
            if settings["enabled"] and (not settings["chains"] or grid_chains.intersection(settings["chains"])):
                out.append(key)
        return out

    def core_evaluations(self) -> list[str]:
        """The paper's core evaluations: one self-recognition per comparator, and TruthfulQA."""
        comparators = self.config["eval"]["self_recognition"]["comparators"]
        return [*(self_recognition_table(o) for o in comparators), "truthfulqa"]

    def evaluations(self) -> list[str]:
        """Every evaluation (= table) of the run: the core ones and the enabled optional ones."""
        return [*self.core_evaluations(), *self.enabled_optional_evals()]

    def evaluation_files(self, table: str) -> list[str]:
        """Evaluation JSONs of one table: every grid state, or the configured chains of an optional eval."""
        listed = self.config["eval"][table]["chains"] if table in OPTIONAL else None
        return [
            EVAL.format(evaluation=table, model=m, chain=c, seed=s)
            for m, c, s in self.grid_states()
            if not listed or c in listed
        ]

    def table_inputs(self, wc: Wildcards) -> list[str]:
        return self.evaluation_files(wc.table)

    # ------------------------------------------------------------------------ evaluated states --
    # An evaluated state is loaded by at most two jobs: its core job (the summaries it writes, self-recognition
    # per comparator, TruthfulQA) and, where its chain is listed, its optional job (the EM and identity
    # answers its judges score, MMLU), so a failing optional evaluation never costs the core results. Each job
    # keeps each finished step under a fingerprint (results/checkpoints/eval/...), so a killed, requeued or
    # timed-out job resumes at the step it had reached. States differ in what their jobs write: one rule per
    # distinct set of steps, its models, chains and seeds in its wildcard constraints.
    @cached_property
    def summaries_read_from(self) -> set[tuple[str, str, int, str]]:
        """(model, chain, seed, dataset) of every generated summary file another job reads: a model's base
        summaries at summary_seed (pairs built from them, a comparator model's, self-recognition on the base
        model's) and a parent state's own (pairs.source own)."""
        config = self.config
        needed: set[tuple[str, str, int, str]] = set()

        def base(model: str, dataset: str) -> None:
            if dataset not in self.model_settings(model)["summaries"]:
                needed.add((model, chains.BASE, int(config["summary_seed"]), dataset))

        sr = config["eval"]["self_recognition"]
        for model in config["grid"]["models"]:
            if sr["self_source"] == "base":
                base(model, sr["dataset"])
            for path in self.all_pair_files():
                if not path.startswith(f"results/pairs/{model}/"):
                    continue
                source = path.split("/")[3]
                if source == "base":
                    base(model, config["pairs"]["train_dataset"])
                else:
                    chain, _, seed = source.removeprefix("own-").rpartition("-seed")
                    needed.add((model, chain, int(seed), config["pairs"]["train_dataset"]))
        used = [*sr["comparators"], config["pairs"]["comparator"]]
        for other in dict.fromkeys(used):
            spec = config["comparators"].get(other, {})
            if "model" in spec:
                for dataset in dict.fromkeys([sr["dataset"], config["pairs"]["train_dataset"]]):
                    base(spec["model"], dataset)
        return needed

    def summary_datasets_of(self, model: str, chain: str, seed: int) -> tuple[str, ...]:
        """Datasets a grid state's core job summarises: its fresh evaluation summaries (self_source own) and
        those other jobs read from it (`summaries_read_from`)."""
        fresh = self.fresh_summaries_dataset()
        read = sorted(d for m, c, s, d in self.summaries_read_from if (m, c, s) == (model, chain, int(seed)))
        return tuple(dict.fromkeys([*([fresh] if fresh else []), *read]))

    def optional_evals_of(self, chain: str) -> tuple[str, ...]:
        """The enabled optional evaluations that evaluate a chain (every chain when `chains` is empty)."""
        return tuple(
            key
            for key in self.enabled_optional_evals()
            if not self.config["eval"][key]["chains"] or chain in self.config["eval"][key]["chains"]
        )

    @cached_property
    def state_jobs(self) -> list[StateJob]:
        """Every state rule: core jobs keyed by the summaries they write, optional jobs by their evaluations,
        API models' apart (they run on the submit host, where the network is); each rule's states exactly the
        product of its models, chains and seeds."""
        by_key: dict[tuple[str, tuple[str, ...], bool], list[tuple[str, str, int]]] = {}
        for model, chain, seed in self.grid_states():
            api = self.is_api_model(model)
            datasets = self.summary_datasets_of(model, chain, seed)
            steps = (*(summaries_step(d) for d in datasets), *self.core_evaluations())
            by_key.setdefault((CORE_JOB, steps, api), []).append((model, chain, seed))
            if optional := self.optional_evals_of(chain):
                by_key.setdefault((OPTIONAL_JOB, optional, api), []).append((model, chain, seed))
        fresh = self.fresh_summaries_dataset()
        jobs: list[StateJob] = []
        for (kind, steps, api), states in by_key.items():
            if kind == CORE_JOB:
                extra = [d for s in steps if (d := summaries_dataset(s)) and d != fresh]
                name = "_".join([STATE_EVAL_RULE, *(["summaries", *extra] if extra else [])])
            else:
                name = "_".join([STATE_EVAL_RULE, *steps])
            name += "_api" if api else ""
            products = sorted(exact_products(states), key=lambda p: -len(p[0]) * len(p[1]) * len(p[2]))
            for number, (models, chains_, seeds) in enumerate(products, start=1):
                rule = name if number == 1 else f"{name}_{number}"
                jobs.append(StateJob(rule, kind, steps, models, chains_, seeds, api))
        return jobs

    @staticmethod
    def state_job_log(job: StateJob, template: str = STATE_EVAL_LOG) -> str:
        """A state rule's log (or, with STATE_EVAL_BENCHMARK, benchmark): in a folder of its own per rule."""
        folder, _, rest = template.partition("/{model}/")
        return f"{folder}/{job.rule}/{{model}}/{rest}"

    def state_job_constraints(self, job: StateJob) -> dict[str, str]:
        """Wildcard constraints of a state rule: exactly its states (never a comparator's summaries)."""

        def alternation(values: Sequence[Any]) -> str:
            return "|".join(re.escape(str(v)) for v in values)

        return {"model": alternation(job.models), "chain": alternation(job.chains), "seed": alternation(job.seeds)}

    def fresh_summaries_dataset(self) -> str | None:
        """The dataset a state summarises in its evaluation job: the self-recognition dataset when each
        state is evaluated on its own fresh summaries (`self_source: own`), else none."""
        settings = self.config["eval"]["self_recognition"]
        return settings["dataset"] if settings["self_source"] == "own" else None

    def state_job_outputs(self, job: StateJob) -> dict[str, str]:
        """Each step's output, at the path the evaluation has always had (sampled answers for the judged
        evaluations, which their judging jobs read; a state's summaries where any summaries go)."""
        out = {}
        for step in job.steps:
            dataset = summaries_dataset(step)
            evaluation = evaluation_of(step)
            if dataset is not None:
                out[step] = SUMMARIES.replace("{dataset}", dataset)
            elif evaluation is not None and evaluation.answers:
                out[step] = evaluation.answers
            else:
                out[step] = EVAL.replace("{evaluation}", step)
        return out

    def state_job_inputs(self, job: StateJob) -> InputFunction:
        """A state job's inputs by role: the model and its adapters; for summaries and self-recognition the
        prompts and each dataset's articles (`articles-<dataset>`), the 'other' summaries per comparator
        (`other_summaries-<comparator>`) and the base model's 'self' summaries unless the job writes the
        state's own; each evaluation's prepared questions (named by their dataset key)."""
        settings = self.config["eval"][SELF_RECOGNITION]
        datasets = [d for step in job.steps if (d := summaries_dataset(step))]
        evaluations = [e for step in job.steps if (e := evaluation_of(step)) is not None]
        recognises = any(e.key == SELF_RECOGNITION for e in evaluations)
        if recognises:
            datasets.append(settings["dataset"])

        def inputs(wc: Wildcards) -> dict[str, Any]:
            out: dict[str, Any] = {"model": self.model_dir(wc), "adapters": self.adapters(wc)}
            if datasets:
                out["prompts"] = PROMPTS
            for dataset in dict.fromkeys(datasets):
                out[f"articles-{dataset}"] = ARTICLES.format(dataset=dataset)
            if recognises:
                if summaries_step(settings["dataset"]) not in job.steps:
                    out["self_summaries"] = self.base_summaries(wc.model, settings["dataset"])
                for other in settings["comparators"]:
                    out[f"other_summaries-{other}"] = self.comparator_summaries(other, settings["dataset"])
            for evaluation in evaluations:
                if evaluation.dataset:
                    out[evaluation.dataset] = prepared_questions(evaluation.dataset)
            return out

        return inputs

    def state_job_params(self, job: StateJob) -> InputFunction:
        """Each step's own settings (params of the job, recorded in that step's output): a change to any
        of them reruns the state's job, never a training. An evaluation's are the keys of `eval.<key>` its
        registry entry names (or all but `chains` and `batch_size`), `sampling` for the job's model, and the
        model's own settings it names."""

        def params(wc: Wildcards) -> dict[str, dict[str, Any]]:
            out: dict[str, dict[str, Any]] = {}
            for step in job.steps:
                dataset = summaries_dataset(step)
                evaluation = evaluation_of(step)
                if dataset is not None:
                    out[step] = {
                        "dataset": dataset,
                        "style": self.config["datasets"]["articles"][dataset]["style"],
                        "sampling": self.summary_sampling(wc),
                    }
                elif evaluation is not None:
                    out[step] = self.step_settings(evaluation, wc)
            return out

        return params

    def step_settings(self, evaluation: Evaluation, wc: Wildcards) -> dict[str, Any]:
        """What a state's step of `evaluation` depends on (see state_job_params)."""
        config = self.config["eval"][evaluation.key]
        keys = evaluation.settings or [k for k in config if k not in ("chains", "batch_size")]
        out = {k: config[k] for k in keys if k in config}
        if "sampling" in out:
            out["sampling"] = self.sampling_settings(wc.model, config["sampling"])
        out.update({k: self.model_settings(wc.model)[k] for k in evaluation.model_settings})
        return out

    def eval_work_dir(self, wc: Wildcards) -> str:
        return EVAL_WORK_DIR.format(model=wc.model, chain=wc.chain, seed=wc.seed)

    def eval_settings(self, key: str, *, leave_out: tuple[str, ...] = ()) -> dict[str, Any]:
        """An evaluation's settings as a job's params, without those another job or Snakemake uses."""
        return {k: v for k, v in self.config["eval"][key].items() if k not in leave_out}

    # --------------------------------------------------------------------------------------- judges --
    def judge(self, key: str) -> str | None:
        return self.config["eval"][key].get("judge")

    def judge_model_inputs(self, key: str) -> InputFunction:
        """The judge's local model directory (none for an API judge or no judge)."""

        def inputs(wc: Wildcards) -> str | list[str]:
            judge = self.judge(key)
            return [] if judge is None else self.model_path(judge)

        return inputs

    def judge_runs_locally(self, key: str) -> bool:
        """Whether an evaluation's judging job is a local rule: an API judge (the job runs where Snakemake
        runs, which has the network) or no judge at all (classification by rules, seconds of CPU)."""
        settings = self.config["eval"][key]
        judge = settings.get("judge")
        # A disabled eval's default judge need not be a configured model.
        return settings["enabled"] and (judge is None or (judge in self.config["models"] and self.is_api_model(judge)))

    def judge_job_resources(self, key: str) -> dict[str, InputFunction]:
        """Resources of an evaluation's judging job: the judge model's (a local judge may need a GPU), little
        without a judge model."""

        def judged(name: str, attempt_scaled: bool = False) -> InputFunction:
            def get(wc: Wildcards, attempt: int = 1) -> Any:
                judge = self.judge(key)
                if judge is None:
                    return NO_JUDGE_RESOURCES[name]
                if name == "mem_mb":
                    return self.host_memory_mb(judge) * attempt
                value = self.model_settings(judge)["resources"][name]
                return value * attempt if attempt_scaled else value

            return get

        def site(name: str) -> InputFunction:
            def get(wc: Wildcards) -> Any:
                judge = self.judge(key)
                own = self.model_settings(judge)["resources"][name] if judge is not None else None
                return own or self.profile_resources.get(name)

            return get

        def api_requests(wc: Wildcards) -> int:
            judge = self.judge(key)
            return api_requests_wanted(self.config["openai"], calls_api=judge is not None and self.is_api_model(judge))

        return {
            "gpu": judged("gpu"),
            "mem_mb": judged("mem_mb"),
            "runtime": judged("runtime", attempt_scaled=True),
            **{name: site(name) for name in self.site_resources_in_use()},
            "api_requests": api_requests,
        }

    def judge_threads(self, key: str) -> InputFunction:
        def get(wc: Wildcards) -> int:
            judge = self.judge(key)
            return 1 if judge is None else self.model_settings(judge)["threads"]

        return get

    def judge_settings(self, key: str) -> dict[str, Any] | None:
        """What a job needs to load the judge: its name, source identity and backend settings."""
        judge = self.judge(key)
        if judge is None or not self.config["eval"][key]["enabled"]:
            return None
        source = self.config["models"][judge]["source"]
        return {
            "name": judge,
            "identity": {k: source[k] for k in ("hf", "revision", "openai") if k in source} or {"model": judge},
            "backend": self.backend_settings(judge),
        }

    # ------------------------------------------------------------------------- tables and figures --
    def all_tables(self) -> list[str]:
        """A tidy table and a per-condition summary per evaluation (every comparator)."""
        return [path.format(table=t) for t in self.evaluations() for path in (TABLE, TABLE_SUMMARY)]

    def summary_tables(self) -> dict[str, str]:
        """Per-condition summary tables by evaluation name."""
        return {t: TABLE_SUMMARY.format(table=t) for t in self.evaluations()}

    def grid_has_system_variants(self, model: str) -> bool:
        """Whether a target model has a condition trained on data in a non-default system variant."""
        return any(
            stage.variant != "default"
            for chain in model_chains(self.config, model)
            for stage in chains.parse_chain(chain)
        )

    def enabled_figures(self, model: str) -> list[str]:
        """Figures drawn for one target model: optional evals' when enabled, the system-prompt ablation when
        the model has a condition in a non-default variant."""
        optional = {EVALUATIONS[key].figure: key for key in OPTIONAL}
        enabled = self.enabled_optional_evals()
        out = []
        for figure in FIGURES:
            if figure in optional and optional[figure] not in enabled:
                continue
            if figure == "fig7_system_prompt" and not self.grid_has_system_variants(model):
                continue
            out.append(figure)
        return out

    def figure_inputs(self, wc: Wildcards) -> dict[str, str]:
        """Tidy tables a figure draws from (summarised per condition as it draws, each seed a dot)."""
        optional = {EVALUATIONS[key].figure: key for key in OPTIONAL}
        if wc.figure in optional:
            return {"optional": TABLE.format(table=optional[wc.figure])}
        return {
            SELF_RECOGNITION: TABLE.format(table=self.primary_self_recognition_table),
            "truthfulqa": TABLE.format(table="truthfulqa"),
        }

    @property
    def primary_self_recognition_table(self) -> str:
        """The self-recognition evaluation figures draw: against the first comparator."""
        return self_recognition_table(self.config["eval"]["self_recognition"]["comparators"][0])

    def training_curve_models(self) -> list[str]:
        """Target models whose stages are LoRA trainings (an API model's fine-tuning job records no curve)."""
        return [m for m in self.config["grid"]["models"] if not self.is_api_model(m) and trained_chains(self.config, m)]

    def training_curve_files(self) -> list[str]:
        """The training-curves figure (png, pdf) and its csv of every target model with LoRA trainings."""
        return [
            TRAINING_CURVES.format(model=m, ext=ext)
            for m in self.training_curve_models()
            for ext in (*FIGURE_FORMATS, "csv")
        ]

    def training_curve_inputs(self, wc: Wildcards) -> list[str]:
        """Every adapter of a model, each seed of each trained chain, in the grid's chain order."""
        model = wc.model
        return [
            ADAPTER.format(model=model, chain=c, seed=s)
            for c in trained_chains(self.config, model)
            for s in model_seeds(self.config, model)
        ]

    def all_figures(self) -> list[str]:
        """Each figure once per target model (the ablation only where the model has its conditions)."""
        return [
            FIGURE.format(model=model, figure=figure, ext=ext)
            for model in self.config["grid"]["models"]
            for figure in self.enabled_figures(model)
            for ext in FIGURE_FORMATS
        ]

    # ------------------------------------------------------------------------------------- claims --
    def model_claims(self, model: str) -> list[dict[str, Any]]:
        """The claims about one target model, resolved (fields of `sgtr_em.claims.Claim`): the evaluation as
        a table name, and `not_run` saying why the run cannot check a claim (an evaluation switched off, a
        condition outside the model's grid or outside an optional evaluation's chains)."""
        grid_chains = model_chains(self.config, model)
        run = self.evaluations()
        names = claim_evaluations(self.config)
        out = []
        for entry in self.config["claims"]["list"]:
            if entry["models"] is not None and model not in entry["models"]:
                continue
            table = names[entry["evaluation"]]
            conditions = [entry["treatment"], entry["reference"]]
            listed = self.config["eval"][table]["chains"] if table in OPTIONAL else None
            reason = None
            if table not in run:
                reason = f"the {table} evaluation is not run (eval.{table}.enabled is false, or its chains are not in the grid)"
            elif missing := [c for c in conditions if c not in grid_chains]:
                reason = f"{' and '.join(missing)} {'is' if len(missing) == 1 else 'are'} not in {model}'s grid"
            elif listed and (missing := [c for c in conditions if c not in listed]):
                reason = f"eval.{table}.chains does not list {' or '.join(missing)}"
            fields = {k: v for k, v in entry.items() if k != "models"}
            out.append(
                {**fields, "evaluation": table, "not_run": reason, "basis": self.claim_basis(model, table, conditions)}
            )
        return out

    def extensions(self, model: str) -> list[str]:
        """A target model's conditions that the authors did not run (grid.per_model.<model>.extensions)."""
        return model_extensions(self.config, model)

    def figure_extensions(self, wc: Wildcards) -> list[str]:
        return self.extensions(wc.model)

    def claim_basis(self, model: str, table: str, conditions: list[str]) -> str:
        """What a claim about a model rests on, as the results summary says it: the authors' conditions, or
        extensions of ours (conditions they did not run, datasets we chose, an evaluation they released no
        result of)."""
        ours = [c for c in conditions if c in self.extensions(model)]
        parts = []
        if ours:
            parts.append(f"extension: {' and '.join(chains.label(c) for c in ours)} not run by the authors")
        chosen = sorted(
            {
                s.name
                for c in conditions
                for s in chains.parse_chain(c)
                if s.kind == "baseline" and s.name != chains.WORDCOUNT
            }
        )
        if chosen:
            parts.append(f"{', '.join(chosen)} data chosen by this project")
        if table in ("em_questions", "identity"):
            parts.append(f"{table}: no released result of the authors")
        return "; ".join(parts) or "the authors' conditions"

    def claims_param(self, wc: Wildcards) -> list[dict[str, Any]]:
        return self.model_claims(wc.model)

    def claims_figure_title(self, wc: Wildcards) -> str:
        return f"The paper's claims on {wc.model} (run {self.config['run_name']})"

    def claims_settings(self) -> dict[str, Any]:
        """How claims are checked (the params of every claims job)."""
        return {k: v for k, v in self.config["claims"].items() if k != "list"}

    def claim_inputs(self, wc: Wildcards) -> list[str]:
        """Evaluation JSONs the claims about a model compare: both conditions of every claim it can check,
        every seed."""
        files: dict[str, None] = {}
        for claim in self.model_claims(wc.model):
            if claim["not_run"]:
                continue
            for chain in (claim["treatment"], claim["reference"]):
                for seed in model_seeds(self.config, wc.model):
                    files[EVAL.format(evaluation=claim["evaluation"], model=wc.model, chain=chain, seed=seed)] = None
        return list(files)

    def claim_models(self) -> list[str]:
        """Target models with at least one claim about them."""
        return [m for m in self.config["grid"]["models"] if self.model_claims(m)]

    def claims_tables(self) -> dict[str, str]:
        """The claims table of each target model with claims, by model."""
        return {m: CLAIMS.format(model=m) for m in self.claim_models()}

    def all_claims(self) -> list[str]:
        """Every claims table and forest plot."""
        return [
            *self.claims_tables().values(),
            *(path.format(model=m) for m in self.claim_models() for path in CLAIMS_FIGURE.values()),
        ]

    # ----------------------------------------------------------------------------------- artifact --
    def bundle_inputs(self, workdir: str | Path = ".") -> dict[str, list[str]]:
        """What `bundle` packs: `files` stored by their path below results/ (every evaluation's JSON with its
        per-item records and, for the judged evaluations, the judge's output per answer; the sampled EM and
        identity answers and the questions with the judge's prompts, so a reviewer re-scores without a GPU;
        tables, figures, training curves, claims, results summary, config as run, environment, code version;
        with `bundle.adapters` every LoRA adapter folder), and `named` files stored as BUNDLE_NAMES says (the
        run's manifest, the sources lock when the checkout has one)."""
        enabled = self.enabled_optional_evals()
        answers = {"em_questions": EM_ANSWERS, "identity": IDENTITY_ANSWERS}
        files = [
            *(f for table in self.evaluations() for f in self.evaluation_files(table)),
            *(
                template.format(model=m, chain=c, seed=s)
                for key, template in answers.items()
                if key in enabled
                for m, c, s in self.grid_states()
                if not self.config["eval"][key]["chains"] or c in self.config["eval"][key]["chains"]
            ),
            *(QUESTIONS.format(question_set=EVALUATIONS[key].dataset) for key in answers if key in enabled),
            *self.all_tables(),
            *self.all_figures(),
            *self.figure_variants(),
            *self.training_curve_files(),
            *self.all_claims(),
            RESULTS_SUMMARY,
            RESULTS_SUMMARY_HTML,
            *ARTIFACT.values(),
        ]
        if self.config["bundle"]["adapters"]:
            files += [
                ADAPTER.format(model=m, chain=c, seed=s)
                for m in self.training_curve_models()
                for c in trained_chains(self.config, m)
                for s in model_seeds(self.config, m)
            ]
        named = [MANIFEST, *([SOURCES_LOCK] if (Path(workdir) / SOURCES_LOCK).is_file() else [])]
        return {"files": files, "named": named}

    def all_targets(self) -> list[str]:
        """The default target: every table and figure of the grid (and its variants in the other protocols),
        the claims, the results summary and the manifest."""
        return [*self.manifest_inputs(), MANIFEST]

    def manifest_inputs(self) -> list[str]:
        """What the manifest waits for: every other default target, so it lists each of them."""
        return [
            *self.all_tables(),
            *self.all_figures(),
            *self.figure_variants(),
            *self.training_curve_files(),
            *self.all_claims(),
            RESULTS_SUMMARY,
        ]

    def figure_variants(self) -> list[str]:
        """Each figure that draws an evaluation's protocol once more per other protocol the evaluation computes
        (the primary protocol is the figure itself)."""
        out = []
        for model in self.config["grid"]["models"]:
            for figure in self.enabled_figures(model):
                settings = self.config["eval"].get(FIGURE_EVALS.get(figure, ""), {})
                for protocol in settings.get("protocols", []):
                    if protocol != settings["primary_protocol"]:
                        out += [
                            FIGURE_VARIANT.format(model=model, protocol=protocol, figure=figure, ext=ext)
                            for ext in FIGURE_FORMATS
                        ]
        return out

    def figure_protocols(self, wc: Wildcards) -> dict[str, str | None]:
        """The protocol a figure draws, per evaluation: the primary one, or the variant's (wildcard `protocol`)
        for the evaluations that computed it."""
        variant = getattr(wc, "protocol", None)
        out: dict[str, str | None] = {}
        for key in ("self_recognition", "truthfulqa", "em_questions"):
            settings = self.config["eval"][key]
            out[key] = variant if variant in settings.get("protocols", []) else settings.get("primary_protocol")
        return out

    def published_numbers(self, wc: Wildcards) -> dict[str, Any] | None:
        """The paper's published numbers of a figure's model (published_numbers.yaml), drawn beside ours."""
        from .published import load_published, published_for

        return published_for(load_published(), wc.model, self.model_identity(wc.model))

    # --------------------------------------------------------------------------------- API models --
    def api_model_outputs(self) -> list[str]:
        """Every evaluation of the grid's API models (which pulls in their summaries and fine-tuning jobs)."""
        out = []
        for model, chain, seed in self.grid_states():
            if not self.is_api_model(model):
                continue
            out.append(EVAL_TRUTHFULQA.format(model=model, chain=chain, seed=seed))
            for other in self.config["eval"]["self_recognition"]["comparators"]:
                out.append(EVAL_SELF_RECOGNITION.format(other=other, model=model, chain=chain, seed=seed))
        return out
