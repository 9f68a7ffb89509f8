# Config access, paths, target lists and input functions. The logic lives in the sgtr_em package;
# importing it here is cheap (no torch at parse time).
from sgtr_em import chains as chainlib
from sgtr_em import config as cfglib
from sgtr_em import backends

cfglib.apply_subset(config)
cfglib.check_references(config)
cfglib.canonicalise_in_place(config)

MODEL_DIR = "results/models/{model}"
ARTICLES = "results/data/articles/{dataset}.jsonl"
EM_DATA = "results/data/em/{dataset}/{sysvariant}.jsonl"
BASELINE_DATA = "results/data/baselines/{baseline}/{sysvariant}.jsonl"
BASELINE_STATS = "results/data/baselines/{baseline}/{sysvariant}.stats.json"
TRUTHFULQA = "results/data/truthfulqa.jsonl"
STATIC_SUMMARIES = "results/data/comparators/{other}/{dataset}.jsonl"
RELEASED_SUMMARIES = "results/data/released_summaries/{model}/{dataset}.jsonl"
SUMMARIES = "results/summaries/{model}/{chain}/seed{seed}/{dataset}.jsonl"
PAIRS = "results/pairs/{model}/{source}/{intervention}/{framing}/{sysvariant}.jsonl"
PAIR_STATS = (
    "results/pairs/{model}/{source}/{intervention}/{framing}/{sysvariant}.stats.json"
)
ADAPTER = "results/adapters/{model}/{chain}/seed{seed}"
EVAL_SELFREC = "results/eval/selfrec-{other}/{model}/{chain}/seed{seed}.json"
EVAL_TRUTHFULQA = "results/eval/truthfulqa/{model}/{chain}/seed{seed}.json"
EVAL_EM_QUESTIONS = "results/eval/em-questions/{model}/{chain}/seed{seed}.json"
# Sampled answers awaiting the judge (not an evaluation result themselves).
EM_ANSWERS = "results/em_answers/{model}/{chain}/seed{seed}.json"
EVAL_IDENTITY = "results/eval/identity/{model}/{chain}/seed{seed}.json"
IDENTITY_ANSWERS = "results/identity_answers/{model}/{chain}/seed{seed}.json"
EVAL_MMLU = "results/eval/mmlu/{model}/{chain}/seed{seed}.json"
MMLU = "results/data/mmlu.jsonl"
QUESTIONS = "results/data/questions/{question_set}.json"
# The paper's core figures (self-recognition and TruthfulQA), drawn for our runs and for released results.
CORE_FIGURES = (
    "fig1_self_recognition",
    "fig2_truthfulqa",
    "fig3a_prevention",
    "fig3b_reversal",
)
FIGURES = (
    *CORE_FIGURES,
    "fig4_em_judge",
    "fig5_identity",
    "fig6_mmlu",
    "fig7_system_prompt",
)
# Optional evaluations: table name -> (config key under `eval`, dataset key of its questions, figure).
OPTIONAL_EVALS = {
    "em-questions": ("em_questions", "em_questions", "fig4_em_judge"),
    "identity": ("identity", "identity_questions", "fig5_identity"),
    "mmlu": ("mmlu", "mmlu", "fig6_mmlu"),
}


wildcard_constraints:
    model=r"[A-Za-z0-9][A-Za-z0-9._-]*",
    chain=r"[a-z0-9][a-z0-9.+-]*",
    seed=r"\d+",
    dataset=r"[a-z0-9][a-z0-9_-]*",
    other=r"[A-Za-z0-9][A-Za-z0-9._-]*",
    intervention="|".join(chainlib.INTERVENTIONS),
    framing="detection|comparison",
    sysvariant="|".join(chainlib.SYSTEM_VARIANTS),
    source=r"base|own-[a-z0-9.+-]+-seed\d+",
    baseline=r"wordcount|general|correct-[a-z0-9_-]+",
    figure="|".join(FIGURES),
    table=r"selfrec-[A-Za-z0-9.-]+|truthfulqa|em-questions|identity|mmlu",
    question_set="em_questions|identity_questions",


