"""Summaries of every article by one model state (batched, seeded): the base summaries pairs and comparisons
are built from, and a parent state's own summaries (pairs.source: own). A grid state's summaries come from
its evaluation job (eval_state.py), which loads the state anyway."""

import logging

from sgtr_em.io import read_articles, write_jsonl
from sgtr_em.jobs import Job
from sgtr_em.prompts import read_prompt_set
from sgtr_em.runtime import setup_logging
from sgtr_em.state_evals import summarise

setup_logging(snakemake.log[0])
prompts = read_prompt_set(snakemake.input.prompts)
rows = summarise(
    Job(snakemake).load_state_model(),
    read_articles(snakemake.input.articles),
    style=snakemake.params.style,
    prompts=prompts,
    sampling=snakemake.params.sampling,
    seed=int(snakemake.wildcards.seed),
)
write_jsonl(snakemake.output[0], rows)
logging.info("%d summaries (%s prompts), %d empty", len(rows), prompts.name, sum(not r["summary"] for r in rows))
