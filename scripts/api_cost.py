"""Requests, tokens and dollars of every API job of the grid, estimated from the prepared inputs before
spending (sgtr_em.cost). params.files: prepared inputs by role (mmlu, em_questions, identity_questions
optional: an enabled evaluation without its file is listed as not estimated). Earlier jobs' summaries
and sampled answers are used where they exist."""

import logging
import os

from sgtr_em.cost import DataFiles, estimate, write_outputs
from sgtr_em.paths import EM_ANSWERS, IDENTITY_ANSWERS, SUMMARIES
from sgtr_em.runtime import setup_logging

terminal = os.fdopen(os.dup(2), "w")  # the table is also shown on the terminal
setup_logging(snakemake.log[0])
files = snakemake.params.files
# Where earlier jobs' sampled answers are (used when they exist).
ANSWERS = {"em_questions": EM_ANSWERS, "identity": IDENTITY_ANSWERS}


def existing(path):
    return path if os.path.exists(path) else None


def existing_summaries(model, chain, seed, dataset):
    return existing(SUMMARIES.format(model=model, chain=chain, seed=seed, dataset=dataset))


def existing_answers(key, model, chain, seed):
    pattern = ANSWERS.get(key)
    return existing(pattern.format(model=model, chain=chain, seed=seed)) if pattern else None


result = estimate(
    snakemake.config,
    DataFiles(
        articles=files["articles"],
        truthfulqa=files["truthfulqa"],
        em=files["em"],
        baselines=files["baselines"],
        static_summaries=files["static_summaries"],
        released_summaries=files.get("released_summaries", {}),
        mmlu=files.get("mmlu"),
        em_questions=files.get("em_questions"),
        identity_questions=files.get("identity_questions"),
        existing_summaries=existing_summaries,
        existing_answers=existing_answers,
    ),
)
text = write_outputs(result, snakemake.output.json, snakemake.output.md)
logging.info("\n%s", text)
print(text, file=terminal, flush=True)
print(f"(written to {snakemake.output.md} and {snakemake.output.json})", file=terminal, flush=True)