def model_setting(name, key):
    return cfglib.model_settings(config, name)[key]


def backend_settings(model):
    """What a job needs to load and query a model: dtype, batch size, chat-template options; for an
    API model also its source (the model id). API connection settings (URL, retries, concurrency)
    are read from the config by the job, so changing them reruns nothing."""
    settings = cfglib.model_settings(config, model)
    out = {k: settings[k] for k in ("batch_size", "chat_template_kwargs", "dtype")}
    if is_api_model(model):
        out["source"] = settings["source"]
    return out


def model_identity(model):
    """Hub id or API model id of a model (its short name for built or local models)."""
    source = config["models"][model]["source"]
    return source.get("hf") or source.get("openai") or model


def is_api_model(model):
    """A model behind the OpenAI API (`source: {openai: <id>}`): no local files, no GPU."""
    return backends.model_kind(config["models"][model]["source"]) == "openai"


def stage_hyperparameters(wc):
    """A training job's params: the merged LoRA recipe, or an API model's fine-tuning hyperparameters
    (so a change to the LoRA recipe never re-buys a fine-tuning job)."""
    if is_api_model(wc.model):
        ft = config["openai"]["fine_tuning"]
        return {
            k: ft[k] for k in ("n_epochs", "batch_size", "learning_rate_multiplier")
        }
    hp = cfglib.training_hyperparameters(config, wc.model, wc.chain.split("+")[-1])
    # Memory settings change how a step runs, not the adapter: no rerun (the script reads them).
    return {k: v for k, v in hp.items() if k not in cfglib.MEMORY_SETTINGS}


def model_resources(key):
    """Resource of the job's model (GPU count, memory, runtime), per model size in the config."""
    return lambda wc: model_setting(wc.model, "resources")[key]


def model_threads(wc):
    return model_setting(wc.model, "threads")


def model_path(model):
    """A model's local directory: a configured path, or where prepare_model puts it; none ([]) for
    an API model."""
    source = config["models"][model]["source"]
    if is_api_model(model):
        return []
    return source["path"] if "path" in source else MODEL_DIR.format(model=model)


def model_dir(wc):
    return model_path(wc.model)


def demo_corpus(wc):
    """Text a tiny demo model's tokenizer is trained on (nothing for hub models)."""
    if "builder" not in config["models"][wc.model]["source"]:
        return []
    return [
        *expand(ARTICLES, dataset=list(config["datasets"]["articles"])),
        *expand(EM_DATA, dataset=list(config["datasets"]["em"]), sysvariant="default"),
        TRUTHFULQA,
    ]


def state_adapters(model, chain, seed):
    """Adapters that make a model state, in training order (none for base)."""
    return [
        ADAPTER.format(model=model, chain=c, seed=seed)
        for c in chainlib.prefixes(chain)
    ]


def base_summaries(model, dataset):
    """A model's base summaries: a given file (models.<name>.summaries.<dataset>, e.g. the authors'
    released ones; generation is skipped) or generated ones, seeded by summary_seed."""
    if dataset in model_setting(model, "summaries"):
        return RELEASED_SUMMARIES.format(model=model, dataset=dataset)
    return SUMMARIES.format(
        model=model, chain="base", seed=config["summary_seed"], dataset=dataset
    )


def comparator_summaries(other, dataset):
    """'Other' summaries: a configured model's base summaries, or a prepared static file."""
    spec = config["comparators"][other]
    if "model" in spec:
        return base_summaries(spec["model"], dataset)
    return STATIC_SUMMARIES.format(other=other, dataset=dataset)


