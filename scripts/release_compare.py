"""Our run's per-condition numbers beside the released results' (the same evaluations, the release's protocol)."""

import logging

from sgtr_em.release.compare import write_comparison
from sgtr_em.runtime import setup_logging

setup_logging(snakemake.log[0])
source = snakemake.params.source
rows = write_comparison(
    snakemake.input.ours,
    snakemake.input.released,
    models=list(snakemake.params.models),
    protocol=snakemake.params.protocol,
    release_source=source.get("url") or source.get("path"),
    csv_out=snakemake.output.csv,
    markdown_out=snakemake.output.markdown,
)
logging.info("%d conditions compared, for %s", len(rows), sorted({r["model"] for r in rows}) or "no model")
