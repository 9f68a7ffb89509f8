"""Identity self-reports of a model state: claimed identity per answer, distribution, entropy."""

import logging

from sgtr_em.identity import IdentityQuestion, evaluate_identity
from sgtr_em.io import read_json, write_json
from sgtr_em.runtime import model_identity, provenance, setup_logging

from job_models import load_judge_model, load_state_model

setup_logging(snakemake.log[0])
wc = snakemake.wildcards
settings = snakemake.params.settings
judge_spec = snakemake.params.judge
questions = [IdentityQuestion(q["id"], tuple(q["paraphrases"])) for q in read_json(snakemake.input.questions)]


model = load_state_model(snakemake)
judge_factory = None if judge_spec is None else (lambda: load_judge_model(snakemake))
result = evaluate_identity(
    model,
    questions,
    snakemake.params.aliases,
    true_identity=snakemake.params.true_identity,
    samples_per_question=settings["samples_per_question"],
    sampling=settings["sampling"],
    seed=int(wc.seed),
    judge_factory=judge_factory,
)
output = {
    "eval": "identity",
    "model_state": {"model": wc.model, "chain": wc.chain, "seed": int(wc.seed)},
    **result,
    "provenance": provenance(
        snakemake.rule,
        {**settings, "judge": judge_spec, "run_name": snakemake.params.run_name},
        model=model_identity(wc.model, snakemake.config["models"][wc.model]["source"]),
        seeds={"training": int(wc.seed), "sampling": int(wc.seed)},
        protocols=["aliases", "judge"] if judge_spec else ["aliases"],
    ),
}
write_json(snakemake.output[0], output)
logging.info("identity: %s", result["metrics"])