def pair_source(chain, seed):
    """Path segment naming whose summaries are 'self' in the pairs of a chain's last stage: `base`, or
    with pairs.source own and a trained parent, `own-<parent chain>-seed<N>`."""
    parent = chainlib.parent(chain)
    if config["pairs"]["source"] == "base" or parent == chainlib.BASE:
        return "base"
    return f"own-{parent}-seed{seed}"


def self_source_summaries(model, source, dataset):
    """'Self' summaries of pair files: the base model's, or those of the named parent state."""
    if source == "base":
        return base_summaries(model, dataset)
    chain, _, seed = source.removeprefix("own-").rpartition("-seed")
    return SUMMARIES.format(model=model, chain=chain, seed=seed, dataset=dataset)


def selfrec_self_summaries(wc):
    """'Self' summaries of the self-recognition eval: the state's own fresh ones, or the base model's."""
    dataset = config["eval"]["self_recognition"]["dataset"]
    if config["eval"]["self_recognition"]["self_source"] == "base":
        return base_summaries(wc.model, dataset)
    return SUMMARIES.format(
        model=wc.model, chain=wc.chain, seed=wc.seed, dataset=dataset
    )


def pair_file(model, chain, seed, framing=None):
    """Pair file that trains the last stage (an identity intervention) of a chain."""
    stage = chainlib.parse_chain(chain)[-1]
    return PAIRS.format(
        model=model,
        source=pair_source(chain, seed),
        intervention=stage.name,
        framing=framing or model_setting(model, "framing"),
        sysvariant=stage.variant,
    )


def stage_train_file(wc):
    """Training data of a chain's last stage."""
    stage = chainlib.parse_chain(wc.chain)[-1]
    if stage.kind == "em":
        if stage.variant == "identity":
            raise ValueError(
                f"{stage.token}: EM data has no system turn; `default` already gives the template's identity prompt"
            )
        return EM_DATA.format(dataset=stage.name, sysvariant=stage.variant)
    if stage.kind == "baseline":
        return BASELINE_DATA.format(baseline=stage.name, sysvariant=stage.variant)
    return pair_file(wc.model, wc.chain, wc.seed)


def baseline_inputs(wc):
    """Prepared data a baseline's training file is made from: the EM chats whose user turns the
    wordcount baseline counts (nothing for chat datasets, which are fetched)."""
    if wc.baseline != chainlib.WORDCOUNT:
        return []
    return EM_DATA.format(
        dataset=cfglib.wordcount_em_dataset(config), sysvariant="default"
    )


def baseline_spec(wc):
    datasets = config["datasets"]
    if wc.baseline == chainlib.WORDCOUNT:
        return datasets["wordcount"]
    if wc.baseline == chainlib.GENERAL:
        return datasets["general"]
    return datasets["correct"][wc.baseline.removeprefix(chainlib.CORRECT_PREFIX)]


def all_pair_files():
    """Every pair file of the grid: each model's framing plus the configured extra framings (with
    pairs.source own, one per trained parent state and seed)."""
    out = []
    for model in config["grid"]["models"]:
        framings = dict.fromkeys(
            [model_setting(model, "framing"), *config["pairs"]["framings"]]
        )
        chains = [
            c
            for c in cfglib.trained_chains(config, model)
            if chainlib.parse_chain(c)[-1].kind == "intervention"
        ] or ["sgtr"]
        for chain in chains:
            for seed in cfglib.model_seeds(config, model):
                for framing in framings:
                    out.append(pair_file(model, chain, seed, framing))
    return list(dict.fromkeys(out))


def grid_evals(template, **extra):
    return [
        template.format(model=m, chain=c, seed=s, **extra)
        for m, c, s in cfglib.grid_states(config)
    ]


def optional_eval_enabled(table):
    return config["eval"][OPTIONAL_EVALS[table][0]]["enabled"]


