"""Report the host, the GPUs the job was given, what torch and the driver see; fail (exit 1, the message in
the log) when the job sees fewer CUDA devices than it asked for."""

import logging

from sgtr_em.gpus import device_report
from sgtr_em.io import atomic_path
from sgtr_em.jobs import Job
from sgtr_em.runtime import setup_logging

setup_logging(snakemake.log[0])
# The GPUs of the first grid model's jobs, at least one (as the rule asks).
Job(snakemake).claim_gpus(snakemake.params.model, at_least=1)
report = device_report()
with atomic_path(snakemake.output[0]) as tmp:
    tmp.write_text(report)
logging.info("\n%s", report)
