"""Tidy rows and per-condition summaries of one released model, restricted to the conditions its figures draw."""

import logging

from sgtr_em.aggregate import SUMMARY_COLUMNS, TIDY_COLUMNS, summarise
from sgtr_em.io import read_csv, write_csv
from sgtr_em.release.importer import figure_rows
from sgtr_em.runtime import setup_logging

setup_logging(snakemake.log[0])
model = snakemake.wildcards.model
settings = snakemake.params.settings
for kind, tidy, eval_name in (
    ("truthfulqa", snakemake.input.truthfulqa, "truthfulqa"),
    ("self_recognition", snakemake.input.self_recognition, settings["self_recognition"]),
):
    rows = figure_rows(read_csv(tidy), eval_name, model, settings["chains"])
    write_csv(snakemake.output[kind], rows, TIDY_COLUMNS)
    write_csv(snakemake.output[f"{kind}_summary"], summarise(rows), SUMMARY_COLUMNS)
    logging.info("%s / %s: %d tidy rows", model, eval_name, len(rows))
