"""The models a rule's job works with, read from its `snakemake` object (shared by the scripts; Snakemake
puts the scripts' folder on sys.path)."""

from sgtr_em.backends import load_chat_model


def load_state_model(snakemake):
    """The job's model state: wildcards model and chain, input.model and input.adapters, params.backend."""
    wc = snakemake.wildcards
    return load_chat_model(
        f"{snakemake.rule} {wc.model}/{wc.chain}",
        snakemake.config["models"][wc.model]["source"],
        snakemake.params.backend,
        snakemake.input.model,
        list(snakemake.input.adapters),
        snakemake.config.get("openai"),
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
        snakemake.config.get("openai"),
        threads=snakemake.threads,
    )
