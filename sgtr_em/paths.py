"""Where the workflow's files go: every output path template, the figures, and the wildcard constraints that make
each path parse one way. Plain constants, no config: rule files, scripts, the manifest, the release path and the
tools read them here (sgtr_em.targets says which files a given config makes)."""

from __future__ import annotations

from . import chains
from .evaluations import EVALUATIONS, SELF_RECOGNITION, question_sets

DOWNLOADS = "results/data/downloads"
# A demo model built by the workflow (prepare_model), and a hub model's record of its snapshot in the hub
# cache (download_model: repository, commit and snapshot folder; the weights stay in the cache, sgtr_em.hub).
MODEL_DIR = "results/models/{model}"
MODEL_RECORD = "results/models/{model}.json"
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
EVAL = "results/eval/{evaluation}/{model}/{chain}/seed{seed}.json"
EVAL_SELF_RECOGNITION = "results/eval/self_recognition-{other}/{model}/{chain}/seed{seed}.json"
EVAL_TRUTHFULQA = "results/eval/truthfulqa/{model}/{chain}/seed{seed}.json"
EVAL_EM_QUESTIONS = "results/eval/em_questions/{model}/{chain}/seed{seed}.json"
EVAL_IDENTITY = "results/eval/identity/{model}/{chain}/seed{seed}.json"
# Sampled answers awaiting their judge (not evaluation results themselves).
EM_ANSWERS = str(EVALUATIONS["em_questions"].answers)
IDENTITY_ANSWERS = str(EVALUATIONS["identity"].answers)
# The jobs that load an evaluated state (rules eval_state*, see Targets.state_jobs), their logs, and where
# they keep finished steps until the job succeeds (outside its outputs: a failed job's outputs are deleted).
STATE_EVAL_RULE = "eval_state"
STATE_EVAL_LOG = "logs/eval/{model}/{chain}/seed{seed}.log"
STATE_EVAL_BENCHMARK = "benchmarks/eval/{model}/{chain}/seed{seed}.tsv"
EVAL_WORK_DIR = "results/checkpoints/eval/{model}/{chain}/seed{seed}"
TABLE = "results/tables/{table}.csv"
TABLE_SUMMARY = "results/tables/{table}_summary.csv"
FIGURE = "results/figures/{model}/{figure}.{ext}"
# A figure drawn with an evaluation's other protocol (e.g. logprob where the paper's protocol is primary).
FIGURE_VARIANT = "results/figures/{model}/{protocol}/{figure}.{ext}"
# The training curves of a model's stages (png, pdf, and the csv of every number drawn).
TRAINING_CURVES = "results/figures/{model}/training_curves.{ext}"
# Where a training job's experiment tracker writes, when finetune.report_to names one that logs to files.
TRACKING_DIR = "logs/tracking/{model}/{chain}/seed{seed}"
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
# The pinned sources of the run's data (`snakemake pin_sources`), bundled when the checkout has one.
SOURCES_LOCK = "config/sources.lock.yaml"
# Names in a bundle of files stored under another name than their path below results/.
BUNDLE_NAMES = {MANIFEST: "run_manifest.json", SOURCES_LOCK: "artifact/sources.lock.yaml"}
GPU_CHECK = "results/gpu_check.txt"

# Declared outputs listed in results/manifest.json (sgtr_em.manifest): what a reviewer checks. Not listed: model
# records and demo builds (MODEL_RECORD names a machine's cache folder, MODEL_DIR a build; each model is
# identified by revision or build spec in every provenance record),
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
    TRAINING_CURVES,
    CLAIMS,
    CLAIMS_PLOT,
    RESULTS_SUMMARY,
    RESULTS_SUMMARY_HTML,
    API_COST + ".json",
    API_COST + ".md",
)

# The paper's core figures (self-recognition and TruthfulQA), drawn for our runs and for released results; then
# the optional evaluations' figures (sgtr_em.evaluations) and the system-prompt ablation.
CORE_FIGURES = ("fig1_self_recognition", "fig2_truthfulqa", "fig3a_prevention", "fig3b_reversal")
SYSTEM_PROMPT_FIGURE = "fig7_system_prompt"
FIGURES = (
    *CORE_FIGURES,
    *(e.figure for e in EVALUATIONS.values() if e.optional and e.figure),
    SYSTEM_PROMPT_FIGURE,
)
FIGURE_FORMATS = ("png", "pdf")
CLAIMS_FIGURE = {ext: CLAIMS_PLOT.replace("{ext}", ext) for ext in FIGURE_FORMATS}
# The evaluations whose protocol a figure draws: Fig 1 self-recognition, Figs 2, 3 and 7 TruthfulQA, Fig 4
# the EM judge.
FIGURE_EVALS = {
    **{e.figure: key for key, e in EVALUATIONS.items() if e.figure},
    "fig3a_prevention": "truthfulqa",
    "fig3b_reversal": "truthfulqa",
    SYSTEM_PROMPT_FIGURE: "truthfulqa",
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
    "table": rf"{SELF_RECOGNITION}-[A-Za-z0-9.-]+|{'|'.join(k for k in EVALUATIONS if k != SELF_RECOGNITION)}",
    "question_set": "|".join(question_sets()),
    "protocol": "reference|logprob",
}
