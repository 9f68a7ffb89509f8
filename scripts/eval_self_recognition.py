"""Self-recognition of a model state: its own summaries against a comparator's."""

import logging

from job_models import load_state_model

from sgtr_em.evals import evaluate_self_recognition
from sgtr_em.io import read_articles, read_summaries, write_json
from sgtr_em.prompts import read_prompt_set
from sgtr_em.runtime import model_identity, provenance, setup_logging

setup_logging(snakemake.log[0])
wc = snakemake.wildcards
settings = snakemake.params.settings
sampling = snakemake.params.sampling
prompts = read_prompt_set(snakemake.input.prompts)
model = load_state_model(snakemake)
result = evaluate_self_recognition(
    model,
    read_articles(snakemake.input.articles),
    read_summaries(snakemake.input.self_summaries),
    read_summaries(snakemake.input.other_summaries),
    framing=snakemake.params.framing,
    identity_system=snakemake.params.identity_system_prompt,
    protocols=settings["protocols"],
    seed=int(wc.seed),
    sampling=sampling,
    prompts=prompts,
)
output = {
    "eval": f"self_recognition-{wc.other}",
    "model_state": {"model": wc.model, "chain": wc.chain, "seed": int(wc.seed)},
    "self_source": settings["self_source"],
    "self_summaries": snakemake.input.self_summaries,
    "other_source": wc.other,
    "framing": snakemake.params.framing,
    "primary_protocol": settings["primary_protocol"],
    **result,
    "provenance": provenance(
        snakemake.rule,
        {
            **settings,
            "sampling": sampling,
            "framing": snakemake.params.framing,
            "backend": snakemake.params.backend,
            "run_name": snakemake.params.run_name,
        },
        model=model_identity(wc.model, snakemake.config["models"][wc.model]["source"]),
        seeds={"training": int(wc.seed), "sampling": int(wc.seed), "summaries": snakemake.config["summary_seed"]},
        protocols=settings["protocols"],
        prompts=prompts.provenance(),
    ),
}
write_json(snakemake.output[0], output)
logging.info("self-recognition vs %s: %s", wc.other, result["metrics"])
