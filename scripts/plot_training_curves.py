"""Draw a model's training curves (loss per step of every trained stage, seeds overlaid) from its adapters."""

import logging

from sgtr_em.curves import curve_rows, draw_training_curves
from sgtr_em.runtime import setup_logging

setup_logging(snakemake.log[0])
model = snakemake.wildcards.model
rows, recipes = curve_rows(model, snakemake.input)
draw_training_curves(
    rows,
    recipes,
    title=f"Training curves of {model} (run {snakemake.params.run_name})",
    png=snakemake.output.png,
    pdf=snakemake.output.pdf,
    csv=snakemake.output.csv,
)
logging.info("drew %d chains, %d points", len(recipes), len(rows))
