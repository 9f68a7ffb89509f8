"""Training file of one identity intervention, and its statistics."""

import logging

from sgtr_em.io import read_articles, read_summaries, write_json, write_jsonl
from sgtr_em.pairs import check_pairs, pair_file_rows
from sgtr_em.prompts import read_prompt_set
from sgtr_em.runtime import setup_logging

setup_logging(snakemake.log[0])
wc = snakemake.wildcards
prompts = read_prompt_set(snakemake.input.prompts)
articles = read_articles(snakemake.input.articles)
comparators = snakemake.params.comparators
# One file is a string, several a list (Snakemake's named input).
other_files = (
    [snakemake.input.other_summaries]
    if isinstance(snakemake.input.other_summaries, str)
    else list(snakemake.input.other_summaries)
)
# With several comparators each article's 'other' is drawn from one of them (seeded by pairs.seed).
sources = {name: read_summaries(path) for name, path in zip(comparators, other_files, strict=True)}
rows, stats = pair_file_rows(
    articles,
    read_summaries(snakemake.input.self_summaries),
    sources,
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
    f"{', '.join(other_files)})",
)
write_jsonl(snakemake.output.pairs, rows)
write_json(
    snakemake.output.stats, {**stats.as_dict(), "comparators": list(comparators), "prompts": prompts.provenance()}
)
logging.info("%s: %s", wc.intervention, stats.as_dict())
