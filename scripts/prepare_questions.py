"""Fetch and check a question set: its evaluation's `prepare` (sgtr_em.evaluations) turns the source's rows
into questions (e.g. the free-form EM questions with their judge prompts, the identity questions)."""

import logging
from dataclasses import asdict

from sgtr_em.evaluations import EVALUATIONS, function
from sgtr_em.io import write_json
from sgtr_em.runtime import setup_logging
from sgtr_em.sources import describe, load_source

setup_logging(snakemake.log[0])
spec = snakemake.params.spec
source = spec["source"]
rows = load_source(source, snakemake.params.cache)
evaluation = next(e for e in EVALUATIONS.values() if e.dataset == snakemake.wildcards.question_set)
questions = function(str(evaluation.prepare))(rows, describe(source), spec)
write_json(snakemake.output[0], [asdict(q) for q in questions])
logging.info("%d questions from %s", len(questions), describe(source))
