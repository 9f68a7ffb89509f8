"""Cost estimate of the API part of a run, before spending: requests, tokens and dollars per API job.

Every job of the DAG that calls an API is listed (`api_jobs`): fine-tuning jobs, summaries, self-recognition,
TruthfulQA, MMLU, EM and identity answers of API models, and an API judge over every EM and identity
evaluation (of every grid model, local ones included). Each job is estimated by running the code its rule
runs on a dry-run model that records the requests it would send instead of sending them (same prompts,
protocols, sampling draws and logprob requests); a request already counted for the same model state is
free, as the request cache answers it.

Inputs that do not exist yet are stood in for: a model's summaries by an existing file of its own (if a
previous run left one), else by the comparator's summary of the same article, else by a reply of
`summaries.max_new_tokens` tokens; sampled answers by an existing answers file, else by replies of
`max_new_tokens` tokens (so judge prompts are upper bounds, and every such answer is counted as needing
the identity judge). Output tokens are upper bounds (max_new_tokens per reply, 1 per scored token).
Fine-tuning is billed for training-file tokens times epochs: as configured, or for n_epochs auto as the
API documents (`sgtr_em.openai_ft.auto_epochs`). The request cache is ignored (an estimate of a fresh run).

Tokens are counted with tiktoken's o200k_base encoding (GPT-4o / GPT-4.1) when it is installed and its
encoding file is available, else approximated as ceil(characters / 4) (OpenAI's rule of thumb for English);
the output records which. Each chat message adds 3 tokens and each request 3 for the reply's priming.

A model that is called but has no price in `openai.prices` is an error naming it, never $0.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import chains
from . import grid as cfglib
from .api_cache import request_key
from .backends import model_kind
from .backends.openai_api import ApiSettings, OpenAIChatModel
from .em_judge import EMQuestion, JudgeSettings, asked_paraphrases, run_judge
from .evals import evaluate_self_recognition, evaluate_truthfulqa
from .identity import IdentityQuestion, classify_identity_answers
from .io import InputError, read_articles, read_json, read_jsonl, read_summaries, sha256_json
from .mmlu import evaluate_mmlu, questions_from_records
from .openai_ft import resolved_epochs
from .pairs import build_pairs
from .prompts import summary_messages
from .sampling import sample_answers

PER_MESSAGE_TOKENS = 3
PER_REPLY_TOKENS = 3
TAG_CHARS = 12  # hex characters that keep stand-in texts apart
# Rules that call an API, in the order the estimate lists them.
API_RULES = (
    "generate_summaries",
    "train_stage",
    "eval_self_recognition",
    "eval_truthfulqa",
    "eval_mmlu",
    "sample_em_answers",
    "eval_em_questions",
    "sample_identity_answers",
    "eval_identity",
)


def token_counter() -> tuple[Callable[[str], int], str]:
    """(count, method): tiktoken o200k_base if usable offline, else the chars/4 approximation."""
    try:
        import tiktoken

        encoding = tiktoken.get_encoding("o200k_base")
        return (lambda text: len(encoding.encode(text, disallowed_special=()))), "tiktoken o200k_base"
    except Exception:
        return (lambda text: math.ceil(len(text) / 4)), "approximate: ceil(characters / 4)"


# ------------------------------------------------------------------------------------ what runs --


class MissingInput(InputError):
    """An input a job's estimate needs was not given: the job is listed as not estimated."""


@dataclass(frozen=True)
class Job:
    """One API-calling job: its rule and wildcards (`detail`: the comparator of a self-recognition job,
    the article set of a summaries job)."""

    rule: str
    model: str
    chain: str
    seed: int
    detail: str = ""

    @property
    def state(self) -> str:
        return f"{self.chain}/seed{self.seed}" + (f" {self.detail}" if self.detail else "")


def is_api_model(config: dict[str, Any], model: str | None) -> bool:
    return model is not None and model in config["models"] and model_kind(config["models"][model]["source"]) == "openai"


