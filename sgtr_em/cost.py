"""Cost estimate of the API part of a run, before spending: requests, tokens and dollars per API job.

The jobs are the workflow's own, read from `sgtr_em.targets.Targets` (the model of the DAG the rules are
built from) and named by their rules: every job of the default target that calls an API, i.e. an API
model's `generate_summaries_api`, `train_stage_api` and `eval_state*_api` jobs, and the `eval_em_questions`
and `eval_identity` jobs whose judge is an API model (over every grid model's answers, open models'
included). Each job is run dry: the code its rule runs (`state_evals.run_step` for each step of a state
job with the step's own params, the judges' `em_judge.run_judge` and `identity.classify_identity_answers`,
the training file of a fine-tuning job) on a model that records the requests it would send instead of
sending them and answers with placeholders. A request already counted (same model state, same request) is
free, as the request cache answers it.

Outputs of earlier jobs are read where a previous run left them in the working directory; else the dry run's
own outputs stand in: replies of `max_new_tokens` tokens each (summaries, sampled answers), pair files built
from such summaries, and, for an open model whose answers an API judge reads, its sampling job run dry
without counting. Judge prompts are then upper bounds, and each stand-in answer is distinct (so asked of the
EM judge) and names no identity (so asked of the identity judge); a pick-longer file between two stand-in
summaries of the same length ties on every article. Output tokens are upper bounds (max_new_tokens per
reply, 1 per scored token). Fine-tuning is billed for training-file tokens times epochs: as configured, or
for n_epochs auto as the API documents (`sgtr_em.openai_ft.auto_epochs`). The request cache is ignored (an
estimate of a fresh run).

Tokens are counted with tiktoken's o200k_base encoding (GPT-4o / GPT-4.1) when it is installed (the `api`
extra) and its encoding file is available; else they are approximated as ceil(characters / 4) (OpenAI's
rule of thumb for English) and the output and the log say so and why. Each chat message adds 3 tokens and
each request 3 for the reply's priming.

A model that is called but has no price in `openai.prices` is an error naming it, never $0.
"""

from __future__ import annotations

import logging
import math
import re
import tempfile
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from itertools import product
from pathlib import Path
from typing import Any

from . import chains
from .api_cache import request_key
from .backends.openai_api import ApiSettings, OpenAIChatModel
from .em_judge import JudgeSettings, questions_from_records, run_judge
from .evaluated_state import EvaluatedState, StateJobData
from .evaluations import EVALUATIONS
from .grid import inference_settings, model_seeds, trained_chains
from .identity import classify_identity_answers
from .io import InputError, read_articles, read_json, read_jsonl, read_summaries, write_json, write_jsonl
from .openai_ft import resolved_epochs
from .pairs import pair_file_rows
from .paths import ARTICLES, PAIRS, PROMPTS, SUMMARIES, WILDCARD_CONSTRAINTS
from .prompts import read_prompt_set
from .runtime import model_identity
from .state_evals import run_step, summarise
from .targets import StateJob, Targets, prepared_questions, wildcards_of

log = logging.getLogger(__name__)

PER_MESSAGE_TOKENS = 3
PER_REPLY_TOKENS = 3
TAG_CHARS = 12  # hex characters that keep stand-in texts apart
# The judging rule of each judged evaluation (rules/eval.smk), which scores the answers its state job samples.
JUDGE_RULES = {key: f"eval_{key}" for key, evaluation in EVALUATIONS.items() if evaluation.judged}
APPROXIMATE = "approximate: ceil(characters / 4)"


def token_counter() -> tuple[Callable[[str], int], str, str | None]:
    """(count, method, why approximate): tiktoken's o200k_base when usable, else ceil(characters / 4) and
    the reason."""

    def approximate(text: str) -> int:
        return math.ceil(len(text) / 4)

    try:
        import tiktoken
    except ImportError:
        return approximate, APPROXIMATE, "tiktoken is not installed (pip install -e '.[api]')"
    try:
        encoding = tiktoken.get_encoding("o200k_base")
    except Exception as error:  # its encoding file is downloaded on first use: a machine offline has none
        return approximate, APPROXIMATE, f"tiktoken could not load o200k_base ({type(error).__name__}: {error})"
    return (lambda text: len(encoding.encode(text, disallowed_special=()))), "tiktoken o200k_base", None


