"""Fetch an article set and keep the first `limit` articles in source order."""

import logging

from sgtr_em.data import prepare_articles
from sgtr_em.io import write_jsonl
from sgtr_em.runtime import setup_logging
from sgtr_em.sources import describe, load_source

setup_logging(snakemake.log[0])
spec = snakemake.params.spec
rows = load_source(spec["source"], snakemake.params.cache)
articles = prepare_articles(rows, spec["id_field"], spec["text_field"], spec["limit"], describe(spec["source"]))
write_jsonl(snakemake.output[0], articles)
logging.info("%d articles from %s", len(articles), describe(spec["source"]))
