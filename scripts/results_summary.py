"""The results summary: the claims checked, then per model conditions × evaluations with the paper's published
numbers beside ours."""

import logging

from sgtr_em.report import write_results_summary
from sgtr_em.runtime import setup_logging

setup_logging(snakemake.log[0])
tables = {name: path for name, path in snakemake.input.items() if name != "claims"}
claims = dict(zip(snakemake.params.claim_models, snakemake.input.get("claims", []), strict=True))
write_results_summary(
    snakemake.output.markdown,
    snakemake.output.html,
    tables=tables,
    models=snakemake.params.models,
    model_ids=snakemake.params.model_ids,
    protocols=snakemake.params.protocols,
    published=snakemake.params.published,
    run_name=snakemake.params.run_name,
    claims=claims,
    extensions=snakemake.params.extensions,
)
logging.info("summary of %d tables for %d models", len(tables), len(snakemake.params.models))