def wildcards_in(template: str, path: str) -> dict[str, str] | None:
    """The wildcards of `path` as an output of `template` (None if it is none), under the workflow's
    wildcard constraints."""
    pattern = re.sub(
        r"\\\{(\w+)\\\}",
        lambda m: f"(?P<{m[1]}>(?:{WILDCARD_CONSTRAINTS.get(m[1], '[^/]+')}))",
        re.escape(template),
    )
    match = re.fullmatch(pattern, path)
    return match.groupdict() if match else None


# ------------------------------------------------------------------------------------ the DAG --


@dataclass(frozen=True)
class Job:
    """A job of the workflow's DAG as Snakemake plans it: its rule and wildcards. `kind` is the code its rule
    runs (summaries, train, pairs, state, judge); `calls_api`: its requests are the run's (else it is run
    dry only to stand in for outputs an API job reads, and counts nothing)."""

    rule: str
    kind: str
    wildcards: tuple[tuple[str, str], ...]
    calls_api: bool
    state_job: StateJob | None = None

    @classmethod
    def of(
        cls, rule: str, kind: str, calls_api: bool, wildcards: Mapping[str, Any], state_job: StateJob | None = None
    ) -> Job:
        return cls(rule, kind, tuple((k, str(v)) for k, v in wildcards.items()), calls_api, state_job)

    @property
    def wc(self) -> Any:
        return wildcards_of(**dict(self.wildcards))

    @property
    def judged(self) -> str | None:
        """The evaluation whose answers a judging job scores (None for the other jobs)."""
        return next((key for key, rule in JUDGE_RULES.items() if rule == self.rule), None)

    @property
    def label(self) -> str:
        """The state (and article set) of the job, as the estimate lists it."""
        wc = dict(self.wildcards)
        if "chain" not in wc:
            return " ".join(wc.values())
        return f"{wc['chain']}/seed{wc['seed']}" + (f" {wc['dataset']}" if "dataset" in wc else "")


class Plan:
    """The API jobs of the default target (`jobs`: summaries, fine-tuning, state and judging jobs) and the
    job that writes each file a job reads (`producers`: every grid state's state jobs, and the build_pairs and
    generate_summaries jobs of the files the grid's jobs read), by path. The dry run runs a file's producer
    when a job first reads it."""

    def __init__(self, targets: Targets) -> None:
        self.t = targets
        config = targets.config
        self.producers: dict[str, tuple[Job, str | None]] = {}  # path -> (job, the step of a state job)
        states: list[Job] = []
        judges: list[Job] = []
        for state_job in targets.state_jobs:
            outputs = targets.state_job_outputs(state_job)
            for model, chain, seed in product(state_job.models, state_job.chains, state_job.seeds):
                state = {"model": model, "chain": chain, "seed": seed}
                job = Job.of(state_job.rule, "state", targets.is_api_model(model), state, state_job)
                states.append(job)
                for step, template in outputs.items():
                    self.producers[template.format(model=model, chain=chain, seed=seed)] = (job, step)
                for key, rule in JUDGE_RULES.items():
                    judge = targets.judge(key)
                    if key in state_job.steps and judge is not None and targets.is_api_model(judge):
                        judges.append(Job.of(rule, "judge", True, state))
        trainings: list[Job] = []
        consumers = list(states)
        for model in config["grid"]["models"]:
            api = targets.is_api_model(model)
            for chain, seed in product(trained_chains(config, model), model_seeds(config, model)):
                job = Job.of(
                    self.rule("train_stage", model), "train", api, {"model": model, "chain": chain, "seed": seed}
                )
                trainings += [job] if api else []
                pairs = wildcards_in(PAIRS, targets.stage_train_file(job.wc))
                if pairs is not None:
                    pair_job = Job.of("build_pairs", "pairs", False, pairs)
                    self.producers[PAIRS.format(**pairs)] = (pair_job, None)
                    consumers.append(pair_job)
        # Summaries a job reads that no state job writes: a generate_summaries job each.
        summaries: list[Job] = []
        for consumer in consumers:
            for path in self.inputs(consumer):
                wc = wildcards_in(SUMMARIES, path)
                if wc is not None and path not in self.producers:
                    api = targets.is_api_model(wc["model"])
                    job = Job.of(self.rule("generate_summaries", wc["model"]), "summaries", api, wc)
                    self.producers[path] = (job, None)
                    summaries += [job] if job.calls_api else []
        self.jobs = [*summaries, *trainings, *(job for job in states if job.calls_api), *judges]

    def rule(self, name: str, model: str) -> str:
        """A model rule's name for a model: with the suffix of its kind (`Targets.model_kinds`)."""
        api = self.t.is_api_model(model)
        return name + next(suffix for suffix, _, kind_api in self.t.model_kinds() if kind_api == api)

    def inputs(self, job: Job) -> list[str]:
        """The files a job's dry run may read (what its rule names as inputs, less model and adapters)."""
        t, wc = self.t, job.wc
        if job.kind == "summaries":
            return [ARTICLES.format(dataset=wc.dataset), PROMPTS]
        if job.kind == "train":
            return [t.stage_train_file(wc)]
        if job.kind == "pairs":
            return [t.pair_articles, t.pair_self_summaries(wc), *t.pair_other_summaries(wc), PROMPTS]
        if job.judged is not None:
            evaluation = EVALUATIONS[job.judged]
            answers = str(evaluation.answers).format(model=wc.model, chain=wc.chain, seed=wc.seed)
            # The EM judge reads the questions' judge prompts; the identity judge, the answers alone.
            return [answers, *([prepared_questions(str(evaluation.dataset))] if job.judged == "em_questions" else [])]
        assert job.state_job is not None
        roles = t.state_job_inputs(job.state_job)(wc)
        return [path for role, path in roles.items() if role not in ("model", "adapters")]

    def prepared_inputs(self) -> list[str]:
        """The files the estimate reads that no job it runs writes: the outputs of the data rules (articles,
        questions, training data, prompts, given summaries), the api_cost rule's inputs."""
        needed: dict[str, None] = {}
        todo, seen = list(self.jobs), set(self.jobs)
        while todo:
            for path in self.inputs(todo.pop()):
                producer = self.producers.get(path)
                if producer is None:
                    needed[path] = None
                elif producer[0] not in seen:
                    seen.add(producer[0])
                    todo.append(producer[0])
        return list(needed)


