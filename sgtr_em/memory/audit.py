"""The GPU memory audit of a planned grid: every GPU job of the config, its batches planned as the job will
plan them, at the configured models' real shapes, against the GPUs it asks for.

    python -m sgtr_em.memory audit --configfile config/config.yaml --gpu-gib 80

Offline and before any input exists: the grid comes from the config (`Targets`), each model's shape from the
planner (`memory.model_shape`: exact parameter counts, vocabulary, layers, key/value heads), and each job's
workload from the sizes in `workloads.yaml` (the paper's articles, summaries, EM chats and questions measured
on the authors' files; MMLU's published subject sizes with estimated prompt lengths; rows the data does not
bound are taken as long as the recipe's max_length). Inference batches are planned with the same code the
jobs run (`sgtr_em.batching` under `memory.InferenceMemory`, the budget being what the card has left after the
weights); training with the same plan a training job makes before it loads (`train.fitted_plan`, its
micro-batch fallback included). It prints, per rule and model, the largest planned peak against the card,
and exits 1 naming every job that would not fit.
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .. import chains
from ..batching import bucketed_batches, shared_prefix_batches
from ..config import ConfigError, compose, load
from ..evaluations import SELF_RECOGNITION, summaries_dataset, table_kind
from ..grid import inference_settings, model_seeds, trained_chains, training_hyperparameters
from ..targets import Targets
from . import (
    GIB,
    InferenceMemory,
    ModelShape,
    inference_budget,
    model_shape,
    planned_free_bytes,
)

WORKLOADS = Path(__file__).with_name("workloads.yaml")
DEFAULT_CONFIG = "config/demo.yaml"


@dataclass(frozen=True)
class Step:
    """One step of a job's workload: prompts generated from (`new_tokens` > 0), scored one by one, or scored on
    top of shared prefixes (`groups`: each group's prefix tokens and its members' own tokens)."""

    name: str
    lengths: tuple[int, ...] = ()
    new_tokens: int = 0
    groups: tuple[tuple[int, tuple[int, ...]], ...] = ()
    rows_per_batch: int | None = None


@dataclass
class Finding:
    """The largest planned step of one rule's jobs for one model, on its GPUs (`peak`: bytes on the busiest GPU,
    weights and CUDA reserve included)."""

    rule: str
    model: str
    jobs: list[str]
    gpus: int
    gpu_bytes: int
    step: str = ""
    peak: float = 0.0
    fits: bool = True
    why: str = ""
    notes: list[str] = field(default_factory=list)

    def consider(self, step: str, peak: float, fits: bool, why: str = "") -> None:
        if (not fits and self.fits) or (fits == self.fits and peak > self.peak):
            self.step, self.peak, self.why = step, peak, why
        self.fits = self.fits and fits


class Workloads:
    """Token lengths of the paper's items, from workloads.yaml."""

    def __init__(self, path: Path = WORKLOADS) -> None:
        data = yaml.safe_load(path.read_text())
        self.chars_per_token = float(data["chars_per_token"])
        self.overhead = int(data["prompt_overhead_tokens"])
        self.lengths = data["lengths"]
        self.mmlu = data["mmlu"]

    def tokens(self, chars: float) -> int:
        return math.ceil(chars / self.chars_per_token)

    def items(self, name: str, count: int | None = None) -> list[int]:
        """`count` (default: the dataset's) item lengths in tokens spread over the measured percentiles."""
        spec = self.lengths[name]
        quantiles, n = spec["chars"], count or spec["n"]
        return [self.tokens(quantiles[round(i * (len(quantiles) - 1) / max(n - 1, 1))]) for i in range(n)]

    def longest(self, name: str) -> int:
        return self.tokens(self.lengths[name]["chars"][-1])

    def mmlu_groups(self, subjects: Sequence[str] | None, limit: int | None) -> list[tuple[int, tuple[int, ...]]]:
        estimated = self.mmlu["estimated_tokens"]
        groups = []
        for subject, size in self.mmlu["subjects"].items():
            if subjects is not None and subject not in subjects:
                continue
            tokens = {**estimated["default"], **estimated.get(subject, {})}
            count = min(size, limit) if limit else size
            groups.append((self.overhead + tokens["prefix"], (tokens["question"],) * count))
        return groups


