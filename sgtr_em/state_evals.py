"""The evaluations of one model state, from one loaded model: the records an evaluation job writes.

A state is loaded once per job (process start-up, library imports and the model's weights are most of a
small evaluation's cost) and each step writes its own output, at the evaluation's own path, with its own
settings in the output's provenance. The steps are named by their evaluation (registered in
sgtr_em.evaluations, which names the function that runs each) and `summaries-<dataset>` for the state's
summaries of an article set. `run_state_job` keeps each finished step
under a fingerprint (`checkpoints.StepCheckpoints`), so a killed job resumes at the step it had reached and
loads the model only if a step is left to compute.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from .backends import ChatModel
from .checkpoints import StepCheckpoints, input_fingerprint
from .evaluated_state import EvaluatedState, StateJobData
from .evaluations import evaluation_of, function, summaries_dataset
from .io import sha256_file, write_json, write_jsonl
from .prompts import PromptSet, summary_messages
from .runtime import package_sha256

log = logging.getLogger(__name__)


def summarise(
    model: ChatModel, articles: dict[str, str], *, style: str, prompts: PromptSet, sampling: dict[str, Any], seed: int
) -> list[dict[str, str]]:
    """One summary per article (rows {id, summary}), seeded."""
    replies = model.generate(
        [summary_messages(text, style, prompts) for text in articles.values()], seed=seed, **sampling
    )
    return [{"id": aid, "summary": reply} for aid, reply in zip(articles, replies, strict=True)]


def run_step(
    step: str, settings: dict[str, Any], model: ChatModel, state: EvaluatedState, data: StateJobData
) -> dict[str, Any] | list[dict[str, str]]:
    """One step's output: summary rows for a summaries step, else its evaluation's record (the registry's
    `run`, sgtr_em.evaluations)."""
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
    evaluation = evaluation_of(step)
    if evaluation is None:
        raise ValueError(f"{state.rule}: no evaluation or summaries step {step!r}")
    return function(evaluation.run)(model, state, step, settings, data)


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
    batch_sizes: Mapping[str, int | None] | None = None,
) -> None:
    """Run a state job's steps in order, each writing its output as soon as it is done. A step kept from an
    earlier attempt of this very job (same inputs, settings and code: `StepCheckpoints`) is put back instead
    of computed; the model is loaded only when a step is left to compute. The kept steps are dropped once
    every output is written."""
    checkpoints = StepCheckpoints(work_dir, job_fingerprint(inputs, state))
    data = StateJobData(inputs, outputs, summary_seed, batch_sizes or {})
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
            result = run_step(step, settings, model, state, data)
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
