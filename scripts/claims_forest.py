"""The forest plot of one model's claims: our effects with intervals beside the paper's."""

import logging

from sgtr_em.claims import read_claims
from sgtr_em.forest import draw_forest
from sgtr_em.plot import figure_source
from sgtr_em.runtime import setup_logging

setup_logging(snakemake.log[0])
rows = read_claims(snakemake.input[0])
# The claims of released results (rule release_claims_forest) say so above the plot.
with figure_source(snakemake.params.get("source_note")):
    draw_forest(rows, png=snakemake.output.png, pdf=snakemake.output.pdf, title=snakemake.params.title)
logging.info("drew %d claims", len(rows))
