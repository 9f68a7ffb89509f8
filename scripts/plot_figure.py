"""Draw one of the paper's figures from the per-condition summary tables."""

import logging

from sgtr_em.plot import draw_figure
from sgtr_em.runtime import setup_logging

setup_logging(snakemake.log[0])
draw_figure(
    snakemake.wildcards.figure,
    selfrec_summary=snakemake.input.get("selfrec"),
    truthfulqa_summary=snakemake.input.get("truthfulqa"),
    optional_summary=snakemake.input.get("optional"),
    selfrec_protocol=snakemake.params.selfrec_protocol,
    truthfulqa_protocol=snakemake.params.truthfulqa_protocol,
    comparator=snakemake.params.comparator,
    png=snakemake.output.png,
    pdf=snakemake.output.pdf,
    model=snakemake.wildcards.model,
)
logging.info("drew %s", snakemake.wildcards.figure)