def summaries_name(dataset: str) -> str:
    return f"{dataset}_articles" if dataset in ("cnn", "xsum") else dataset


def state_steps(config: dict[str, Any], model: str, steps: Sequence[str], loads: Workloads) -> list[Step]:
    """What each step of a model's state job asks of the GPU (see the module docstring for the sizes)."""
    evals = config["eval"]
    out = []
    for step in steps:
        kind, other = table_kind(step)
        dataset = summaries_dataset(step)
        if dataset is not None:
            articles = [loads.overhead + t for t in loads.items(summaries_name(dataset))]
            out.append(Step(step, tuple(articles), new_tokens=config["summaries"]["max_new_tokens"]))
        elif kind == SELF_RECOGNITION:
            sr = evals[SELF_RECOGNITION]
            articles = loads.items(summaries_name(sr["dataset"]))
            other_name = f"{sr['dataset']}_summaries_{other}"
            others = (
                loads.items(other_name)
                if other_name in loads.lengths
                else [config["summaries"]["max_new_tokens"]] * len(articles)
            )
            own = config["summaries"]["max_new_tokens"]
            pairs = tuple(
                (loads.overhead + a, (own + o + 10, own + o + 10)) for a, o in zip(articles, others, strict=True)
            )
            full = tuple(prefix + suffix[0] for prefix, suffix in pairs)
            out.append(Step(f"{step} (logprob)", groups=pairs))
            out.append(Step(f"{step} (reference)", full, new_tokens=sr["sampling"]["max_new_tokens"]))
        elif kind == "truthfulqa":
            prompts = tuple(loads.overhead + t for t in loads.items("truthfulqa"))
            out.append(Step(f"{step} (logprob)", prompts + prompts))
            out.append(
                Step(f"{step} (reference)", prompts, new_tokens=evals["truthfulqa"]["sampling"]["max_new_tokens"])
            )
        elif kind == "em_questions":
            questions = loads.items("em_questions")
            prompts = tuple(loads.overhead + q for q in questions for _ in range(evals[kind]["samples_per_question"]))
            out.append(Step(step, prompts, new_tokens=evals[kind]["sampling"]["max_new_tokens"]))
        elif kind == "identity":
            # short questions, each asked samples_per_question times (the project's file has 4)
            source = config["datasets"]["identity_questions"]["source"]
            asked = (
                len(yaml.safe_load(Path(source["path"]).read_text())) if Path(source.get("path", "")).is_file() else 10
            )
            prompts = (loads.overhead + 40,) * (asked * evals[kind]["samples_per_question"])
            out.append(Step(step, prompts, new_tokens=evals[kind]["sampling"]["max_new_tokens"]))
        elif kind == "mmlu":
            spec = config["datasets"]["mmlu"]
            groups = loads.mmlu_groups(spec.get("subjects"), spec.get("limit"))
            rows = inference_settings(config, model, "mmlu")["batch_size"]
            out.append(Step(step, groups=tuple(groups), rows_per_batch=rows))
    return out


