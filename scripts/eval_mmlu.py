"""MMLU few-shot accuracy of a model state (letters A-D scored by next-token probabilities)."""

import logging

from job_models import load_state_model

from sgtr_em.io import read_jsonl, write_json
from sgtr_em.mmlu import PROTOCOL, evaluate_mmlu, questions_from_records
from sgtr_em.runtime import model_identity, provenance, setup_logging

setup_logging(snakemake.log[0])
wc = snakemake.wildcards
settings = snakemake.params.settings
model = load_state_model(snakemake)
questions = questions_from_records(read_jsonl(snakemake.input.questions), snakemake.input.questions)
result = evaluate_mmlu(model, questions, n_shots=settings["n_shots"])
output = {
    "eval": "mmlu",
    "model_state": {"model": wc.model, "chain": wc.chain, "seed": int(wc.seed)},
    **result,
    "provenance": provenance(
        snakemake.rule,
        {**settings, "backend": snakemake.params.backend, "run_name": snakemake.params.run_name},
        model=model_identity(wc.model, snakemake.config["models"][wc.model]["source"]),
        # Deterministic: nothing is sampled.
        seeds={"training": int(wc.seed), "sampling": None},
        protocols=[PROTOCOL],
    ),
}
write_json(snakemake.output[0], output)
logging.info("MMLU: %s", {k: v for k, v in result["metrics"][PROTOCOL].items() if ":" not in k})