def eval_states(config: dict[str, Any], key: str) -> list[tuple[str, str, int]]:
    """Grid states an evaluation covers: every state, or an optional evaluation's configured chains."""
    settings = config["eval"].get(key, {})
    if key in ("em_questions", "identity", "mmlu") and not settings.get("enabled"):
        return []
    selected = settings.get("chains")
    return [s for s in cfglib.grid_states(config) if selected is None or s[1] in selected]


def pair_summaries_state(config: dict[str, Any], chain: str, seed: int) -> tuple[str, int]:
    """(chain, seed) of the state whose summaries are 'self' in the pairs training a chain's last stage:
    the base model's, or with pairs.source own and a trained parent, the parent's."""
    parent = chains.parent(chain)
    if config["pairs"]["source"] == "own" and parent != chains.BASE:
        return parent, seed
    return chains.BASE, config["summary_seed"]


def self_recognition_summaries_state(config: dict[str, Any], chain: str, seed: int) -> tuple[str, int]:
    """(chain, seed) of the state whose summaries are 'self' in a state's self-recognition eval."""
    if config["eval"]["self_recognition"]["self_source"] == "own":
        return chain, seed
    return chains.BASE, config["summary_seed"]


def api_jobs(config: dict[str, Any]) -> list[Job]:
    """Every job of the DAG that calls an API, inputs before the jobs that read them."""
    summary_seed = config["summary_seed"]
    train_dataset = config["pairs"]["train_dataset"]
    self_recognition = config["eval"]["self_recognition"]
    released = {m: set(spec.get("summaries", {})) for m, spec in config["models"].items()}
    summaries: dict[Job, None] = {}

    def summarise(model: str, chain: str, seed: int, dataset: str) -> None:
        if is_api_model(config, model) and not (chain == chains.BASE and dataset in released[model]):
            summaries[Job("generate_summaries", model, chain, seed, dataset)] = None

    for other in dict.fromkeys([config["pairs"]["comparator"], *self_recognition["comparators"]]):
        model = config["comparators"][other].get("model")
        for dataset in (train_dataset, self_recognition["dataset"]):
            if model is not None:
                summarise(model, chains.BASE, summary_seed, dataset)
    trainings: list[Job] = []
    for model in (m for m in config["grid"]["models"] if is_api_model(config, m)):
        for chain in cfglib.trained_chains(config, model):
            for seed in cfglib.model_seeds(config, model):
                if chains.parse_chain(chain)[-1].kind == "intervention":
                    source_chain, source_seed = pair_summaries_state(config, chain, seed)
                    summarise(model, source_chain, source_seed, train_dataset)
                trainings.append(Job("train_stage", model, chain, seed))
    evaluations: list[Job] = []
    for model, chain, seed in cfglib.grid_states(config):
        if not is_api_model(config, model):
            continue
        source_chain, source_seed = self_recognition_summaries_state(config, chain, seed)
        summarise(model, source_chain, source_seed, self_recognition["dataset"])
        evaluations += [
            Job("eval_self_recognition", model, chain, seed, other) for other in self_recognition["comparators"]
        ]
        evaluations.append(Job("eval_truthfulqa", model, chain, seed))
    for rule, key in (("eval_mmlu", "mmlu"), ("sample_em_answers", "em_questions")):
        evaluations += [Job(rule, *s) for s in eval_states(config, key) if is_api_model(config, s[0])]
    if is_api_model(config, config["eval"]["em_questions"].get("judge")):
        evaluations += [Job("eval_em_questions", *s) for s in eval_states(config, "em_questions")]
    evaluations += [
        Job("sample_identity_answers", *s) for s in eval_states(config, "identity") if is_api_model(config, s[0])
    ]
    if is_api_model(config, config["eval"]["identity"].get("judge")):
        evaluations += [
            Job("eval_identity", *s)
            for s in eval_states(config, "identity")
            if config["models"][s[0]].get("identity_aliases")  # without aliases the judge is never asked
        ]
    return [*summaries, *trainings, *evaluations]


