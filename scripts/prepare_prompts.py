"""The run's prompt set: the project's wording, or the authors' texts read (never executed) from their files."""

import logging

from sgtr_em.io import write_json
from sgtr_em.paper_prompts import fetch_prompt_file, paper_prompt_set
from sgtr_em.prompts import PROJECT
from sgtr_em.runtime import setup_logging

setup_logging(snakemake.log[0])
settings = snakemake.params.prompts
if settings["set"] == "paper":
    files = {
        name: fetch_prompt_file(name, source, snakemake.params.cache) for name, source in settings["files"].items()
    }
    prompts = paper_prompt_set(files, settings["files"])
else:
    prompts = PROJECT
write_json(snakemake.output[0], prompts.as_dict())
logging.info("prompt set %s: %s", prompts.name, prompts.provenance())
