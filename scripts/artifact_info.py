"""The config as run, the installed environment (pip-freeze format) and the code version, for the bundle."""

import logging

from sgtr_em.artifact import write_artifact_info
from sgtr_em.runtime import setup_logging

setup_logging(snakemake.log[0])
write_artifact_info(
    dict(snakemake.params.config),
    config_out=snakemake.output.config,
    requirements_out=snakemake.output.requirements,
    code_out=snakemake.output.code_version,
)
logging.info("artifact information written (code version %s)", snakemake.params.code_version)
