"""results/manifest.json: every declared output with its sha256 (run last, after every table and figure)."""

import logging
from pathlib import Path

from sgtr_em.jobs import Job
from sgtr_em.manifest import write_manifest
from sgtr_em.runtime import provenance, setup_logging

setup_logging(snakemake.log[0])
job = Job(snakemake)
# The declared outputs in the folder the manifest is written to (results/).
manifest = write_manifest(
    Path(snakemake.output[0]).parent.as_posix(),
    snakemake.output[0],
    provenance=provenance(snakemake.rule, {"run_name": job.run_name, "config": job.config}),
)
logging.info("%d files listed in %s", manifest["n_files"], snakemake.output[0])
