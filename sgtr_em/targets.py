"""Paths, target lists and input functions of the workflow: what each rule reads and writes, as plain
functions of a loaded config (`sgtr_em.config.load`). The rule files name these and hold rules only.

Input functions take Snakemake's wildcards object (anything with the wildcard names as attributes).
Importing this module imports no torch: `snakemake -n` stays fast.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from . import chains
from .backends.openai_api import api_requests_wanted
from .config import (
    MEMORY_SETTINGS,
    OPTIONAL_EVALS,
    Config,
    claim_evaluations,
    model_chains,
    model_extensions,
    model_seeds,
    sampling_for,
    trained_chains,
    training_hyperparameters,
    wordcount_em_dataset,
)

# --------------------------------------------------------------------------------------- templates --
DOWNLOADS = "results/data/downloads"
MODEL_DIR = "results/models/{model}"
ARTICLES = "results/data/articles/{dataset}.jsonl"
EM_DATA = "results/data/em/{dataset}/{sysvariant}.jsonl"
BASELINE_DATA = "results/data/baselines/{baseline}/{sysvariant}.jsonl"
BASELINE_STATS = "results/data/baselines/{baseline}/{sysvariant}.stats.json"
TRUTHFULQA = "results/data/truthfulqa.jsonl"
MMLU = "results/data/mmlu.jsonl"
QUESTIONS = "results/data/questions/{question_set}.json"
# The prompt texts of the run (prompts.set), as every job that builds a prompt reads them.
PROMPTS = "results/data/prompts.json"
STATIC_SUMMARIES = "results/data/comparators/{other}/{dataset}.jsonl"
RELEASED_SUMMARIES = "results/data/released_summaries/{model}/{dataset}.jsonl"
SUMMARIES = "results/summaries/{model}/{chain}/seed{seed}/{dataset}.jsonl"
PAIRS = "results/pairs/{model}/{source}/{intervention}/{framing}/{sysvariant}.jsonl"
PAIR_STATS = "results/pairs/{model}/{source}/{intervention}/{framing}/{sysvariant}.stats.json"
ADAPTER = "results/adapters/{model}/{chain}/seed{seed}"
# Trainer scratch or a fine-tuning job's state: outside the adapter (a failed job's outputs are deleted).
TRAINING_WORK_DIR = "results/checkpoints/{model}/{chain}/seed{seed}"
# An evaluation's name is its config key under `eval`; self-recognition is one evaluation per comparator.
SELF_RECOGNITION = "self_recognition"
EVAL = "results/eval/{evaluation}/{model}/{chain}/seed{seed}.json"
EVAL_SELF_RECOGNITION = "results/eval/self_recognition-{other}/{model}/{chain}/seed{seed}.json"
EVAL_TRUTHFULQA = "results/eval/truthfulqa/{model}/{chain}/seed{seed}.json"
EVAL_EM_QUESTIONS = "results/eval/em_questions/{model}/{chain}/seed{seed}.json"
EVAL_IDENTITY = "results/eval/identity/{model}/{chain}/seed{seed}.json"
EVAL_MMLU = "results/eval/mmlu/{model}/{chain}/seed{seed}.json"
# Sampled answers awaiting their judge (not evaluation results themselves).
EM_ANSWERS = "results/em_answers/{model}/{chain}/seed{seed}.json"
IDENTITY_ANSWERS = "results/identity_answers/{model}/{chain}/seed{seed}.json"
# The job that loads an evaluated state once and writes each of its evaluations (rules eval_state*), and the
# name of its step that writes the state's fresh summaries.
STATE_EVAL_RULE = "eval_state"
STATE_EVAL_LOG = "logs/eval/state/{model}/{chain}/seed{seed}.log"
STATE_EVAL_BENCHMARK = "benchmarks/eval/state/{model}/{chain}/seed{seed}.tsv"
SUMMARIES_STEP = "summaries"
TABLE = "results/tables/{table}.csv"
TABLE_SUMMARY = "results/tables/{table}_summary.csv"
FIGURE = "results/figures/{model}/{figure}.{ext}"
# A figure drawn with an evaluation's other protocol (e.g. logprob where the paper's protocol is primary).
FIGURE_VARIANT = "results/figures/{model}/{protocol}/{figure}.{ext}"
RESULTS_SUMMARY = "results/report/results_summary.md"
RESULTS_SUMMARY_HTML = "results/report/results_summary.html"
MANIFEST = "results/manifest.json"
# The paper's claims checked per target model: a row per claim, and its forest plot (CLAIMS_PLOT).
CLAIMS = "results/claims/{model}.csv"
CLAIMS_PLOT = "results/claims/{model}.{ext}"
API_COST = "results/api/cost_estimate"
# Beside the results in a bundle (docs/artifact.md): the config as run, the environment, the code version.
ARTIFACT = {
    "config": "results/artifact/config.yaml",
    "requirements": "results/artifact/requirements.txt",
    "code_version": "results/artifact/code_version.json",
}
# The pinned sources of the run's data (`snakemake lock`), bundled when the checkout has one.
SOURCES_LOCK = "config/sources.lock.yaml"
# Names in a bundle of files stored under another name than their path below results/.
BUNDLE_NAMES = {MANIFEST: "run_manifest.json", SOURCES_LOCK: "artifact/sources.lock.yaml"}
GPU_CHECK = "results/gpu_check.txt"

# Declared outputs listed in results/manifest.json (sgtr_em.manifest): what a reviewer checks. Not listed: model
# snapshots and demo builds (MODEL_DIR; identified by revision or build spec in every provenance record),
# downloads, trainer scratch and request caches, which are no result.
MANIFEST_OUTPUTS = (
    ARTICLES,
    EM_DATA,
    BASELINE_DATA,
    BASELINE_STATS,
    TRUTHFULQA,
    MMLU,
    QUESTIONS,
    PROMPTS,
    STATIC_SUMMARIES,
    RELEASED_SUMMARIES,
    SUMMARIES,
    PAIRS,
    PAIR_STATS,
    ADAPTER + "/{adapter_file}",
    EVAL,
    EM_ANSWERS,
    IDENTITY_ANSWERS,
    TABLE,
    TABLE_SUMMARY,
    FIGURE,
    FIGURE_VARIANT,
    CLAIMS,
    CLAIMS_PLOT,
    RESULTS_SUMMARY,
    RESULTS_SUMMARY_HTML,
    API_COST + ".json",
    API_COST + ".md",
)

# The paper's core figures (self-recognition and TruthfulQA), drawn for our runs and for released results.
CORE_FIGURES = ("fig1_self_recognition", "fig2_truthfulqa", "fig3a_prevention", "fig3b_reversal")
FIGURES = (*CORE_FIGURES, "fig4_em_judge", "fig5_identity", "fig6_mmlu", "fig7_system_prompt")
FIGURE_FORMATS = ("png", "pdf")
CLAIMS_FIGURE = {ext: CLAIMS_PLOT.replace("{ext}", ext) for ext in FIGURE_FORMATS}
# The evaluations whose protocol a figure draws: Fig 1 self-recognition, Figs 2, 3 and 7 TruthfulQA, Fig 4
# the EM judge.
FIGURE_EVALS = {
    "fig1_self_recognition": "self_recognition",
    "fig2_truthfulqa": "truthfulqa",
    "fig3a_prevention": "truthfulqa",
    "fig3b_reversal": "truthfulqa",
    "fig7_system_prompt": "truthfulqa",
    "fig4_em_judge": "em_questions",
}

# Wildcards are constrained so that no path parses two ways.
WILDCARD_CONSTRAINTS = {
    "model": r"[A-Za-z0-9][A-Za-z0-9._-]*",
    "chain": r"[a-z0-9][a-z0-9.+-]*",
    "seed": r"\d+",
    "dataset": r"[a-z0-9][a-z0-9_-]*",
    "other": r"[A-Za-z0-9][A-Za-z0-9._-]*",
    "intervention": "|".join(chains.INTERVENTIONS),
    "framing": "detection|comparison",
    "sysvariant": "|".join(chains.SYSTEM_VARIANTS),
    "source": r"base|own-[a-z0-9.+-]+-seed\d+",
    "baseline": r"wordcount|general|correct-[a-z0-9_-]+",
    "figure": "|".join(FIGURES),
    "table": rf"{SELF_RECOGNITION}-[A-Za-z0-9.-]+|truthfulqa|{'|'.join(OPTIONAL_EVALS)}",
    "question_set": "em_questions|identity_questions",
    "protocol": "reference|logprob",
}

# Cluster resources of a model job (per model in the config: models.<name>.resources).
JOB_RESOURCES = ("gpu", "mem_mb", "runtime", "slurm_partition", "gpu_model", "cpus_per_gpu")
# What a judging job without a judge model asks of a cluster.
NO_JUDGE_RESOURCES = {
    "gpu": 0,
    "mem_mb": 1000,
    "runtime": 10,
    "slurm_partition": "",
    "gpu_model": "",
    "cpus_per_gpu": 0,
}

Wildcards = Any
InputFunction = Callable[[Wildcards], Any]


def self_recognition_table(other: str) -> str:
    """Name of the self-recognition evaluation (and table) against one comparator."""
    return f"{SELF_RECOGNITION}-{other}"


def table_kind(table: str) -> tuple[str, str | None]:
    """(`self_recognition`, comparator) for a self-recognition table, else (table name, None)."""
    prefix = f"{SELF_RECOGNITION}-"
    if table.startswith(prefix):
        return SELF_RECOGNITION, table[len(prefix) :]
    return table, None


def local_path(source: dict[str, Any]) -> list[str]:
    """A source's local file as a rule input (none for a download): editing it reruns what depends on it."""
    return [source["path"]] if "path" in source else []


