"""Per-condition summaries of one released model, restricted to the conditions its figures draw."""

import logging

from sgtr_em.aggregate import SUMMARY_COLUMNS
from sgtr_em.io import write_csv
from sgtr_em.release.importer import figure_summary, read_evals
from sgtr_em.runtime import setup_logging

setup_logging(snakemake.log[0])
evals = read_evals(snakemake.input.evals)
model = snakemake.wildcards.model
chains = snakemake.params.figure_chains
for output, eval_name in (
    (snakemake.output.truthfulqa, "truthfulqa"),
    (snakemake.output.self_recognition, snakemake.params.selfrec_eval),
):
    rows = figure_summary(evals, eval_name, model, chains)
    write_csv(output, rows, [*SUMMARY_COLUMNS, "values"])
    logging.info("%s / %s: %d condition rows", model, eval_name, len(rows))
