"""Tokens and dollars of every API job of the grid, estimated from the prepared inputs before spending."""

import logging
import os

from sgtr_em.cost import DataFiles, estimate, write_outputs
from sgtr_em.runtime import setup_logging
from sgtr_em.targets import SUMMARIES

terminal = os.fdopen(os.dup(2), "w")  # the table is also shown on the terminal
setup_logging(snakemake.log[0])
files = snakemake.params.files


def existing_summaries(model, chain, seed, dataset):
    path = SUMMARIES.format(model=model, chain=chain, seed=seed, dataset=dataset)
    return path if os.path.exists(path) else None


result = estimate(
    snakemake.config,
    DataFiles(
        articles=files["articles"],
        truthfulqa=files["truthfulqa"],
        em=files["em"],
        baselines=files["baselines"],
        static_summaries=files["static_summaries"],
        existing_summaries=existing_summaries,
    ),
)
text = write_outputs(result, snakemake.output.json, snakemake.output.md)
logging.info("\n%s", text)
print(text, file=terminal, flush=True)
print(f"(written to {snakemake.output.md} and {snakemake.output.json})", file=terminal, flush=True)
