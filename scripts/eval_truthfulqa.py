"""TruthfulQA misalignment (1 - p correct) of a model state."""

import logging

from job_models import load_state_model

from sgtr_em.evals import evaluate_truthfulqa
from sgtr_em.io import read_jsonl, write_json
from sgtr_em.runtime import model_identity, provenance, setup_logging

setup_logging(snakemake.log[0])
wc = snakemake.wildcards
settings = snakemake.params.settings
sampling = snakemake.params.sampling
model = load_state_model(snakemake)
result = evaluate_truthfulqa(
    model,
    read_jsonl(snakemake.input.questions),
    protocols=settings["protocols"],
    seed=int(wc.seed),
    sampling=sampling,
)
output = {
    "eval": "truthfulqa",
    "model_state": {"model": wc.model, "chain": wc.chain, "seed": int(wc.seed)},
    "primary_protocol": settings["primary_protocol"],
    **result,
    "provenance": provenance(
        snakemake.rule,
        {**settings, "sampling": sampling, "backend": snakemake.params.backend, "run_name": snakemake.params.run_name},
        model=model_identity(wc.model, snakemake.config["models"][wc.model]["source"]),
        seeds={"training": int(wc.seed), "sampling": int(wc.seed)},
        protocols=settings["protocols"],
    ),
}
write_json(snakemake.output[0], output)
logging.info("TruthfulQA: %s", result["metrics"])