def planned_step_peak(step: Step, memory: InferenceMemory, budget: float, rows_cap: int) -> tuple[float, bool, str]:
    """(largest planned activation bytes of the step's batches, whether every batch fits the budget, why not)."""
    cap = step.rows_per_batch or rows_cap
    if step.groups:

        def fits_shared(n_groups: int, members: int, prefix: int, suffix: int) -> bool:
            return memory.shared_prefix(n_groups, members, prefix, suffix) <= budget

        lengths: list[int] = []
        groups = []
        for prefix, suffixes in step.groups:
            members = list(range(len(lengths), len(lengths) + len(suffixes)))
            lengths += [prefix + s for s in suffixes]
            groups.append((prefix, members))
        peak, ok, why = 0.0, True, ""
        for batch in shared_prefix_batches(groups, lengths, cap, fits_shared):
            planned = memory.shared_prefix(
                len(batch.groups), len(batch.members), batch.prefix_length, batch.suffix_length
            )
            peak = max(peak, planned)
            if planned > budget:
                ok, why = False, f"one prompt of {batch.prefix_length}+{batch.suffix_length} tokens alone needs more"
        return peak, ok, why

    if step.new_tokens:
        cost: Callable[[int, int], float] = lambda rows, length: memory.generation(rows, length, step.new_tokens)  # noqa: E731
    else:
        cost = memory.scoring
    peak, ok, why = 0.0, True, ""
    for length, rows in bucketed_batches(step.lengths, cap, lambda r, n: cost(r, n) <= budget):
        planned = cost(len(rows), length)
        peak = max(peak, planned)
        if planned > budget:
            ok, why = False, f"one prompt of {length} tokens alone needs more"
    return peak, ok, why


def audit(config: dict[str, Any], gpu_bytes: int, loads: Workloads | None = None) -> list[Finding]:
    """A finding per GPU rule and model of the grid."""
    from ..train import TrainingDoesNotFit, fitted_plan

    loads = loads or Workloads()
    targets = Targets(config)
    findings: dict[tuple[str, str], Finding] = {}
    shapes: dict[str, ModelShape | None] = {}

    def finding(rule: str, model: str, gpus: int) -> Finding:
        return findings.setdefault((rule, model), Finding(rule, model, [], gpus, gpu_bytes))

    def shape_of(model: str) -> ModelShape | None:
        if model not in shapes:
            shapes[model] = model_shape(config["models"][model]["source"], config.get("tiny_models"))
        return shapes[model]

    def gpu_model(model: str) -> bool:
        return not targets.is_api_model(model) and config["models"][model]["resources"]["gpu"] > 0

    # evaluation jobs
    for job in targets.state_jobs:
        for model in job.models:
            if not gpu_model(model):
                continue
            gpus = config["models"][model]["resources"]["gpu"]
            result = finding(job.rule, model, gpus)
            result.jobs += [f"{job.rule} {model}/{c}/seed{s}" for c in job.chains for s in job.seeds]
            shape = shape_of(model)
            if shape is None:
                result.consider("load", 0, False, "the model's shape is not known offline")
                continue
            memory = InferenceMemory(shape, 2, gpus)
            free = planned_free_bytes(shape, gpu_bytes, gpus)
            weights = gpu_bytes - free  # the weights on the busiest GPU and the CUDA reserve
            budget = inference_budget(free)
            if budget <= 0:
                result.consider(
                    "load", weights, False, f"the weights and CUDA reserve need {weights / GIB:.1f} GiB per GPU"
                )
                continue
            cap = inference_settings(config, model)["batch_size"]
            for step in state_steps(config, model, job.steps, loads):
                activations, ok, why = planned_step_peak(step, memory, budget, cap)
                result.consider(step.name, weights + activations, ok, why)
    # training jobs
    for model in config["grid"]["models"]:
        if not gpu_model(model):
            continue
        shape = shape_of(model)
        gpus = config["models"][model]["resources"]["gpu"]
        result = finding("train_stage", model, gpus)
        for chain in trained_chains(config, model):
            stage = chains.parse_chain(chain)[-1]
            hp = training_hyperparameters(config, model, chain.split("+")[-1])
            longest = training_row_tokens(stage, loads, hp["max_length"], config)
            jobs = [f"train_stage {model}/{chain}/seed{s}" for s in model_seeds(config, model)]
            result.jobs += jobs
            if shape is None:
                result.consider(f"{chain}", 0, False, "the model's shape is not known offline")
                continue
            try:
                plan = fitted_plan(hp, shape, longest, gpu_bytes, gpus, who=jobs[0])
            except TrainingDoesNotFit as error:
                result.consider(f"{chain}: {longest} tokens", 0, False, str(error).split(": ", 1)[1])
                continue
            if plan is not None:
                what = f"{chain}: micro-batch {plan.micro_batch} x {plan.sequence_length} tokens" + (
                    ", checkpointed" if plan.checkpointing else ""
                )
                result.consider(what, plan.per_gpu, plan.fits)
    return [f for f in findings.values() if f.jobs]


