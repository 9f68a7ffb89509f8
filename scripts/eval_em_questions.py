"""Free-form EM questions, second half: score a model state's sampled answers with the configured judge."""

import logging

from sgtr_em.em_judge import judge_cache, judged_record, questions_from_records
from sgtr_em.io import read_json, write_json
from sgtr_em.jobs import Job
from sgtr_em.runtime import provenance, setup_logging

setup_logging(snakemake.log[0])
job = Job(snakemake)
wc = job.wildcards
spec = snakemake.params.judge
record = judged_record(
    job.load_judge_model(),
    state={"model": wc.model, "chain": wc.chain, "seed": int(wc.seed)},
    sampled=read_json(snakemake.input.answers),
    questions=questions_from_records(read_json(snakemake.input.questions)),
    settings=snakemake.params.settings,
    judge_spec=spec,
    cache=judge_cache(snakemake.params.settings["cache_dir"], job.source(spec["name"])),
    provenance=lambda config, **kw: provenance(
        job.rule, {**config, "run_name": snakemake.params.run_name}, model=job.model_identity(), **kw
    ),
)
write_json(snakemake.output[0], record)
logging.info("EM questions: %s", record["metrics"])