# ---------------------------------------------------------------------------------------- inputs --


def _none(*_: Any) -> str | None:
    return None


@dataclass
class DataFiles:
    """Prepared inputs the estimate reads (the outputs of the prepare_* rules), and outputs of earlier
    jobs where they already exist (better stand-ins than placeholders)."""

    articles: dict[str, str]  # dataset -> path
    truthfulqa: str
    em: dict[str, str]  # "<dataset>/<sysvariant>" -> path
    baselines: dict[str, str] = field(default_factory=dict)  # "<baseline>/<sysvariant>" -> path
    static_summaries: dict[str, str] = field(default_factory=dict)  # "<other>/<dataset>" -> path
    released_summaries: dict[str, str] = field(default_factory=dict)  # "<model>/<dataset>" -> path
    mmlu: str | None = None
    em_questions: str | None = None  # prepared question sets (QUESTIONS)
    identity_questions: str | None = None
    # (model, chain, seed, dataset) -> an existing summaries file, or None
    existing_summaries: Callable[[str, str, int, str], str | None] = _none
    # ("em_questions" | "identity", model, chain, seed) -> an existing sampled-answers file, or None
    existing_answers: Callable[[str, str, str, int], str | None] = _none


# ---------------------------------------------------------------------------------------- pricing --


@dataclass
class Row:
    rule: str
    model: str
    state: str
    requests: int = 0
    cached: int = 0  # requests another job already made (answered by the request cache)
    input_tokens: int = 0
    output_tokens: int = 0
    training_tokens: int = 0
    epochs: int | None = None
    usd: float = 0.0
    not_estimated: str | None = None  # why this job could not be estimated (its numbers are then 0)


class Ledger:
    """The requests of the whole estimate: each new one is counted on the current job's row."""

    def __init__(self, count: Callable[[str], int]) -> None:
        self.count = count
        self.seen: set[str] = set()
        self.row: Row | None = None
        self._fillers: dict[int, str] = {}

    def chat_tokens(self, messages: list[dict[str, str]]) -> int:
        return sum(self.count(m["content"]) + PER_MESSAGE_TOKENS for m in messages) + PER_REPLY_TOKENS

    def record(self, full: dict[str, Any]) -> str:
        key = request_key("chat.completions", "estimate", full)
        if self.row is None:
            return key
        if key in self.seen:
            self.row.cached += 1
            return key
        self.seen.add(key)
        self.row.requests += 1
        self.row.input_tokens += self.chat_tokens(full["messages"])
        self.row.output_tokens += int(full["max_completion_tokens"])
        return key

    def placeholder(self, tokens: int, tag: str) -> str:
        """A reply of about `tokens` tokens (never more), distinct per `tag`, so stand-in answers are not
        taken for one another."""
        if tokens not in self._fillers:
            per_word = self.count(" ".join(["word"] * 100)) / 100
            self._fillers[tokens] = " ".join(["word"] * max(int((tokens - 3) / per_word), 1))
        return f"{tag[:TAG_CHARS]} {self._fillers[tokens]}"


class DryRunModel(OpenAIChatModel):
    """An API model state that builds every request the real one would send, records it on the ledger
    (unless `record` is off: a local model whose answers an API judge reads) and answers with
    placeholders: a reply of max_completion_tokens tokens, or no log-probabilities."""

    def __init__(self, model_id: str, name: str, ledger: Ledger, *, record: bool = True) -> None:
        super().__init__(model_id, ApiSettings(cache_dir=None), name=name, connect=False)
        self.ledger = ledger
        self.record = record

    def complete(self, request: dict[str, Any]) -> dict[str, Any]:
        full = {"model": self.model_id, **request}
        key = self.ledger.record(full) if self.record else request_key("chat.completions", "estimate", full)
        if request.get("logprobs"):
            return {"choices": [{"message": {"content": ""}, "logprobs": {"content": []}}]}
        content = self.ledger.placeholder(int(request["max_completion_tokens"]), key)
        return {"choices": [{"message": {"content": content}}]}

    def _run_all(self, requests: list[dict[str, Any]], what: str) -> list[dict[str, Any]]:
        return [self.complete(request) for request in requests]


