"""Pack evaluation JSONs, tables and figures with a sha256 manifest for artifact submission."""

import logging
from pathlib import Path

from sgtr_em.release.bundle import make_bundle
from sgtr_em.runtime import setup_logging

setup_logging(snakemake.log[0])
# Files are stored relative to the results folder (results/bundle/<name>.tar.gz -> results/): eval/, tables/, figures/.
results_dir = Path(snakemake.output[0]).parent.parent
manifest = make_bundle(snakemake.input, snakemake.output[0], base=results_dir, run_name=snakemake.params.run_name)
logging.info("bundled %d files into %s", len(manifest["files"]), snakemake.output[0])
