"""Fetch released results (a local folder or .tar.gz, or a pinned download) into results/release/raw."""

import logging

from sgtr_em.release.bundle import fetch_release
from sgtr_em.runtime import setup_logging

setup_logging(snakemake.log[0])
root = fetch_release(
    snakemake.params.source,
    snakemake.output[0],
    keep=snakemake.params.keep,
    optional=snakemake.params.optional,
    extra=snakemake.params.extra,
    cache_dir=snakemake.params.cache,
)
logging.info("release from %s in %s", snakemake.params.source, root)
