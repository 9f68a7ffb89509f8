"""Pin every remote source of the config that is neither pinned nor locked, in the lock file."""

import logging

from sgtr_em.jobs import Job
from sgtr_em.lock import lock_sources
from sgtr_em.runtime import setup_logging

setup_logging(snakemake.log[0])
resolved = lock_sources(Job(snakemake).config, snakemake.params.lock_file, snakemake.params.cache)
logging.info("%d source(s) added to %s", len(resolved), snakemake.params.lock_file)