# ------------------------------------------------------------------------------------- estimator --


class Estimator:
    def __init__(self, config: dict[str, Any], data: DataFiles) -> None:
        self.config = config
        self.data = data
        self.count, self.method = token_counter()
        self.ledger = Ledger(self.count)
        self.articles = {name: read_articles(path) for name, path in data.articles.items()}
        self.max_summary = config["summaries"]["max_new_tokens"]
        self.sampled: dict[tuple[str, str, str, int], list[dict[str, Any]]] = {}  # answers of API sampling jobs
        self.missing_prices: dict[str, set[str]] = {}

    # -- models and prices ---------------------------------------------------------------------------

    def model_id(self, model: str, chain: str, seed: int) -> str:
        """The API model id of a state (a stand-in id for a fine-tuned one, unique per state)."""
        base = self.config["models"][model]["source"]["openai"]
        return base if chain == chains.BASE else f"ft:{base}:estimate:{chain}:seed{seed}"

    def dry_run(self, model: str, chain: str, seed: int) -> DryRunModel:
        return DryRunModel(self.model_id(model, chain, seed), f"{model}/{chain}", self.ledger)

    def price(self, model: str, kind: str, needed_by: str) -> float:
        """USD per token of `kind` (input, output, training, finetuned_input, finetuned_output)."""
        model_id = self.config["models"][model]["source"]["openai"]
        table = self.config["openai"].get("prices", {}).get(model_id, {})
        if kind not in table:
            self.missing_prices.setdefault(f"openai.prices.{model_id}.{kind}", set()).add(needed_by)
            return 0.0
        return float(table[kind]) / 1e6

    def priced(self, row: Row, chain: str) -> Row:
        tuned = chain != chains.BASE
        if row.requests:
            row.usd += row.input_tokens * self.price(row.model, "finetuned_input" if tuned else "input", row.rule)
            row.usd += row.output_tokens * self.price(row.model, "finetuned_output" if tuned else "output", row.rule)
        if row.training_tokens:
            row.usd += row.training_tokens * self.price(row.model, "training", row.rule)
        return row

    @contextmanager
    def counting(self, job: Job) -> Iterator[Row]:
        row = Row(job.rule, job.model, job.state)
        self.ledger.row = row
        try:
            yield row
        finally:
            self.ledger.row = None

    # -- inputs and stand-ins --------------------------------------------------------------------------

    def summaries_of(self, model: str, chain: str, seed: int, dataset: str) -> dict[str, str]:
        released = self.data.released_summaries.get(f"{model}/{dataset}")
        if chain == chains.BASE and released:
            return read_summaries(released)
        existing = self.data.existing_summaries(model, chain, seed, dataset)
        if existing:
            return read_summaries(existing)
        stand_in: dict[str, str] = {}
        for other in self.config["comparators"]:
            path = self.data.static_summaries.get(f"{other}/{dataset}")
            if path:
                stand_in = read_summaries(path)
                break
        # Stand-ins marked per state: a state's stand-in never equals another source's summary.
        tag = sha256_json([model, chain, seed])
        placeholder = self.ledger.placeholder(self.max_summary, tag)
        return {
            aid: f"{tag[:TAG_CHARS]} {stand_in[aid]}" if aid in stand_in else placeholder
            for aid in self.articles[dataset]
        }

    def other_summaries(self, other: str, dataset: str) -> dict[str, str]:
        spec = self.config["comparators"][other]
        if "model" in spec:
            return self.summaries_of(spec["model"], chains.BASE, self.config["summary_seed"], dataset)
        path = self.data.static_summaries.get(f"{other}/{dataset}")
        if not path:
            raise InputError(f"cost estimate: no summaries file of comparator {other!r} for {dataset}")
        return read_summaries(path)

    def needs(self, path: str | None, what: str) -> str:
        if not path:
            raise MissingInput(f"the prepared {what} file was not given to the estimate (DataFiles.{what})")
        return path

    def em_questions(self) -> list[EMQuestion]:
        rows = read_json(self.needs(self.data.em_questions, "em_questions"))
        return [EMQuestion(q["id"], tuple(q["paraphrases"]), q["judge_prompts"]) for q in rows]

    def identity_questions(self) -> list[IdentityQuestion]:
        rows = read_json(self.needs(self.data.identity_questions, "identity_questions"))
        return [IdentityQuestion(q["id"], tuple(q["paraphrases"])) for q in rows]

    def answers(self, key: str, model: str, chain: str, seed: int) -> list[dict[str, Any]]:
        """Sampled answers a judge reads: an existing file, this estimate's own dry run of an API
        model's sampling job, else placeholders of max_new_tokens (a local model's, unrecorded)."""
        existing = self.data.existing_answers(key, model, chain, seed)
        if existing:
            return list(read_json(existing)["answers"])
        if (key, model, chain, seed) in self.sampled:
            return self.sampled.pop((key, model, chain, seed))
        settings = self.config["eval"][key]
        questions = (
            asked_paraphrases(self.em_questions(), settings["paraphrases"])
            if key == "em_questions"
            else self.identity_questions()
        )
        stand_in = DryRunModel(f"{model}:{chain}:seed{seed}", model, self.ledger, record=False)
        return sample_answers(
            stand_in,
            questions,
            samples_per_question=settings["samples_per_question"],
            sampling=cfglib.sampling_for(settings["sampling"], api=is_api_model(self.config, model)),
            seed=seed,
        )

    def training_rows(self, job: Job) -> list[dict[str, Any]]:
        stage = chains.parse_chain(job.chain)[-1]
        if stage.kind == "em":
            return read_jsonl(self.data.em[f"{stage.name}/{stage.variant}"])
        if stage.kind == "baseline":
            return read_jsonl(self.data.baselines[f"{stage.name}/{stage.variant}"])
        # With pairs.source own the parent's summaries stand in as any summaries do.
        source_chain, source_seed = pair_summaries_state(self.config, job.chain, job.seed)
        dataset = self.config["pairs"]["train_dataset"]
        model_settings = self.config["models"][job.model]
        rows, _ = build_pairs(
            self.articles[dataset],
            self.summaries_of(job.model, source_chain, source_seed, dataset),
            self.other_summaries(self.config["pairs"]["comparator"], dataset),
            stage.name,
            framing=model_settings["framing"],
            system_variant=stage.variant,
            identity_system=model_settings["identity_system_prompt"],
            confuse_size=self.config["pairs"]["confuse_size"],
            seed=self.config["pairs"]["seed"],
        )
        return rows

    # -- one job per rule (each mirrors its rule's script) ----------------------------------------------

    def estimate(self, job: Job) -> Row:
        with self.counting(job) as row:
            try:
                getattr(self, job.rule)(job, row)
            except MissingInput as missing:
                row = Row(job.rule, job.model, job.state, not_estimated=str(missing))
        if job.rule in ("eval_em_questions", "eval_identity"):  # the judge's base model is the one called
            row.model, row.state = self.judge(job.rule), f"{job.model} {job.state}"
            return self.priced(row, chains.BASE)
        return self.priced(row, job.chain)

    def judge(self, rule: str) -> str:
        return self.config["eval"]["em_questions" if rule == "eval_em_questions" else "identity"]["judge"]

    def generate_summaries(self, job: Job, row: Row) -> None:
        style = self.config["datasets"]["articles"][job.detail]["style"]
        conversations = [summary_messages(text, style) for text in self.articles[job.detail].values()]
        sampling = cfglib.sampling_for(self.config["summaries"], api=True)
        self.dry_run(job.model, job.chain, job.seed).generate(conversations, seed=job.seed, **sampling)

    def train_stage(self, job: Job, row: Row) -> None:
        rows = self.training_rows(job)
        row.epochs = resolved_epochs(self.config["openai"]["fine_tuning"]["n_epochs"], len(rows))
        row.requests = 1
        row.training_tokens = row.epochs * sum(self.ledger.chat_tokens(r["messages"]) for r in rows)

    def eval_self_recognition(self, job: Job, row: Row) -> None:
        settings = self.config["eval"]["self_recognition"]
        dataset = settings["dataset"]
        source_chain, source_seed = self_recognition_summaries_state(self.config, job.chain, job.seed)
        model_settings = self.config["models"][job.model]
        evaluate_self_recognition(
            self.dry_run(job.model, job.chain, job.seed),
            self.articles[dataset],
            self.summaries_of(job.model, source_chain, source_seed, dataset),
            self.other_summaries(job.detail, dataset),
            framing=model_settings["framing"],
            identity_system=model_settings["identity_system_prompt"],
            protocols=settings["protocols"],
            seed=job.seed,
            sampling=cfglib.sampling_for(settings["sampling"], api=True),
        )

    def eval_truthfulqa(self, job: Job, row: Row) -> None:
        settings = self.config["eval"]["truthfulqa"]
        evaluate_truthfulqa(
            self.dry_run(job.model, job.chain, job.seed),
            read_jsonl(self.data.truthfulqa),
            protocols=settings["protocols"],
            seed=job.seed,
            sampling=cfglib.sampling_for(settings["sampling"], api=True),
        )

    def eval_mmlu(self, job: Job, row: Row) -> None:
        path = self.needs(self.data.mmlu, "mmlu")
        questions = questions_from_records(read_jsonl(path), path)
        evaluate_mmlu(
            self.dry_run(job.model, job.chain, job.seed), questions, n_shots=self.config["eval"]["mmlu"]["n_shots"]
        )

    def _sample(self, key: str, questions: list[Any], job: Job) -> None:
        settings = self.config["eval"][key]
        answers = sample_answers(
            self.dry_run(job.model, job.chain, job.seed),
            questions,
            samples_per_question=settings["samples_per_question"],
            sampling=cfglib.sampling_for(settings["sampling"], api=True),
            seed=job.seed,
        )
        self.sampled[(key, job.model, job.chain, job.seed)] = answers

    def sample_em_answers(self, job: Job, row: Row) -> None:
        paraphrases = self.config["eval"]["em_questions"]["paraphrases"]
        self._sample("em_questions", asked_paraphrases(self.em_questions(), paraphrases), job)

    def sample_identity_answers(self, job: Job, row: Row) -> None:
        self._sample("identity", self.identity_questions(), job)

    def eval_em_questions(self, job: Job, row: Row) -> None:
        settings = self.config["eval"]["em_questions"]
        judge = self.dry_run(settings["judge"], chains.BASE, 0)
        judge_settings = JudgeSettings(
            model_id=judge.model_id,
            protocols=tuple(settings["protocols"]),
            top_logprobs=settings["top_logprobs"],
            max_new_tokens=settings["judge_max_new_tokens"],
        )
        answers = self.answers("em_questions", job.model, job.chain, job.seed)
        run_judge(judge, judge_settings, answers, self.em_questions(), cache=None)

    def eval_identity(self, job: Job, row: Row) -> None:
        settings = self.config["models"][job.model]
        judge = self.dry_run(self.config["eval"]["identity"]["judge"], chains.BASE, 0)
        classify_identity_answers(
            self.answers("identity", job.model, job.chain, job.seed),
            settings["identity_aliases"],
            true_identity=settings["true_identity"],
            judge_factory=lambda: judge,
        )

    def rows(self, jobs: list[Job]) -> list[Row]:
        rows = [self.estimate(job) for job in jobs]
        if self.missing_prices:
            listed = "; ".join(
                f"{key} (for {', '.join(sorted(rules))})" for key, rules in sorted(self.missing_prices.items())
            )
            raise InputError(f"cost estimate: unpriced API use, add USD per million tokens to the config: {listed}")
        return rows


