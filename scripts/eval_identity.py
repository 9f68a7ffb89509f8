"""Identity self-reports, second half: classify a model state's sampled answers (aliases, then the judge
for the unmatched ones) into the claimed-identity distribution and its entropy."""

import logging

from job_models import load_judge_model

from sgtr_em.identity import classify_identity_answers
from sgtr_em.io import read_json, write_json
from sgtr_em.runtime import model_identity, provenance, setup_logging

setup_logging(snakemake.log[0])
wc = snakemake.wildcards
judge_spec = snakemake.params.judge
sampled = read_json(snakemake.input.answers)

result = classify_identity_answers(
    sampled["answers"],
    snakemake.params.aliases,
    true_identity=snakemake.params.true_identity,
    judge_factory=None if judge_spec is None else (lambda: load_judge_model(snakemake)),
)
output = {
    "eval": "identity",
    "model_state": {"model": wc.model, "chain": wc.chain, "seed": int(wc.seed)},
    **result,
    "provenance": provenance(
        snakemake.rule,
        # The sampling settings come with the answers, so the record names the whole config subset.
        {**sampled["provenance"]["config"], "judge": judge_spec, "run_name": snakemake.params.run_name},
        model=model_identity(wc.model, snakemake.config["models"][wc.model]["source"]),
        seeds={"training": int(wc.seed), "sampling": int(wc.seed)},
        protocols=["aliases", "judge"] if judge_spec else ["aliases"],
    ),
}
write_json(snakemake.output[0], output)
logging.info("identity: %s", result["metrics"])
