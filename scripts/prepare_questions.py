"""Fetch and validate a question set (free-form EM questions with judge prompts, or identity questions)."""

import logging
from dataclasses import asdict

from sgtr_em.em_judge import parse_em_questions
from sgtr_em.identity import parse_identity_questions
from sgtr_em.io import write_json
from sgtr_em.runtime import setup_logging
from sgtr_em.sources import describe, load_source

setup_logging(snakemake.log[0])
spec = snakemake.params.spec
source = spec["source"]
rows = load_source(source, snakemake.params.cache)
if snakemake.wildcards.question_set == "em_questions":
    questions = parse_em_questions(rows, describe(source), spec.get("ids"))
else:
    questions = parse_identity_questions(rows, describe(source))
write_json(snakemake.output[0], [asdict(q) for q in questions])
logging.info("%d questions from %s", len(questions), describe(source))
