"""The evaluations of one model state, from one loaded model: the records an evaluation job writes.

A state is loaded once per job (process start-up, library imports and the model's weights are most of a
small evaluation's cost) and each step writes its own output, at the evaluation's own path, with its own
settings in the output's provenance. The steps are named by their evaluation (`self_recognition-<comparator>`,
`truthfulqa`, `em_questions` and `identity` for the sampled answers their judges score, `mmlu`) and
`summaries-<dataset>` for the state's summaries of an article set. `run_state_job` keeps each finished step
under a fingerprint (`checkpoints.StepCheckpoints`), so a killed job resumes at the step it had reached and
loads the model only if a step is left to compute.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .backends import ChatModel, decoding_settings
from .checkpoints import StepCheckpoints, input_fingerprint
from .evals import evaluate_self_recognition, evaluate_truthfulqa
from .evaluations import SELF_RECOGNITION, self_recognition_table, summaries_dataset, summaries_step, table_kind
from .io import read_articles, read_json, read_jsonl, read_summaries, sha256_file, write_json, write_jsonl
from .mmlu import PROTOCOL as MMLU_PROTOCOL
from .mmlu import MMLUQuestion, evaluate_mmlu, questions_from_records
from .prompts import PromptSet, read_prompt_set, summary_messages
from .runtime import package_sha256, provenance
from .sampling import AskedQuestion, sample_answers

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class EvaluatedState:
    """The state a job evaluates and what each of its records names: the rule, the model's identity
    (`runtime.model_identity`), its backend settings and the run."""

    rule: str
    model: str
    chain: str
    seed: int
    model_identity: dict[str, Any]
    backend: dict[str, Any]
    run_name: str

    def record(self) -> dict[str, Any]:
        return {"model": self.model, "chain": self.chain, "seed": self.seed}

    def provenance(self, config: dict[str, Any], *, seeds: dict[str, Any], protocols: list[str], **extra: Any):
        return provenance(self.rule, config, model=self.model_identity, seeds=seeds, protocols=protocols, **extra)


def summarise(
    model: ChatModel, articles: dict[str, str], *, style: str, prompts: PromptSet, sampling: dict[str, Any], seed: int
) -> list[dict[str, str]]:
    """One summary per article (rows {id, summary}), seeded."""
    replies = model.generate(
        [summary_messages(text, style, prompts) for text in articles.values()], seed=seed, **sampling
    )
    return [{"id": aid, "summary": reply} for aid, reply in zip(articles, replies, strict=True)]


def self_recognition_output(
    model: ChatModel,
    state: EvaluatedState,
    other: str,
    settings: dict[str, Any],
    *,
    articles: dict[str, str],
    self_summaries: dict[str, str],
    self_summaries_path: str,
    other_summaries: dict[str, str],
    prompts: PromptSet,
    summary_seed: int,
) -> dict[str, Any]:
    """Self-recognition of the state against comparator `other` (settings: eval.self_recognition's, the
    state's decoding, its model's framing and identity system prompt)."""
    result = evaluate_self_recognition(
        model,
        articles,
        self_summaries,
        other_summaries,
        framing=settings["framing"],
        identity_system=settings["identity_system_prompt"],
        protocols=settings["protocols"],
        seed=state.seed,
        sampling=settings["sampling"],
        prompts=prompts,
    )
    recorded = {k: v for k, v in settings.items() if k != "identity_system_prompt"}
    return {
        "eval": self_recognition_table(other),
        "model_state": state.record(),
        "self_source": settings["self_source"],
        "self_summaries": self_summaries_path,
        "other_source": other,
        "framing": settings["framing"],
        "primary_protocol": settings["primary_protocol"],
        **result,
        "provenance": state.provenance(
            {**recorded, "backend": state.backend, "run_name": state.run_name},
            seeds={"training": state.seed, "sampling": state.seed, "summaries": summary_seed},
            protocols=settings["protocols"],
            prompts=prompts.provenance(),
            decoding=decoding_settings(model, settings["sampling"]),
        ),
    }


def truthfulqa_output(
    model: ChatModel, state: EvaluatedState, settings: dict[str, Any], questions: list[dict[str, str]]
) -> dict[str, Any]:
    """TruthfulQA misalignment (1 - p correct) of the state."""
    result = evaluate_truthfulqa(
        model, questions, protocols=settings["protocols"], seed=state.seed, sampling=settings["sampling"]
    )
    return {
        "eval": "truthfulqa",
        "model_state": state.record(),
        "primary_protocol": settings["primary_protocol"],
        **result,
        "provenance": state.provenance(
            {**settings, "backend": state.backend, "run_name": state.run_name},
            seeds={"training": state.seed, "sampling": state.seed},
            protocols=settings["protocols"],
            decoding=decoding_settings(model, settings["sampling"]),
        ),
    }


def sampled_answers_output(
    model: ChatModel,
    state: EvaluatedState,
    settings: dict[str, Any],
    questions: Sequence[AskedQuestion],
) -> dict[str, Any]:
    """N sampled answers per question as asked (the EM questions' chosen paraphrases, or the identity
    questions) for a judging job to score; the provenance names what the answers depend on
    (samples_per_question, sampling, paraphrases, run), which the judging job carries into its own record."""
    answers = sample_answers(
        model,
        questions,
        samples_per_question=settings["samples_per_question"],
        sampling=settings["sampling"],
        seed=state.seed,
    )
    return {
        "model_state": state.record(),
        "answers": answers,
        "provenance": state.provenance(
            {**settings, "run_name": state.run_name},
            seeds={"training": state.seed, "sampling": state.seed},
            protocols=[],
            decoding=decoding_settings(model, settings["sampling"]),
        ),
    }


def mmlu_output(
    model: ChatModel,
    state: EvaluatedState,
    settings: dict[str, Any],
    questions: list[MMLUQuestion],
    rows_per_batch: int | None = None,
) -> dict[str, Any]:
    """MMLU few-shot accuracy (letters A-D scored by next-token probabilities), at most `rows_per_batch`
    prompts per batch (eval.mmlu.batch_size: few-shot prompts are long)."""
    with batch_size(model, rows_per_batch):
        result = evaluate_mmlu(model, questions, n_shots=settings["n_shots"])
    return {
        "eval": "mmlu",
        "model_state": state.record(),
        **result,
        "provenance": state.provenance(
            {**settings, "run_name": state.run_name},
            # Deterministic: nothing is sampled.
            seeds={"training": state.seed, "sampling": None},
            protocols=[MMLU_PROTOCOL],
        ),
    }


@contextlib.contextmanager
def batch_size(model: ChatModel, size: int | None) -> Iterator[None]:
    """The model's batch size set to `size` for a step (None, or a model without batches: left as it is)."""
    if size is None or not hasattr(model, "batch_size"):
        yield
        return
    before = model.batch_size
    model.batch_size = size
    try:
        yield
    finally:
        model.batch_size = before