def prepared_inputs(targets: Targets) -> list[str]:
    return Plan(targets).prepared_inputs()


# ---------------------------------------------------------------------------------------- pricing --


@dataclass
class Row:
    rule: str
    model: str  # the model billed: the job's, or its judge's
    state: str
    requests: int = 0  # chat completions
    cached: int = 0  # requests another job already made (answered by the request cache)
    input_tokens: int = 0
    output_tokens: int = 0
    training_tokens: int = 0
    epochs: int | None = None
    usd: float = 0.0
    steps: dict[str, int] = field(default_factory=dict)  # requests per step of a state job


class Ledger:
    """The requests of the whole estimate: each new one is counted on the current job's row."""

    def __init__(self, count: Callable[[str], int]) -> None:
        self.count = count
        self.seen: set[str] = set()
        self.row: Row | None = None
        self.step = ""
        self._fillers: dict[int, str] = {}

    def chat_tokens(self, messages: list[dict[str, str]]) -> int:
        return sum(self.count(m["content"]) + PER_MESSAGE_TOKENS for m in messages) + PER_REPLY_TOKENS

    @contextmanager
    def counting(self, row: Row, step: str = "") -> Iterator[Row]:
        """Count on `row` (a job run for another's inputs counts on its own row, then the other's resumes)."""
        before = self.row, self.step
        self.row, self.step = row, step
        try:
            yield row
        finally:
            self.row, self.step = before

    def record(self, full: dict[str, Any]) -> str:
        key = request_key("chat.completions", "estimate", full)
        if self.row is None:
            return key
        if key in self.seen:
            self.row.cached += 1
            return key
        self.seen.add(key)
        self.row.requests += 1
        if self.step:
            self.row.steps[self.step] = self.row.steps.get(self.step, 0) + 1
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
    """A model state that builds every request the API model would be sent, records it on the ledger
    (unless `record` is off: an open model run only for the answers an API judge reads) and answers with
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


# -------------------------------------------------------------------------------------- the dry run --


class Estimator:
    """Runs the plan's jobs dry in `workdir` (where the prepared inputs are, and any earlier outputs), its
    own outputs written below `scratch`."""

    def __init__(self, targets: Targets, workdir: Path, scratch: Path) -> None:
        self.t = targets
        self.config = targets.config
        self.plan = Plan(targets)
        self.workdir, self.scratch = workdir, scratch
        self.count, self.method, self.approximate = token_counter()
        self.ledger = Ledger(self.count)
        self.rows: dict[Job, Row] = {}
        self.missing_prices: dict[str, set[str]] = {}

    # -- files -------------------------------------------------------------------------------------------

    def where(self, path: str) -> Path:
        """A file as a job would read it: an earlier run's, else this dry run's."""
        earlier = self.workdir / path
        return earlier if earlier.exists() else self.scratch / path

    def locate(self, path: str) -> Path:
        """`where`, running the job that writes the file first if it is neither an earlier run's nor written
        yet by this dry run."""
        found = self.where(path)
        if found.exists():
            return found
        producer = self.plan.producers.get(path)
        if producer is None:
            raise InputError(f"cost estimate: {path} is missing (the api_cost rule's input; its data rule makes it)")
        job, step = producer
        if job.calls_api:
            self.run(job)
        else:
            self.stand_in(job, step)
        if not found.exists():
            raise RuntimeError(f"cost estimate: {job.rule} {job.label} did not write {path}")
        return found

    def write(self, path: str, result: dict[str, Any] | list[dict[str, Any]]) -> None:
        if isinstance(result, list):
            write_jsonl(self.scratch / path, result)
        else:
            write_json(self.scratch / path, result)

    # -- models ------------------------------------------------------------------------------------------

    def model(self, job: Job) -> DryRunModel:
        """The job's model state: its API model id (a stand-in id, unique per state, for a fine-tuned one;
        the real one exists only once the fine-tuning job has run), or an open model's name."""
        wc = job.wc
        source = self.config["models"][wc.model]["source"]
        if "openai" not in source:
            model_id = f"{wc.model}:{wc.chain}:seed{wc.seed}"
        elif wc.chain == chains.BASE:
            model_id = source["openai"]
        else:
            model_id = f"ft:{source['openai']}:estimate:{wc.chain}:seed{wc.seed}"
        return DryRunModel(model_id, f"{wc.model}/{wc.chain}", self.ledger, record=job.calls_api)

    def judge(self, key: str) -> DryRunModel:
        judge = self.t.judge(key)
        assert judge is not None
        return DryRunModel(self.config["models"][judge]["source"]["openai"], f"judge {judge}", self.ledger)

    # -- jobs --------------------------------------------------------------------------------------------

    def run(self, job: Job) -> Row:
        """Run an API job dry (once), counting its requests on its row."""
        if job in self.rows:
            return self.rows[job]
        wc, key = job.wc, job.judged
        billed = self.t.judge(key) if key else wc.model
        row = self.rows[job] = Row(job.rule, str(billed), f"{wc.model} {job.label}" if key else job.label)
        with self.ledger.counting(row):
            if job.kind == "summaries":
                self.summaries(job)
            elif job.kind == "train":
                rows = read_jsonl(self.locate(self.t.stage_train_file(wc)))
                row.epochs = resolved_epochs(self.t.stage_hyperparameters(wc)["n_epochs"], len(rows))
                row.training_tokens = row.epochs * sum(self.ledger.chat_tokens(r["messages"]) for r in rows)
            elif job.kind == "state":
                self.state(job, row)
            elif key == "em_questions":
                spec = self.t.judge_settings(key)
                assert spec is not None
                settings = JudgeSettings.of_job(self.config["eval"][key], spec)
                dataset = str(EVALUATIONS[key].dataset)
                questions = questions_from_records(read_json(self.locate(prepared_questions(dataset))))
                run_judge(self.judge(key), settings, self.answers(key, job), questions, cache=None)
            else:
                classify_identity_answers(
                    self.answers("identity", job),
                    self.t.identity_aliases(wc),
                    true_identity=self.t.true_identity(wc),
                    judge_factory=lambda: self.judge("identity"),
                )
        return row

    def stand_in(self, job: Job, step: str | None) -> None:
        """Run a job that calls no API dry, for an output an API job reads (a state job: only that step)."""
        if job.kind == "pairs":
            self.pairs(job)
        elif job.kind == "summaries":
            self.summaries(job)
        else:
            self.state(job, None, only=step)

    def summaries(self, job: Job) -> None:
        """generate_summaries (scripts/generate_summaries.py)."""
        wc = job.wc
        rows = summarise(
            self.model(job),
            read_articles(self.locate(ARTICLES.format(dataset=wc.dataset))),
            style=self.t.summary_style(wc),
            prompts=read_prompt_set(self.locate(PROMPTS)),
            sampling=self.t.summary_sampling(wc),
            seed=int(wc.seed),
        )
        self.write(SUMMARIES.format(model=wc.model, chain=wc.chain, seed=wc.seed, dataset=wc.dataset), rows)

    def pairs(self, job: Job) -> None:
        """build_pairs (scripts/build_pairs.py): its settings as rules/pairs.smk gives them."""
        t, wc = self.t, job.wc
        others = zip(t.pair_comparators(wc), t.pair_other_summaries(wc), strict=True)
        rows, _ = pair_file_rows(
            read_articles(self.locate(t.pair_articles)),
            read_summaries(self.locate(t.pair_self_summaries(wc))),
            {name: read_summaries(self.locate(path)) for name, path in others},
            wc.intervention,
            framing=wc.framing,
            system_variant=wc.sysvariant,
            identity_system=t.identity_system_prompt(wc),
            confuse_size=self.config["pairs"]["confuse_size"],
            seed=self.config["pairs"]["seed"],
            missing_summaries=self.config["pairs"]["missing_summaries"],
            prompts=read_prompt_set(self.locate(PROMPTS)),
        )
        self.write(PAIRS.format(**dict(job.wildcards)), rows)

    def state(self, job: Job, row: Row | None, only: str | None = None) -> None:
        """An eval_state* job (scripts/eval_state.py): each step, or `only` one, with its params, by
        `state_evals.run_step`; each output written as the job writes it."""
        t, wc = self.t, job.wc
        assert job.state_job is not None
        params = t.state_job_params(job.state_job)(wc)
        outputs = {
            step: template.format(model=wc.model, chain=wc.chain, seed=wc.seed)
            for step, template in t.state_job_outputs(job.state_job).items()
        }
        data = StateJobData(
            Located(self, t.state_job_inputs(job.state_job)(wc)),
            {s: str(self.where(p)) for s, p in outputs.items()},
            self.config["summary_seed"],
            {step: inference_settings(self.config, wc.model, step)["batch_size"] for step in params},
        )
        state = EvaluatedState(
            rule=job.rule,
            model=wc.model,
            chain=wc.chain,
            seed=int(wc.seed),
            model_identity=model_identity(wc.model, self.config["models"][wc.model]["source"]),
            backend=t.backend_settings(wc.model),
            run_name=self.config["run_name"],
        )
        model = self.model(job)
        for step in [only] if only else params:
            with self.ledger.counting(row, step) if row else nullcontext():
                result = run_step(step, params[step], model, state, data)
            self.write(outputs[step], result)

    def answers(self, key: str, job: Job) -> list[dict[str, Any]]:
        """The sampled answers a judging job reads."""
        wc = job.wc
        answers = str(EVALUATIONS[key].answers).format(model=wc.model, chain=wc.chain, seed=wc.seed)
        return list(read_json(self.locate(answers))["answers"])

    # -- prices ------------------------------------------------------------------------------------------

    def price(self, model: str, kind: str, needed_by: str) -> float:
        """USD per token of `kind` (input, output, training, finetuned_input, finetuned_output)."""
        model_id = self.config["models"][model]["source"]["openai"]
        table = self.config["openai"].get("prices", {}).get(model_id, {})
        if kind not in table:
            self.missing_prices.setdefault(f"openai.prices.{model_id}.{kind}", set()).add(needed_by)
            return 0.0
        return float(table[kind]) / 1e6

    def priced(self, job: Job, row: Row) -> Row:
        """A row's dollars: a fine-tuned state's requests at the fine-tuned prices, a judge's at its base's."""
        tuned = job.kind != "judge" and job.wc.chain != chains.BASE
        if row.requests:
            row.usd += row.input_tokens * self.price(row.model, "finetuned_input" if tuned else "input", row.rule)
            row.usd += row.output_tokens * self.price(row.model, "finetuned_output" if tuned else "output", row.rule)
        if row.training_tokens:
            row.usd += row.training_tokens * self.price(row.model, "training", row.rule)
        return row

    def estimate(self) -> list[Row]:
        rows = [self.priced(job, self.run(job)) for job in self.plan.jobs]
        if self.missing_prices:
            listed = "; ".join(
                f"{key} (for {', '.join(sorted(rules))})" for key, rules in sorted(self.missing_prices.items())
            )
            raise InputError(f"cost estimate: unpriced API use, add USD per million tokens to the config: {listed}")
        return rows


