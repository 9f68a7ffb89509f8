"""A rule's job as its script sees it: the `snakemake` object Snakemake gives a script, with each thing the job
reads from the config besides its params named here. Those are untracked on purpose (changing them reruns
nothing: API connection settings, how many prompts a batch holds, the run's name in provenance), so they are
read through these readers, not by indexing the config in scripts."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from .backends import ChatModel, load_chat_model
from .backends.openai_api import granted_api_config
from .gpus import CudaStatus, GpuError, job_name, prepare_job_gpus
from .grid import inference_settings, model_settings, training_settings
from .runtime import model_identity


class Job:
    """One job of a rule (`snakemake`: the object Snakemake injects into the rule's script)."""

    def __init__(self, snakemake: Any) -> None:
        self.snakemake = snakemake
        self.config: dict[str, Any] = snakemake.config
        self.wildcards = snakemake.wildcards
        self.rule: str = snakemake.rule

    # ------------------------------------------------------------------------------ what it names --
    @property
    def run_name(self) -> str:
        return self.config["run_name"]

    @property
    def summary_seed(self) -> int:
        return self.config["summary_seed"]

    def source(self, model: str | None = None) -> dict[str, Any]:
        """A model's source (default: the job's `model` wildcard)."""
        return model_settings(self.config, model or self.wildcards.model)["source"]

    def model_identity(self, model: str | None = None) -> dict[str, Any]:
        """A model's identity for provenance; for the job's own model, with the commit of the snapshot its
        input records (a hub model), else as configured."""
        model = model or self.wildcards.model
        own = model == getattr(self.wildcards, "model", None)
        return model_identity(model, self.source(model), self.snakemake.input.get("model") if own else None)

    # --------------------------------------------------------------------------- untracked settings --
    def api_config(self) -> dict[str, Any]:
        """The config's `openai` block, its concurrency capped by the `api_requests` the job was granted."""
        return granted_api_config(self.config.get("openai"), self.snakemake.resources.get("api_requests"))

    def batch_sizes(self, steps: Iterable[str]) -> dict[str, int | None]:
        """The most prompts per batch of each step (an evaluation's own eval.<key>.batch_size, else the model's)."""
        return {step: inference_settings(self.config, self.wildcards.model, step)["batch_size"] for step in steps}

    def untracked_training_settings(self) -> dict[str, Any]:
        """The training stage's settings that change no result (`grid.training_settings`)."""
        return training_settings(self.config, self.wildcards.model, self.wildcards.chain)[1]

    # -------------------------------------------------------------------------------- its models --
    def claim_gpus(self, model: str, at_least: int = 0) -> CudaStatus | None:
        """Before any model loads: the job's own GPUs on a workstation, and the stop if it cannot see what it
        asked for (sgtr_em.gpus). Asked: the config's `models.<model>.resources.gpu` (or `at_least`); granted:
        the job's `resources.gpu` after Snakemake capped it at the run's limit."""
        granted = int(getattr(self.snakemake.resources, "gpu", 0) or 0)
        asked = max(at_least, granted, int(model_settings(self.config, model)["resources"]["gpu"]))
        try:
            return prepare_job_gpus(job_name(self.rule, dict(self.wildcards.items())), asked, granted)
        except GpuError as error:
            logging.error("%s", error)
            raise SystemExit(1) from None

    def load_state_model(self) -> ChatModel:
        """The job's model state: wildcards model and chain, input.model and input.adapters, params.backend
        (with how its batches are sized, which is no param)."""
        wc = self.wildcards
        self.claim_gpus(wc.model)
        return load_chat_model(
            f"{self.rule} {wc.model}/{wc.chain}",
            self.source(wc.model),
            {**self.snakemake.params.backend, **inference_settings(self.config, wc.model)},
            self.snakemake.input.model,
            list(self.snakemake.input.adapters),
            self.api_config(),
            threads=self.snakemake.threads,
        )

    def load_judge_model(self) -> ChatModel:
        """The evaluation's judge: params.judge (name and backend settings) and input.judge_model."""
        spec = self.snakemake.params.judge
        self.claim_gpus(spec["name"])
        return load_chat_model(
            f"{self.rule} judge {spec['name']}",
            self.source(spec["name"]),
            {**spec["backend"], **inference_settings(self.config, spec["name"])},
            self.snakemake.input.judge_model,
            [],
            self.api_config(),
            threads=self.snakemake.threads,
        )
