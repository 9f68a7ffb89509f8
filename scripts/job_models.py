"""The models a rule's job works with, read from its `snakemake` object (shared by the scripts; Snakemake
puts the scripts' folder on sys.path)."""

from sgtr_em.backends import load_chat_model
from sgtr_em.backends.openai_api import granted_api_config


def api_config(snakemake):
    """The config's `openai` block, its concurrency capped by the `api_requests` the job was granted."""
    return granted_api_config(snakemake.config.get("openai"), snakemake.resources.get("api_requests"))


def load_state_model(snakemake):
    """The job's model state: wildcards model and chain, input.model and input.adapters, params.backend."""
    wc = snakemake.wildcards
    return load_chat_model(
        f"{snakemake.rule} {wc.model}/{wc.chain}",
        snakemake.config["models"][wc.model]["source"],
        snakemake.params.backend,
        snakemake.input.model,
        list(snakemake.input.adapters),
        api_config(snakemake),
        threads=snakemake.threads,
    )


def load_judge_model(snakemake):
    """The evaluation's judge: params.judge (name and backend settings) and input.judge_model."""
    spec = snakemake.params.judge
    return load_chat_model(
        f"{snakemake.rule} judge {spec['name']}",
        snakemake.config["models"][spec["name"]]["source"],
        spec["backend"],
        snakemake.input.judge_model,
        [],
        api_config(snakemake),
        threads=snakemake.threads,
    )