def enabled_optional_evals():
    """Optional evaluations switched on in the config, checked against the rest of the config."""
    out = []
    for table, (key, dataset, _) in OPTIONAL_EVALS.items():
        settings = config["eval"][key]
        if not settings["enabled"]:
            continue
        if dataset not in config["datasets"]:
            raise ValueError(f"eval.{key}.enabled needs datasets.{dataset}")
        judge = settings.get("judge")
        if judge is not None and judge not in config["models"]:
            raise ValueError(f"eval.{key}.judge: unknown model {judge!r}")
        grid_chains = {
            c for m in config["grid"]["models"] for c in cfglib.model_chains(config, m)
        }
        for chain in settings["chains"] or []:
            chainlib.parse_chain(chain, list(config["datasets"]["em"]))
        # A smaller grid runs a smaller DAG: listed chains outside the grid are not evaluated, and an
        # eval none of whose chains is in the grid is skipped for this run.
        if settings["chains"] and not grid_chains.intersection(settings["chains"]):
            continue
        out.append(table)
    return out


def table_evals(table):
    """Evaluation JSONs of one table: every grid state, or the configured chains of an optional eval."""
    template = f"results/eval/{table}/{{model}}/{{chain}}/seed{{seed}}.json"
    chains = (
        config["eval"][OPTIONAL_EVALS[table][0]]["chains"]
        if table in OPTIONAL_EVALS
        else None
    )
    return [
        template.format(model=m, chain=c, seed=s)
        for m, c, s in cfglib.grid_states(config)
        if chains is None or c in chains
    ]


def question_source_file(wc):
    """A question set's local file (none for a download)."""
    path = config["datasets"][wc.question_set]["source"].get("path")
    return [path] if path else []


def mmlu_source_file(wc):
    """MMLU's local file (none for a download)."""
    path = config["datasets"]["mmlu"]["source"].get("path")
    return [path] if path else []


def judge_model_inputs(key):
    """The judge's local model directory (none for an API judge or no judge)."""

    def inputs(wc):
        judge = config["eval"][key].get("judge")
        return [] if judge is None else model_path(judge)

    return inputs


def judge_runs_locally(key):
    """Whether an evaluation's judging job is a local rule: an API judge (the job runs where Snakemake
    runs, which has the network) or no judge at all (classification by rules, seconds of CPU).
    """
    settings = config["eval"][key]
    judge = settings.get("judge")
    # Evaluated at parse time: a disabled eval's default judge need not be a configured model.
    return settings["enabled"] and (
        judge is None or (judge in config["models"] and is_api_model(judge))
    )


# What a judging job without a judge model asks of a cluster.
NO_JUDGE_RESOURCES = {
    "gpu": 0,
    "mem_mb": 1000,
    "runtime": 10,
    "slurm_partition": "",
    "gpu_model": "",
    "cpus_per_gpu": 0,
}


def judge_resources(key, resource):
    """Resource of an evaluation's judging job: the judge model's (a local judge may need a GPU)."""

    def get(wc):
        judge = config["eval"][key].get("judge")
        if judge is None:
            return NO_JUDGE_RESOURCES[resource]
        return model_setting(judge, "resources")[resource]

    return get


def judge_threads(key):
    def get(wc):
        judge = config["eval"][key].get("judge")
        return 1 if judge is None else model_setting(judge, "threads")

    return get


def judge_settings(key):
    """What a job needs to load the judge: its name, source identity and backend settings."""
    judge = config["eval"][key].get("judge")
    if judge is None:
        return None
    source = config["models"][judge]["source"]
    return {
        "name": judge,
        "identity": {k: source[k] for k in ("hf", "revision", "openai") if k in source}
        or {"model": judge},
        "backend": backend_settings(judge),
    }


def selfrec_table():
    return f"selfrec-{config['eval']['self_recognition']['comparators'][0]}"


def all_tables():
    """A tidy table and a per-condition summary per evaluation (every comparator)."""
    tables = [f"selfrec-{o}" for o in config["eval"]["self_recognition"]["comparators"]]
    return expand(
        "results/tables/{table}{suffix}.csv",
        table=[*tables, "truthfulqa", *enabled_optional_evals()],
        suffix=("", "_summary"),
    )