class Located(Mapping[str, Any]):
    """A state job's inputs by role, each located (`Estimator.locate`) when a step first reads it."""

    def __init__(self, estimator: Estimator, inputs: Mapping[str, Any]) -> None:
        self.estimator, self.inputs = estimator, inputs

    def __getitem__(self, role: str) -> str:
        return str(self.estimator.locate(self.inputs[role]))

    def __iter__(self) -> Iterator[str]:
        return iter(self.inputs)

    def __len__(self) -> int:
        return len(self.inputs)


# ------------------------------------------------------------------------------------------ output --


def estimate(targets: Targets, workdir: str | Path = ".") -> dict[str, Any]:
    """Rows per API job of the default target and totals per rule and model, from the prepared inputs in
    `workdir` (and the outputs of earlier jobs where they exist there)."""
    with tempfile.TemporaryDirectory(prefix="api-cost-") as scratch:
        estimator = Estimator(targets, Path(workdir), Path(scratch))
        rows = estimator.estimate()
    if estimator.approximate:
        log.warning("token counts are approximate (%s): %s", estimator.method, estimator.approximate)
    config = targets.config
    totals: dict[tuple[str, str], dict[str, Any]] = {}
    sums = ("requests", "cached", "input_tokens", "output_tokens", "training_tokens", "usd")
    for row in rows:
        total = totals.setdefault(
            (row.rule, row.model), {"rule": row.rule, "model": row.model, "jobs": 0, **dict.fromkeys(sums, 0)}
        )
        total["jobs"] += 1
        for key in sums:
            total[key] += getattr(row, key)
    return {
        "token_count_method": estimator.method,
        "token_count_exact": estimator.approximate is None,
        "token_count_fallback": estimator.approximate,
        "notes": " ".join(__doc__.split("\n\n")[2:4]).replace("\n", " "),
        "n_epochs": {
            "configured": config["openai"]["fine_tuning"]["n_epochs"],
            "resolved": sorted({row.epochs for row in rows if row.epochs is not None}),
        },
        "prices_usd_per_million_tokens": config["openai"].get("prices", {}),
        "total_usd": round(sum(r.usd for r in rows), 2),
        "total": {key: sum(getattr(r, key) for r in rows) for key in sums if key != "usd"},
        "totals": [{**t, "usd": round(t["usd"], 2)} for t in totals.values()],
        "jobs": [{**r.__dict__, "usd": round(r.usd, 4)} for r in rows],
    }


