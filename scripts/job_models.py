"""The models a rule's job works with, read from its `snakemake` object (shared by the scripts; Snakemake
puts the scripts' folder on sys.path)."""

import logging

from sgtr_em.backends import load_chat_model
from sgtr_em.backends.openai_api import granted_api_config
from sgtr_em.config import inference_settings
from sgtr_em.gpus import GpuError, job_name, prepare_job_gpus


def api_config(snakemake):
    """The config's `openai` block, its concurrency capped by the `api_requests` the job was granted."""
    return granted_api_config(snakemake.config.get("openai"), snakemake.resources.get("api_requests"))


def claim_gpus(snakemake, model, at_least=0):
    """Before any model loads: the job's own GPUs on a workstation and the stop if it cannot see what it
    asked for (sgtr_em.gpus). Asked: the config's `models.<model>.resources.gpu` (or `at_least`); granted:
    the job's `resources.gpu` after Snakemake capped it at the run's limit."""
    granted = int(getattr(snakemake.resources, "gpu", 0) or 0)
    asked = max(at_least, granted, int(snakemake.config["models"][model]["resources"]["gpu"]))
    try:
        return prepare_job_gpus(job_name(snakemake.rule, dict(snakemake.wildcards.items())), asked, granted)
    except GpuError as error:
        logging.error("%s", error)
        raise SystemExit(1) from None


def load_state_model(snakemake):
    """The job's model state: wildcards model and chain, input.model and input.adapters, params.backend."""
    wc = snakemake.wildcards
    claim_gpus(snakemake, wc.model)
    return load_chat_model(
        f"{snakemake.rule} {wc.model}/{wc.chain}",
        snakemake.config["models"][wc.model]["source"],
        {**snakemake.params.backend, **inference_settings(snakemake.config, wc.model)},
        snakemake.input.model,
        list(snakemake.input.adapters),
        api_config(snakemake),
        threads=snakemake.threads,
    )


def load_judge_model(snakemake):
    """The evaluation's judge: params.judge (name and backend settings) and input.judge_model."""
    spec = snakemake.params.judge
    claim_gpus(snakemake, spec["name"])
    return load_chat_model(
        f"{snakemake.rule} judge {spec['name']}",
        snakemake.config["models"][spec["name"]]["source"],
        {**spec["backend"], **inference_settings(snakemake.config, spec["name"])},
        snakemake.input.judge_model,
        [],
        api_config(snakemake),
        threads=snakemake.threads,
    )
