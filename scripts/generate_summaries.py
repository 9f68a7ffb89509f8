"""Summaries of every article by one model state (batched, seeded)."""

import logging

from job_models import load_state_model

from sgtr_em.io import read_articles, write_jsonl
from sgtr_em.prompts import read_prompt_set, summary_messages
from sgtr_em.runtime import setup_logging

setup_logging(snakemake.log[0])
articles = read_articles(snakemake.input.articles)
model = load_state_model(snakemake)
style = snakemake.params.style
prompts = read_prompt_set(snakemake.input.prompts)
replies = model.generate(
    [summary_messages(text, style, prompts) for text in articles.values()],
    seed=int(snakemake.wildcards.seed),
    **snakemake.params.sampling,
)
write_jsonl(snakemake.output[0], [{"id": aid, "summary": reply} for aid, reply in zip(articles, replies, strict=True)])
logging.info("%d summaries (%s prompts), %d empty", len(replies), prompts.name, sum(not r for r in replies))
