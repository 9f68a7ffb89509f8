"""Identity self-reports, second half: classify a model state's sampled answers (aliases, then the judge
for the unmatched ones) into the claimed-identity distribution and its entropy."""

import logging

from sgtr_em.identity import identity_record
from sgtr_em.io import read_json, write_json
from sgtr_em.jobs import Job
from sgtr_em.runtime import provenance, setup_logging

setup_logging(snakemake.log[0])
job = Job(snakemake)
wc = job.wildcards
spec = snakemake.params.judge
record = identity_record(
    read_json(snakemake.input.answers),
    state={"model": wc.model, "chain": wc.chain, "seed": int(wc.seed)},
    aliases=snakemake.params.aliases,
    true_identity=snakemake.params.true_identity,
    judge_spec=spec,
    judge_factory=None if spec is None else job.load_judge_model,
    provenance=lambda config, **kw: provenance(
        job.rule, {**config, "run_name": snakemake.params.run_name}, model=job.model_identity(), **kw
    ),
)
write_json(snakemake.output[0], record)
logging.info("identity: %s", record["metrics"])
