"""Report the host, the GPUs SLURM granted, and what torch sees."""

import logging

from sgtr_em.io import atomic_path
from sgtr_em.runtime import device_report, setup_logging

setup_logging(snakemake.log[0])
report = device_report()
with atomic_path(snakemake.output[0]) as tmp:
    tmp.write_text(report)
logging.info("\n%s", report)
