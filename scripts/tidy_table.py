"""One tidy CSV per evaluation (a row per condition, seed, protocol, metric and subgroup), plus mean / sample sd /
n over seeds per condition."""

import logging

from sgtr_em.aggregate import SUMMARY_COLUMNS, TIDY_COLUMNS, summarise, tidy_rows
from sgtr_em.io import read_json, write_csv
from sgtr_em.runtime import setup_logging

setup_logging(snakemake.log[0])
rows = [row for path in snakemake.input for row in tidy_rows(read_json(path))]
write_csv(snakemake.output.tidy, rows, TIDY_COLUMNS)
write_csv(snakemake.output.summary, summarise(rows), SUMMARY_COLUMNS)
logging.info("%d rows from %d files", len(rows), len(snakemake.input))
