"""Pack the results an artifact committee checks (docs/artifact.md) with a sha256 manifest: evaluation JSONs,
tables, figures, claims, the results summary, the config as run, the environment, the code version, the run's
manifest and the sources lock."""

import logging
from pathlib import Path

from sgtr_em.release.bundle import make_bundle
from sgtr_em.runtime import setup_logging

setup_logging(snakemake.log[0])
# Files are stored relative to the results folder (results/bundle/<name>.tar.gz -> results/): eval/, tables/,
# figures/, claims/, report/, artifact/; the named ones (outside it, or renamed) as params.names says.
results_dir = Path(snakemake.output[0]).parent.parent
names = snakemake.params.names
manifest = make_bundle(
    snakemake.input.files,
    snakemake.output[0],
    base=results_dir,
    run_name=snakemake.params.run_name,
    named={names[path]: path for path in snakemake.input.named},
)
logging.info("bundled %d files into %s", len(manifest["files"]), snakemake.output[0])
