"""Draw one of the paper's figures from the per-condition summary tables."""

import logging

from sgtr_em.plot import draw_figure, figure_source
from sgtr_em.runtime import setup_logging

setup_logging(snakemake.log[0])
# A figure of released results (rule release_figure) says so above it.
with figure_source(snakemake.params.get("source_note")):
    draw_figure(
        snakemake.wildcards.figure,
        self_recognition_summary=snakemake.input.get("self_recognition"),
        truthfulqa_summary=snakemake.input.get("truthfulqa"),
        optional_summary=snakemake.input.get("optional"),
        self_recognition_protocol=snakemake.params.protocols["self_recognition"],
        truthfulqa_protocol=snakemake.params.protocols["truthfulqa"],
        optional_protocol=snakemake.params.protocols["em_questions"]
        if snakemake.wildcards.figure == "fig4_em_judge"
        else None,
        published=snakemake.params.published,
        comparator=snakemake.params.comparator,
        png=snakemake.output.png,
        pdf=snakemake.output.pdf,
        model=snakemake.wildcards.model,
        extensions=getattr(snakemake.params, "extensions", ()),
    )
logging.info("drew %s", snakemake.wildcards.figure)
