"""Identity self-reports of a model state: claimed identity per answer, distribution, entropy."""

import logging

from sgtr_em.backends import load_chat_model
from sgtr_em.identity import IdentityQuestion, evaluate_identity
from sgtr_em.io import read_json, write_json
from sgtr_em.runtime import model_identity, provenance, setup_logging

setup_logging(snakemake.log[0])
wc = snakemake.wildcards
settings = snakemake.params.settings
judge_spec = snakemake.params.judge
questions = [IdentityQuestion(q["id"], tuple(q["paraphrases"])) for q in read_json(snakemake.input.questions)]


def load(name, source, backend, model_dir, adapters):
    return load_chat_model(name, source, backend, model_dir, adapters, snakemake.config.get("openai"))


model = load(
    f"{snakemake.rule} {wc.model}/{wc.chain}",
    snakemake.config["models"][wc.model]["source"],
    snakemake.params.backend,
    snakemake.input.model,
    list(snakemake.input.adapters),
)
judge_factory = None
if judge_spec is not None:
    judge_source = snakemake.config["models"][judge_spec["name"]]["source"]
    judge_factory = lambda: load(f"{snakemake.rule} judge {judge_spec['name']}", judge_source, judge_spec["backend"], snakemake.input.judge_model, [])  # noqa: E731
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
