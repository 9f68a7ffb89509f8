"""Per-condition summaries of one released model, restricted to the conditions its figures draw."""

import logging

from sgtr_em.aggregate import SUMMARY_COLUMNS
from sgtr_em.io import read_csv, write_csv
from sgtr_em.release.importer import figure_summary
from sgtr_em.runtime import setup_logging

setup_logging(snakemake.log[0])
model = snakemake.wildcards.model
settings = snakemake.params.settings
for output, tidy, eval_name in (
    (snakemake.output.truthfulqa, snakemake.input.truthfulqa, "truthfulqa"),
    (snakemake.output.self_recognition, snakemake.input.self_recognition, settings["self_recognition"]),
):
    rows = figure_summary(read_csv(tidy), eval_name, model, settings["chains"])
    write_csv(output, rows, [*SUMMARY_COLUMNS, "values"])
    logging.info("%s / %s: %d condition rows", model, eval_name, len(rows))
