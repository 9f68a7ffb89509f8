"""Which figures of the released data are drawn; every figure skipped is logged with its reason."""

import logging

from sgtr_em.io import read_csv, read_json, write_csv
from sgtr_em.release.figures import PLAN_COLUMNS, SKIP, plan_authors_figures, plan_figures
from sgtr_em.runtime import setup_logging

setup_logging(snakemake.log[0])
release = snakemake.params.release
plan = plan_figures(
    release,
    snakemake.params.figures,
    read_csv(snakemake.input.truthfulqa_per_condition),
    read_csv(snakemake.input.self_recognition_per_condition),
    release["protocol"],
)
plan += plan_authors_figures(
    read_json(snakemake.input.authors_lists),
    snakemake.input.truthfulqa_per_file,
    snakemake.input.self_recognition_per_file,
)
for row in plan:
    where = f"{row['model']}/{row['figure']}" if row["model"] else f"authors' {row['figure']}"
    if row["status"] == SKIP:
        logging.warning("skip %s: %s", where, row["reason"])
    else:
        logging.info("draw %s%s", where, f" ({row['reason']})" if row["reason"] else "")
write_csv(snakemake.output[0], plan, PLAN_COLUMNS)
