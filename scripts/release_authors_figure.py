"""Redraw one list of the authors' plotting scripts from the re-scored released files."""

import logging

from sgtr_em.plot import figure_source
from sgtr_em.release.figures import draw_authors_figure
from sgtr_em.runtime import setup_logging

setup_logging(snakemake.log[0])
with figure_source(snakemake.params.source_note):
    rows = draw_authors_figure(
        snakemake.wildcards.name,
        authors_lists=snakemake.input.authors_lists,
        truthfulqa_per_file=snakemake.input.truthfulqa_per_file,
        self_recognition_per_file=snakemake.input.self_recognition_per_file,
        protocol=snakemake.params.protocol,
        png=snakemake.output.png,
        pdf=snakemake.output.pdf,
    )
for row in rows:
    logging.info("%s: mean %.4f over %d files", row["condition"], row["mean"], row["n"])