def grid_has_system_variants(model):
    """Whether a target model has a condition trained on data in a non-default system variant."""
    return any(
        stage.variant != "default"
        for chain in cfglib.model_chains(config, model)
        for stage in chainlib.parse_chain(chain)
    )


def enabled_figures(model=None):
    """Figures drawn (for one target model): optional evals' when enabled, the system-prompt
    ablation when the grid has a condition in a non-default variant."""
    optional = {OPTIONAL_EVALS[t][2]: t for t in OPTIONAL_EVALS}
    out = []
    for f in FIGURES:
        if f in optional and not optional_eval_enabled(optional[f]):
            continue
        if f == "fig7_system_prompt" and not (
            grid_has_system_variants(model)
            if model
            else any(grid_has_system_variants(m) for m in config["grid"]["models"])
        ):
            continue
        out.append(f)
    return out


def figure_inputs(wc):
    """Summary tables a figure draws from."""
    optional = {figure: table for table, (_, _, figure) in OPTIONAL_EVALS.items()}
    if wc.figure in optional:
        table = optional[wc.figure]
        return {"optional": f"results/tables/{table}_summary.csv"}
    return {
        "selfrec": f"results/tables/{selfrec_table()}_summary.csv",
        "truthfulqa": "results/tables/truthfulqa_summary.csv",
    }


def all_figures():
    """Each figure once per target model (the ablation only where the model has its conditions)."""
    return [
        f"results/figures/{model}/{figure}.{ext}"
        for model in config["grid"]["models"]
        for figure in enabled_figures(model)
        for ext in ("png", "pdf")
    ]


# API models (source: {openai: ...}): targets and the cost estimate's inputs (rules/api.smk).
def api_grid_models():
    return [m for m in config["grid"]["models"] if is_api_model(m)]


def api_model_outputs():
    """Every evaluation of the grid's API models (which pulls in their summaries and fine-tuning jobs)."""
    out = []
    for model, chain, seed in cfglib.grid_states(config):
        if not is_api_model(model):
            continue
        out.append(EVAL_TRUTHFULQA.format(model=model, chain=chain, seed=seed))
        for other in config["eval"]["self_recognition"]["comparators"]:
            out.append(
                EVAL_SELFREC.format(other=other, model=model, chain=chain, seed=seed)
            )
    return out


def api_cost_files():
    """Prepared inputs the cost estimate reads, by role (only local data rules, never an API job)."""
    datasets = [
        config["pairs"]["train_dataset"],
        config["eval"]["self_recognition"]["dataset"],
    ]
    em = {}
    baselines = {}
    for model in api_grid_models():
        for chain in cfglib.trained_chains(config, model):
            stage = chainlib.parse_chain(chain)[-1]
            if stage.kind == "em":
                em[f"{stage.name}/{stage.variant}"] = EM_DATA.format(
                    dataset=stage.name, sysvariant=stage.variant
                )
            elif stage.kind == "baseline":
                baselines[f"{stage.name}/{stage.variant}"] = BASELINE_DATA.format(
                    baseline=stage.name, sysvariant=stage.variant
                )
    static = {
        f"{other}/{dataset}": STATIC_SUMMARIES.format(other=other, dataset=dataset)
        for other, spec in config["comparators"].items()
        if "summaries" in spec
        for dataset in dict.fromkeys(datasets)
        if dataset in spec["summaries"]
    }
    return {
        "articles": {d: ARTICLES.format(dataset=d) for d in dict.fromkeys(datasets)},
        "truthfulqa": TRUTHFULQA,
        "em": em,
        "baselines": baselines,
        "static_summaries": static,
    }


def api_cost_inputs(wc):
    files = api_cost_files()
    return [
        *files["articles"].values(),
        files["truthfulqa"],
        *files["em"].values(),
        *files["baselines"].values(),
        *files["static_summaries"].values(),
    ]