# ------------------------------------------------------------------------------------ the job --


class StateJobData:
    """What a state job's steps read, by input role (the rule's named inputs), each read once when first
    needed; a state's summaries written by an earlier step of the same job are read from its output."""

    def __init__(self, inputs: Mapping[str, Any], outputs: Mapping[str, str]) -> None:
        self.inputs, self.outputs = inputs, outputs
        self._read: dict[str, Any] = {}

    def _once(self, key: str, read: Callable[[], Any]) -> Any:
        if key not in self._read:
            self._read[key] = read()
        return self._read[key]

    def prompts(self) -> PromptSet:
        return self._once("prompts", lambda: read_prompt_set(self.inputs["prompts"]))

    def articles(self, dataset: str) -> dict[str, str]:
        return self._once(f"articles-{dataset}", lambda: read_articles(self.inputs[f"articles-{dataset}"]))

    def self_summaries(self, dataset: str) -> tuple[dict[str, str], str]:
        """The state's 'self' summaries of `dataset` and their path: written by this job, or an input."""
        path = self.outputs.get(summaries_step(dataset)) or self.inputs["self_summaries"]
        return read_summaries(path), str(path)

    def other_summaries(self, other: str) -> dict[str, str]:
        return read_summaries(self.inputs[f"other_summaries-{other}"])

    def questions(self, dataset: str) -> Any:
        """A prepared question file by its dataset key (JSON Lines for TruthfulQA and MMLU, else JSON)."""
        path = str(self.inputs[dataset])
        return self._once(dataset, lambda: read_jsonl(path) if path.endswith(".jsonl") else read_json(path))