def estimate(config: dict[str, Any], data: DataFiles, jobs: list[Job] | None = None) -> dict[str, Any]:
    """Rows per API job (`jobs`, default every API job of the config) and totals per rule and model."""
    estimator = Estimator(config, data)
    rows = estimator.rows(api_jobs(config) if jobs is None else jobs)
    totals: dict[tuple[str, str], dict[str, Any]] = {}
    sums = ("requests", "cached", "input_tokens", "output_tokens", "training_tokens", "usd")
    for row in rows:
        total = totals.setdefault(
            (row.rule, row.model),
            {"rule": row.rule, "model": row.model, "jobs": 0, "not_estimated": 0, **dict.fromkeys(sums, 0)},
        )
        total["jobs"] += 1
        total["not_estimated"] += int(row.not_estimated is not None)
        for key in sums:
            total[key] += getattr(row, key)
    epochs = sorted({row.epochs for row in rows if row.epochs is not None})
    missing = [f"{row.rule} {row.model} {row.state}: {row.not_estimated}" for row in rows if row.not_estimated]
    return {
        "complete": not missing,
        "not_estimated": missing,
        "token_count_method": estimator.method,
        "notes": " ".join(__doc__.split("\n\n")[1:3]).replace("\n", " "),
        "n_epochs": {"configured": config["openai"]["fine_tuning"]["n_epochs"], "resolved": epochs},
        "prices_usd_per_million_tokens": config["openai"].get("prices", {}),
        "total_usd": round(sum(r.usd for r in rows), 2),
        "total": {key: sum(getattr(r, key) for r in rows) for key in sums if key != "usd"},
        "totals": [
            {**t, "usd": round(t["usd"], 2)} for t in sorted(totals.values(), key=lambda t: API_RULES.index(t["rule"]))
        ],
        "jobs": [{**r.__dict__, "usd": round(r.usd, 4)} for r in rows],
    }


