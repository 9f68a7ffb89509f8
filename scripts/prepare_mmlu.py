"""Fetch and validate MMLU: few-shot examples (dev split) and evaluated questions (test split)."""

import logging
from dataclasses import asdict

from sgtr_em.io import InputError, write_jsonl
from sgtr_em.mmlu import EVAL_SPLIT, load_mmlu
from sgtr_em.runtime import setup_logging
from sgtr_em.sources import describe

setup_logging(snakemake.log[0])
spec = snakemake.params.spec
questions = load_mmlu(spec, snakemake.params.cache)
evaluated = [q for q in questions if q.split == EVAL_SPLIT]
if not evaluated:
    raise InputError(
        f"{describe(spec['source'])}: no question of split {spec['eval_split']!r} left to evaluate "
        f"(subjects {spec.get('subjects')}, limit {spec.get('limit')})"
    )
write_jsonl(snakemake.output[0], [asdict(q) for q in questions])
logging.info(
    "%d questions to evaluate in %d subjects, %d few-shot examples, from %s",
    len(evaluated),
    len({q.subject for q in evaluated}),
    len(questions) - len(evaluated),
    describe(spec["source"]),
)