def run_step(
    step: str,
    settings: dict[str, Any],
    model: ChatModel,
    state: EvaluatedState,
    data: StateJobData,
    summary_seed: int,
    mmlu_batch_size: int | None = None,
) -> dict[str, Any] | list[dict[str, str]]:
    """One step's output: summary rows for a summaries step, else the evaluation's record."""
    from .em_judge import EMQuestion, asked_paraphrases
    from .identity import IdentityQuestion

    kind, other = table_kind(step)
    dataset = summaries_dataset(step)
    if dataset is not None:
        return summarise(
            model,
            data.articles(dataset),
            style=settings["style"],
            prompts=data.prompts(),
            sampling=settings["sampling"],
            seed=state.seed,
        )
    if kind == SELF_RECOGNITION and other is not None:
        self_summaries, self_path = data.self_summaries(settings["dataset"])
        return self_recognition_output(
            model,
            state,
            other,
            settings,
            articles=data.articles(settings["dataset"]),
            self_summaries=self_summaries,
            self_summaries_path=self_path,
            other_summaries=data.other_summaries(other),
            prompts=data.prompts(),
            summary_seed=summary_seed,
        )
    if step == "truthfulqa":
        return truthfulqa_output(model, state, settings, data.questions("truthfulqa"))
    if step == "em_questions":
        questions = [EMQuestion(q["id"], tuple(q["paraphrases"]), q["judge_prompts"]) for q in data.questions(step)]
        return sampled_answers_output(model, state, settings, asked_paraphrases(questions, settings["paraphrases"]))
    if step == "identity":
        asked = [IdentityQuestion(q["id"], tuple(q["paraphrases"])) for q in data.questions("identity_questions")]
        return sampled_answers_output(model, state, settings, asked)
    if step == "mmlu":
        mmlu = questions_from_records(data.questions("mmlu"), data.inputs["mmlu"])
        return mmlu_output(model, state, settings, mmlu, mmlu_batch_size)
    raise ValueError(f"{state.rule}: no step {step!r}")


def job_fingerprint(inputs: Mapping[str, Any], state: EvaluatedState) -> dict[str, Any]:
    """What every step of a state job depends on besides its own settings: the contents of the job's inputs
    (model, adapters, data), the model's identity and backend settings, the run, and the code."""
    files = {
        role: [str(p) for p in (paths if isinstance(paths, list | tuple) else [paths])]
        for role, paths in inputs.items()
    }
    return {
        "inputs": {role: input_fingerprint(paths) for role, paths in sorted(files.items())},
        "model": state.model_identity,
        "backend": state.backend,
        "run_name": state.run_name,
        "code_sha256": package_sha256(),
    }


def run_state_job(
    *,
    steps: Mapping[str, dict[str, Any]],
    inputs: Mapping[str, Any],
    outputs: Mapping[str, str],
    state: EvaluatedState,
    load_model: Callable[[], ChatModel],
    work_dir: str | Path,
    summary_seed: int,
    mmlu_batch_size: int | None = None,
) -> None:
    """Run a state job's steps in order, each writing its output as soon as it is done. A step kept from an
    earlier attempt of this very job (same inputs, settings and code: `StepCheckpoints`) is put back instead
    of computed; the model is loaded only when a step is left to compute. The kept steps are dropped once
    every output is written."""
    checkpoints = StepCheckpoints(work_dir, job_fingerprint(inputs, state))
    data = StateJobData(inputs, outputs)
    model: ChatModel | None = None
    earlier: dict[str, str] = {}
    for step, settings in steps.items():
        output = outputs[step]
        if checkpoints.restore(step, output, settings, earlier):
            log.info("%s: kept from an earlier attempt of this job (not computed again)", step)
        else:
            if model is None:
                started = time.monotonic()
                model = load_model()
                log.info(
                    "loaded %s/%s seed %s in %.1f s", state.model, state.chain, state.seed, time.monotonic() - started
                )
            began = time.monotonic()
            result = run_step(step, settings, model, state, data, summary_seed, mmlu_batch_size)
            if isinstance(result, list):
                write_jsonl(output, result)
                summary = f"{len(result)} summaries, {sum(not r['summary'] for r in result)} empty"
            else:
                write_json(output, result)
                summary = str(result.get("metrics", f"{len(result.get('answers', []))} answers"))
            checkpoints.save(step, output, settings, earlier)
            log.info("%s (%.1f s): %s", step, time.monotonic() - began, summary)
        earlier[step] = sha256_file(output)
    checkpoints.clear(list(steps))