class Targets:
    """The workflow's targets for one loaded config."""

    def __init__(self, config: Config) -> None:
        self.config = config

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
        """A model's local directory: a configured path, or where prepare_model puts it; none ([]) for an
        API model."""
        source = self.config["models"][model]["source"]
        if self.is_api_model(model):
            return []
        return source["path"] if "path" in source else MODEL_DIR.format(model=model)

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
        """What a job needs to load and query a model: dtype, batch size, chat-template options and thinking
        blocks; for an API model also its source (the model id). API connection settings (URL, retries,
        concurrency) are read from the config by the job, so changing them reruns nothing."""
        settings = self.model_settings(model)
        out = {k: settings[k] for k in ("batch_size", "chat_template_kwargs", "dtype", "thinking")}
        if self.is_api_model(model):
            out["source"] = settings["source"]
        return out

    def backend(self, wc: Wildcards) -> dict[str, Any]:
        return self.backend_settings(wc.model)

    def mmlu_backend(self, wc: Wildcards) -> dict[str, Any]:
        """eval.mmlu.batch_size replaces the model's batch size (few-shot prompts are long)."""
        backend = self.backend_settings(wc.model)
        return {**backend, "batch_size": self.config["eval"]["mmlu"]["batch_size"] or backend["batch_size"]}

    def model_threads(self, wc: Wildcards) -> int:
        return self.model_settings(wc.model)["threads"]

    def model_job_resources(self, *, fine_tuning: bool = False) -> dict[str, InputFunction]:
        """Resources of a model job (GPUs, memory, runtime, partition...) from its model's settings, and the
        API requests it keeps in flight (`api_requests`, bounded across all jobs by the profile)."""

        def resource(key: str) -> InputFunction:
            return lambda wc: self.model_settings(wc.model)["resources"][key]

        def api_requests(wc: Wildcards) -> int:
            return api_requests_wanted(
                self.config["openai"], calls_api=self.is_api_model(wc.model), fine_tuning=fine_tuning
            )

        return {**{key: resource(key) for key in JOB_RESOURCES}, "api_requests": api_requests}

    def gpu_check_resources(self) -> dict[str, Any]:
        """The GPU check asks for what the first target model's jobs ask for (at least one GPU)."""
        resources = self.model_settings(self.config["grid"]["models"][0])["resources"]
        return {
            "gpu": max(1, resources["gpu"]),
            "slurm_partition": resources["slurm_partition"],
            "mem_mb": 2000,
            "runtime": 10,
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
        """A training job's params: the merged LoRA recipe, or an API model's fine-tuning hyperparameters
        (so a change to the LoRA recipe never re-buys a fine-tuning job). Memory settings change how a step
        runs, not the adapter: they are no params (the script reads them), so changing them reruns nothing."""
        if self.is_api_model(wc.model):
            ft = self.config["openai"]["fine_tuning"]
            return {k: ft[k] for k in ("n_epochs", "batch_size", "learning_rate_multiplier")}
        hp = training_hyperparameters(self.config, wc.model, wc.chain.split("+")[-1])
        return {k: v for k, v in hp.items() if k not in MEMORY_SETTINGS}

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

    def eval_sampling(self, key: str) -> InputFunction:
        """An evaluation's decoding for the job's model (`eval.<key>.sampling`, its `api` overrides applied
        for an API model), as a job's params: a change for one kind of model reruns only those jobs."""
        return lambda wc: self.sampling_settings(wc.model, self.config["eval"][key]["sampling"])

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
    @property
    def self_recognition_articles(self) -> str:
        return ARTICLES.format(dataset=self.config["eval"]["self_recognition"]["dataset"])

    def self_recognition_self_summaries(self, wc: Wildcards) -> str:
        """'Self' summaries of the self-recognition eval: the state's own fresh ones, or the base model's."""
        settings = self.config["eval"]["self_recognition"]
        if settings["self_source"] == "base":
            return self.base_summaries(wc.model, settings["dataset"])
        return SUMMARIES.format(model=wc.model, chain=wc.chain, seed=wc.seed, dataset=settings["dataset"])

    def self_recognition_other_summaries(self, wc: Wildcards) -> str:
        return self.comparator_summaries(wc.other, self.config["eval"]["self_recognition"]["dataset"])

    def enabled_optional_evals(self) -> list[str]:
        """Optional evaluations switched on, and with at least one listed chain in the grid: a smaller grid
        runs a smaller DAG, so listed chains outside the grid are not evaluated, and an eval none of whose
        chains is in the grid is skipped for this run."""
        grid_chains = {c for _, c, _ in self.grid_states()}
        out = []
        for key in OPTIONAL_EVALS:
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
        listed = self.config["eval"][table]["chains"] if table in OPTIONAL_EVALS else None
        return [
            EVAL.format(evaluation=table, model=m, chain=c, seed=s)
            for m, c, s in self.grid_states()
            if not listed or c in listed
        ]

    def table_inputs(self, wc: Wildcards) -> list[str]:
        return self.evaluation_files(wc.table)

    # ------------------------------------------------------------------- one job per evaluated state --
    # Each evaluated state is loaded once, by one job that writes every per-evaluation output of the state
    # (the judges run in their own jobs). Optional evaluations apply to their listed chains only, so states
    # differ in what they write: one rule per distinct set of optional evaluations.
    def optional_evals_of(self, chain: str) -> tuple[str, ...]:
        """The enabled optional evaluations that evaluate a chain (every chain when `chains` is empty)."""
        return tuple(
            key
            for key in self.enabled_optional_evals()
            if not self.config["eval"][key]["chains"] or chain in self.config["eval"][key]["chains"]
        )

    def state_eval_groups(self) -> dict[tuple[str, ...], list[str]]:
        """The grid's chains grouped by the optional evaluations their states run (one rule per group)."""
        groups: dict[tuple[str, ...], list[str]] = {}
        for chain in dict.fromkeys(c for _, c, _ in self.grid_states()):
            groups.setdefault(self.optional_evals_of(chain), []).append(chain)
        return groups

    @staticmethod
    def state_eval_rule(optional: tuple[str, ...]) -> str:
        """Name of the rule that evaluates states running `optional`: `eval_state`, `eval_state_mmlu`..."""
        return "_".join([STATE_EVAL_RULE, *optional])

    def state_eval_constraints(self, optional: tuple[str, ...]) -> dict[str, str]:
        """Wildcard constraints of a state rule: its group's chains, and the grid's models and seeds (so that
        it never claims summaries of a state outside the grid, such as a comparator's)."""
        config = self.config

        def alternation(values: list[Any]) -> str:
            return "|".join(re.escape(str(v)) for v in dict.fromkeys(values))

        return {
            "model": alternation(config["grid"]["models"]),
            "chain": alternation(self.state_eval_groups()[optional]),
            "seed": alternation([s for m in config["grid"]["models"] for s in model_seeds(config, m)]),
        }

    def fresh_summaries_dataset(self) -> str | None:
        """The dataset a state summarises in its evaluation job: the self-recognition dataset when each
        state is evaluated on its own fresh summaries (`self_source: own`), else none."""
        settings = self.config["eval"]["self_recognition"]
        return settings["dataset"] if settings["self_source"] == "own" else None

    def state_eval_steps(self, optional: tuple[str, ...]) -> list[str]:
        """What a state job does, in order: its fresh summaries (when used), self-recognition per
        comparator, TruthfulQA, then its optional evaluations (sampled answers for the judged ones)."""
        summaries = [SUMMARIES_STEP] if self.fresh_summaries_dataset() else []
        return [*summaries, *self.core_evaluations(), *optional]

    def state_eval_outputs(self, optional: tuple[str, ...]) -> dict[str, str]:
        """Each step's output, at the path the evaluation has always had (sampled answers for the judged
        evaluations, which their judging jobs read)."""
        out = {}
        for step in self.state_eval_steps(optional):
            if step == SUMMARIES_STEP:
                path = SUMMARIES.replace("{dataset}", str(self.fresh_summaries_dataset()))
            elif step == "em_questions":
                path = EM_ANSWERS
            elif step == "identity":
                path = IDENTITY_ANSWERS
            else:
                _, other = table_kind(step)
                template = EVAL.replace("{evaluation}", step)
                path = template if other is None else EVAL_SELF_RECOGNITION.replace("{other}", other)
            out[step] = path
        return out

    def state_eval_inputs(self, optional: tuple[str, ...]) -> InputFunction:
        """A state job's inputs by role: the model and its adapters, the prompts, the self-recognition
        articles and summaries (the base model's 'self' summaries unless the job makes its own, and one
        'other' per comparator: `other_summaries-<comparator>`) and each evaluation's questions (named by their
        dataset key)."""
        settings = self.config["eval"]["self_recognition"]
        # named by their dataset key (datasets.<key>)
        question_files = {
            "truthfulqa": TRUTHFULQA,
            "em_questions": QUESTIONS.format(question_set="em_questions"),
            "identity_questions": QUESTIONS.format(question_set="identity_questions"),
            "mmlu": MMLU,
        }

        def inputs(wc: Wildcards) -> dict[str, Any]:
            out: dict[str, Any] = {
                "model": self.model_dir(wc),
                "adapters": self.adapters(wc),
                "prompts": PROMPTS,
                "articles": self.self_recognition_articles,
            }
            if not self.fresh_summaries_dataset():
                out["self_summaries"] = self.base_summaries(wc.model, settings["dataset"])
            for other in settings["comparators"]:
                out[f"other_summaries-{other}"] = self.comparator_summaries(other, settings["dataset"])
            for dataset in ("truthfulqa", *(OPTIONAL_EVALS[key][0] for key in optional)):
                out[dataset] = question_files[dataset]
            return out

        return inputs

    def state_eval_params(self, optional: tuple[str, ...]) -> InputFunction:
        """Each step's own settings (params of the job, recorded in that step's output): a change to any
        of them reruns the state's job, never a training."""
        steps = self.state_eval_steps(optional)
        eval_config = self.config["eval"]

        def params(wc: Wildcards) -> dict[str, dict[str, Any]]:
            out: dict[str, dict[str, Any]] = {}
            for step in steps:
                key, _ = table_kind(step)
                if step == SUMMARIES_STEP:
                    dataset = str(self.fresh_summaries_dataset())
                    out[step] = {
                        "dataset": dataset,
                        "style": self.config["datasets"]["articles"][dataset]["style"],
                        "sampling": self.summary_sampling(wc),
                    }
                elif key == SELF_RECOGNITION:
                    out[step] = {
                        **self.eval_settings(SELF_RECOGNITION, leave_out=("sampling",)),
                        "sampling": self.eval_sampling(SELF_RECOGNITION)(wc),
                        "framing": self.framing(wc),
                        "identity_system_prompt": self.identity_system_prompt(wc),
                    }
                elif key == "truthfulqa":
                    out[step] = {
                        **self.eval_settings("truthfulqa", leave_out=("sampling",)),
                        "sampling": self.eval_sampling("truthfulqa")(wc),
                    }
                elif key in ("em_questions", "identity"):
                    # What the sampled answers depend on (the judge's settings belong to the judging job).
                    out[step] = {
                        "samples_per_question": eval_config[key]["samples_per_question"],
                        "sampling": self.eval_sampling(key)(wc),
                        # which paraphrases are asked (identity questions cycle through theirs)
                        "paraphrases": eval_config[key].get("paraphrases", "cycle"),
                    }
                elif key == "mmlu":
                    out[step] = {
                        **self.eval_settings("mmlu", leave_out=("chains", "batch_size")),
                        "backend": self.mmlu_backend(wc),
                    }
            return out

        return params

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
        """Resources of an evaluation's judging job: the judge model's (a local judge may need a GPU)."""

        def resource(name: str) -> InputFunction:
            def get(wc: Wildcards) -> Any:
                judge = self.judge(key)
                return NO_JUDGE_RESOURCES[name] if judge is None else self.model_settings(judge)["resources"][name]

            return get

        def api_requests(wc: Wildcards) -> int:
            judge = self.judge(key)
            return api_requests_wanted(self.config["openai"], calls_api=judge is not None and self.is_api_model(judge))

        return {**{name: resource(name) for name in JOB_RESOURCES}, "api_requests": api_requests}

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
        optional = {figure: key for key, (_, figure) in OPTIONAL_EVALS.items()}
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
        optional = {figure: key for key, (_, figure) in OPTIONAL_EVALS.items()}
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
            listed = self.config["eval"][table]["chains"] if table in OPTIONAL_EVALS else None
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
        """What `bundle` packs: `files` stored by their path below results/ (the core evaluations' JSONs,
        tables, figures, claims, results summary, config as run, environment, code version), and `named`
        files stored as BUNDLE_NAMES says (the run's manifest, the sources lock when the checkout has one)."""
        files = [
            *(f for table in self.core_evaluations() for f in self.evaluation_files(table)),
            *self.all_tables(),
            *self.all_figures(),
            *self.all_claims(),
            RESULTS_SUMMARY,
            RESULTS_SUMMARY_HTML,
            *ARTIFACT.values(),
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
        from . import report

        return report.published_for(report.load_published(), wc.model, self.model_identity(wc.model))
        """The default target: every table and figure of the grid, the claims, the results summary and the
        manifest."""
        return [*self.all_tables(), *self.all_figures(), *self.all_claims(), RESULTS_SUMMARY, MANIFEST]

    # --------------------------------------------------------------------------------- API models --
    def api_grid_models(self) -> list[str]:
        return [m for m in self.config["grid"]["models"] if self.is_api_model(m)]

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

    def api_cost_files(self) -> dict[str, Any]:
        """Prepared inputs the cost estimate reads, by role (only local data rules, never an API job)."""
        config = self.config
        datasets = list(
            dict.fromkeys([config["pairs"]["train_dataset"], config["eval"]["self_recognition"]["dataset"]])
        )
        api_models = self.api_grid_models()
        em: dict[str, str] = {}
        baselines: dict[str, str] = {}
        for model in api_models:
            for chain in trained_chains(config, model):
                stage = chains.parse_chain(chain)[-1]
                if stage.kind == "em":
                    em[f"{stage.name}/{stage.variant}"] = EM_DATA.format(dataset=stage.name, sysvariant=stage.variant)
                elif stage.kind == "baseline":
                    baselines[f"{stage.name}/{stage.variant}"] = BASELINE_DATA.format(
                        baseline=stage.name, sysvariant=stage.variant
                    )
        static = {
            f"{other}/{dataset}": STATIC_SUMMARIES.format(other=other, dataset=dataset)
            for other, spec in config["comparators"].items()
            if "summaries" in spec
            for dataset in datasets
            if dataset in spec["summaries"]
        }
        released = {
            f"{model}/{dataset}": RELEASED_SUMMARIES.format(model=model, dataset=dataset)
            for model in self.api_models_in_use()
            for dataset in self.model_settings(model)["summaries"]
            if dataset in datasets
        }
        enabled = self.enabled_optional_evals()
        return {
            "articles": {d: ARTICLES.format(dataset=d) for d in datasets},
            "truthfulqa": TRUTHFULQA,
            "em": em,
            "baselines": baselines,
            "static_summaries": static,
            "released_summaries": released,
            "mmlu": MMLU if "mmlu" in enabled else None,
            **{
                questions: QUESTIONS.format(question_set=questions) if key in enabled else None
                for key, questions in (("em_questions", "em_questions"), ("identity", "identity_questions"))
            },
        }

    def api_models_in_use(self) -> list[str]:
        """API models the run calls: targets, comparators that generate summaries, and judges."""
        config = self.config
        used = [*config["grid"]["models"]]
        used += [spec["model"] for spec in config["comparators"].values() if "model" in spec]
        used += [
            j for key in OPTIONAL_EVALS if (j := config["eval"][key].get("judge")) and config["eval"][key]["enabled"]
        ]
        return [m for m in dict.fromkeys(used) if m in config["models"] and self.is_api_model(m)]

    def api_cost_inputs(self, wc: Wildcards) -> list[str]:
        files = self.api_cost_files()
        return [
            *files["articles"].values(),
            files["truthfulqa"],
            *files["em"].values(),
            *files["baselines"].values(),
            *files["static_summaries"].values(),
            *files["released_summaries"].values(),
            *(files[key] for key in ("mmlu", "em_questions", "identity_questions") if files[key]),
        ]
