"""Fetch a static comparator's summaries (e.g. Claude-2.1's), restricted to the article set."""

import logging

from sgtr_em.data import prepare_summaries
from sgtr_em.io import read_articles, write_jsonl
from sgtr_em.runtime import setup_logging
from sgtr_em.sources import describe, load_source

setup_logging(snakemake.log[0])
spec = snakemake.params.spec
article_ids = list(read_articles(snakemake.input.articles))
rows = load_source(spec["source"], snakemake.params.cache)
summaries = prepare_summaries(rows, spec["id_field"], spec["text_field"], article_ids, describe(spec["source"]))
write_jsonl(snakemake.output[0], summaries)
logging.info("%d of %d articles have a summary", len(summaries), len(article_ids))
