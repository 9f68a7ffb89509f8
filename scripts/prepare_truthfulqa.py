"""Fetch the binary-choice TruthfulQA CSV."""

import logging

from sgtr_em.data import prepare_truthfulqa
from sgtr_em.io import write_jsonl
from sgtr_em.runtime import setup_logging
from sgtr_em.sources import describe, load_source

setup_logging(snakemake.log[0])
spec = snakemake.params.spec
questions = prepare_truthfulqa(
    load_source(spec["source"], snakemake.params.cache), spec["limit"], describe(spec["source"])
)
write_jsonl(snakemake.output[0], questions)
logging.info("%d questions", len(questions))