def training_row_tokens(stage: chains.Stage, loads: Workloads, max_length: int, config: dict[str, Any]) -> int:
    """The longest training row a stage's data can have, in tokens (at most max_length: longer rows are
    dropped)."""
    if stage.kind == "intervention":
        train = config["pairs"]["train_dataset"]
        other = f"{train}_summaries_{config['pairs']['comparator']}"
        summary = loads.longest(other) if other in loads.lengths else config["summaries"]["max_new_tokens"]
        longest = (
            loads.overhead
            + loads.longest(summaries_name(train))
            + 2 * max(summary, config["summaries"]["max_new_tokens"])
        )
    elif stage.kind == "em" and f"em_{stage.name}" in loads.lengths:
        longest = loads.overhead + loads.longest(f"em_{stage.name}")
    elif stage.kind == "baseline" and stage.name in loads.lengths:
        longest = loads.overhead + loads.longest(stage.name)
    else:
        longest = max_length  # not bounded by data measured here
    return min(longest, max_length)


def report(findings: list[Finding], gpu_bytes: int) -> str:
    lines = [
        f"GPU memory audit: every GPU job on cards of {gpu_bytes / GIB:.0f} GiB (the planner's usable share of it: "
        "training 92%, inference what the weights leave)",
        f"{'rule':<46} {'model':<16} {'jobs':>5}  {'GPUs':>4}  {'largest planned step':<58} {'peak/GPU':>9}  fits",
    ]
    for f in sorted(findings, key=lambda f: (f.model, f.rule)):
        peak = f"{f.peak / GIB:6.1f} GiB" if f.peak else "      -"
        lines.append(
            f"{f.rule:<46} {f.model:<16} {len(f.jobs):>5}  {f.gpus:>4}  {f.step[:58]:<58} {peak:>9}  "
            + ("yes" if f.fits else f"NO: {f.why}")
        )
    failing = [f for f in findings if not f.fits]
    jobs = sum(len(f.jobs) for f in findings)
    if failing:
        lines.append(f"{sum(len(f.jobs) for f in failing)} of {jobs} GPU jobs would not fit:")
        lines += [f"  {f.jobs[0]}" + (f" (and {len(f.jobs) - 1} more)" if len(f.jobs) > 1 else "") for f in failing]
    else:
        lines.append(f"All {jobs} GPU jobs fit.")
    return "\n".join(lines)


DESCRIPTION = (
    "Plan every GPU job of a config against GPUs of a given size, offline; exit 1 naming any job that would not fit."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The audit's options, on its own parser or on `python -m sgtr_em.memory`'s `audit` subcommand."""
    parser.add_argument("--configfile", nargs="+", default=[], help="config files, as for snakemake")
    parser.add_argument("--config", nargs="*", default=[], metavar="KEY=VALUE", help="overrides, as for snakemake")
    parser.add_argument("--gpu-gib", type=float, required=True, help="memory of one GPU in GiB (80 for an H100)")


def run(args: argparse.Namespace) -> int:
    """The audit of parsed options (`add_arguments`): its report on stdout, 0 when every job fits."""
    overrides = dict(item.split("=", 1) for item in args.config)
    try:
        # the grid's shape only: nothing is fetched, so pins (an empty lock offline) do not matter
        config = load(compose(DEFAULT_CONFIG, args.configfile, {"strict_pins": "false", **overrides}), workdir=None)
    except ConfigError as error:
        print(f"Config error: {error}", file=sys.stderr)
        return 2
    gpu_bytes = int(args.gpu_gib * GIB)
    findings = audit(config, gpu_bytes)
    print(report(findings, gpu_bytes))
    return 0 if all(f.fits for f in findings) else 1
