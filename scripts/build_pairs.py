"""Training file of one identity intervention, and its statistics."""

import logging

from sgtr_em.io import read_articles, read_summaries, write_json, write_jsonl
from sgtr_em.pairs import build_pairs, check_pairs
from sgtr_em.prompts import read_prompt_set
from sgtr_em.runtime import setup_logging

setup_logging(snakemake.log[0])
wc = snakemake.wildcards
prompts = read_prompt_set(snakemake.input.prompts)
rows, stats = build_pairs(
    read_articles(snakemake.input.articles),
    read_summaries(snakemake.input.self_summaries),
    read_summaries(snakemake.input.other_summaries),
    wc.intervention,
    framing=wc.framing,
    system_variant=wc.sysvariant,
    identity_system=snakemake.params.identity_system_prompt,
    confuse_size=snakemake.params.confuse_size,
    seed=snakemake.params.seed,
    missing_summaries=snakemake.params.missing_summaries,
    prompts=prompts,
)
check_pairs(
    stats,
    f"{snakemake.output.pairs} (from {snakemake.input.articles}, {snakemake.input.self_summaries}, "
    f"{snakemake.input.other_summaries})",
)
write_jsonl(snakemake.output.pairs, rows)
write_json(snakemake.output.stats, {**stats.as_dict(), "prompts": prompts.provenance()})
logging.info("%s: %s", wc.intervention, stats.as_dict())
