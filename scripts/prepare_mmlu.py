"""Fetch and validate MMLU: few-shot examples (dev split) and evaluated questions (test split)."""

import logging
from dataclasses import asdict

from sgtr_em.io import write_jsonl
from sgtr_em.mmlu import EVAL_SPLIT, load_mmlu
from sgtr_em.runtime import setup_logging
from sgtr_em.sources import describe

setup_logging(snakemake.log[0])
spec = snakemake.params.spec
questions = load_mmlu(spec, snakemake.params.cache)
write_jsonl(snakemake.output[0], [asdict(q) for q in questions])
evaluated = [q for q in questions if q.split == EVAL_SPLIT]
logging.info(
    "%d questions to evaluate in %d subjects, %d few-shot examples, from %s",
    len(evaluated),
    len({q.subject for q in evaluated}),
    len(questions) - len(evaluated),
    describe(spec["source"]),
)
