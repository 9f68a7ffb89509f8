"""The model state an evaluation job evaluates and what its steps read: ground for the evaluations' own
modules (each builds its record from these) and for the job that runs them (sgtr_em.state_evals)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from .backends import ChatModel
from .evaluations import summaries_step
from .io import read_articles, read_json, read_jsonl, read_summaries
from .prompts import PromptSet, read_prompt_set
from .runtime import provenance


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


@dataclass
class StateJobData:
    """What a state job's steps read, by input role (the rule's named inputs), each read once when first
    needed; a state's summaries written by an earlier step of the same job are read from its output.
    `summary_seed` is recorded with self-recognition; `batch_sizes` hold an evaluation's own cap on prompts per
    batch (eval.<key>.batch_size), which changes no result."""

    inputs: Mapping[str, Any]
    outputs: Mapping[str, str]
    summary_seed: int = 0
    batch_sizes: Mapping[str, int | None] = field(default_factory=dict)
    _read: dict[str, Any] = field(default_factory=dict, repr=False)

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
