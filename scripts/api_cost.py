"""Requests, tokens and dollars of every API job of the default target, estimated before spending by running
each job's code dry on the prepared inputs (sgtr_em.cost); earlier jobs' outputs are read where they exist."""

import logging
import os

from sgtr_em.cost import estimate, write_outputs
from sgtr_em.jobs import Job
from sgtr_em.runtime import setup_logging
from sgtr_em.targets import Targets

terminal = os.fdopen(os.dup(2), "w")  # the table is also shown on the terminal
setup_logging(snakemake.log[0])
result = estimate(Targets(Job(snakemake).config))
text = write_outputs(result, snakemake.output.json, snakemake.output.md)
logging.info("\n%s", text)
print(text, file=terminal, flush=True)
print(f"(written to {snakemake.output.md} and {snakemake.output.json})", file=terminal, flush=True)