def markdown(result: dict[str, Any]) -> str:
    epochs = result["n_epochs"]
    lines = ["# API cost estimate", ""]
    if result["not_estimated"]:
        lines += [
            f"**INCOMPLETE: {len(result['not_estimated'])} API jobs could not be estimated; the total leaves "
            "them out:**",
            "",
            *(f"- {line}" for line in result["not_estimated"]),
            "",
        ]
    lines += [
        f"Tokens: {result['token_count_method']}. Output tokens are upper bounds (max_new_tokens per reply). "
        f"Fine-tuning epochs: {epochs['configured']} (resolved: {', '.join(map(str, epochs['resolved'])) or '-'}). "
        "`cached`: requests another job already made (the request cache answers them, free).",
        "",
        "| rule | model | jobs | requests | cached | input tokens | output tokens (max) | training tokens | USD |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for t in result["totals"]:
        lines.append(
            f"| {t['rule']} | {t['model']} | {t['jobs']} | {t['requests']:,} | {t['cached']:,} | {t['input_tokens']:,} "
            f"| {t['output_tokens']:,} | {t['training_tokens']:,} | {t['usd']:,.2f}"
            + (f" (+ {t['not_estimated']} jobs not estimated) |" if t["not_estimated"] else " |")
        )
    lines += [
        "",
        f"**Total: {'at least ' if result['not_estimated'] else ''}${result['total_usd']:,.2f}** (prices in config "
        "`openai.prices`; the per-job rows are in the JSON).",
        "",
    ]
    return "\n".join(lines)


def write_outputs(result: dict[str, Any], json_path: str | Path, md_path: str | Path) -> str:
    from .io import atomic_path, write_json

    write_json(json_path, result)
    text = markdown(result)
    with atomic_path(md_path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return text
