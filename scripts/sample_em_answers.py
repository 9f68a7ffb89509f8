"""Free-form EM questions, first half: sample N answers per question from a model state (GPU job). The
judge scores them in eval_em_questions."""

import logging

from sgtr_em.em_judge import EMQuestion, sample_answers
from sgtr_em.io import read_json, write_json
from sgtr_em.runtime import model_identity, provenance, setup_logging

from job_models import load_state_model

setup_logging(snakemake.log[0])
wc = snakemake.wildcards
params = snakemake.params
questions = [EMQuestion(q["id"], tuple(q["paraphrases"]), q["judge_prompts"]) for q in read_json(snakemake.input.questions)]
model = load_state_model(snakemake)
answers = sample_answers(model, questions, samples_per_question=params.samples_per_question, sampling=params.sampling, seed=int(wc.seed))
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
logging.info("sampled %d answers to %d questions", len(answers), len(questions))
