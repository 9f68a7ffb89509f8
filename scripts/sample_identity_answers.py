"""Identity self-reports, first half: sample N answers per identity question from a model state (GPU
job). eval_identity classifies them."""

import logging

from sgtr_em.identity import IdentityQuestion, sample_identity_answers
from sgtr_em.io import read_json, write_json
from sgtr_em.runtime import model_identity, provenance, setup_logging

from job_models import load_state_model

setup_logging(snakemake.log[0])
wc = snakemake.wildcards
params = snakemake.params
questions = [IdentityQuestion(q["id"], tuple(q["paraphrases"])) for q in read_json(snakemake.input.questions)]
model = load_state_model(snakemake)
answers = sample_identity_answers(model, questions, samples_per_question=params.samples_per_question, sampling=params.sampling, seed=int(wc.seed))
write_json(
    snakemake.output[0],
    {
        "model_state": {"model": wc.model, "chain": wc.chain, "seed": int(wc.seed)},
        "answers": answers,
        "provenance": provenance(
            snakemake.rule,
            {"samples_per_question": params.samples_per_question, "sampling": params.sampling, "run_name": params.run_name},
            model=model_identity(wc.model, snakemake.config["models"][wc.model]["source"]),
            seeds={"training": int(wc.seed), "sampling": int(wc.seed)},
            protocols=[],
        ),
    },
)
logging.info("sampled %d answers to %d identity questions", len(answers), len(questions))
