"""Report the host, the GPUs the job was given, what torch and the driver see; fail (exit 1, the message in
the log) when the job sees fewer CUDA devices than it asked for."""

import logging

from job_models import claim_gpus

from sgtr_em.io import atomic_path
from sgtr_em.runtime import device_report, setup_logging

setup_logging(snakemake.log[0])
# The first grid model's GPUs, at least one (as the rule asks).
claim_gpus(snakemake, snakemake.config["grid"]["models"][0], at_least=1)
report = device_report()
with atomic_path(snakemake.output[0]) as tmp:
    tmp.write_text(report)
logging.info("\n%s", report)