def markdown(result: dict[str, Any]) -> str:
    epochs = result["n_epochs"]
    lines = ["# API cost estimate", ""]
    if not result["token_count_exact"]:
        lines += [
            f"**Token counts are approximate ({result['token_count_method']}):** {result['token_count_fallback']}.",
            "",
        ]
    lines += [
        f"Tokens: {result['token_count_method']}. Requests: chat completions. Output tokens are upper bounds "
        f"(max_new_tokens per reply). Fine-tuning epochs: {epochs['configured']} "
        f"(resolved: {', '.join(map(str, epochs['resolved'])) or '-'}). "
        "`cached`: requests another job already made (the request cache answers them, free).",
        "",
        "| rule | model | jobs | requests | cached | input tokens | output tokens (max) | training tokens | USD |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for t in result["totals"]:
        lines.append(
            f"| {t['rule']} | {t['model']} | {t['jobs']} | {t['requests']:,} | {t['cached']:,} | {t['input_tokens']:,} "
            f"| {t['output_tokens']:,} | {t['training_tokens']:,} | {t['usd']:,.2f} |"
        )
    lines += [
        "",
        f"**Total: ${result['total_usd']:,.2f}** (prices in config `openai.prices`; the per-job rows are in the JSON).",
        "",
    ]
    return "\n".join(lines)


def write_outputs(result: dict[str, Any], json_path: str | Path, md_path: str | Path) -> str:
    from .io import atomic_path

    write_json(json_path, result)
    text = markdown(result)
    with atomic_path(md_path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return text
