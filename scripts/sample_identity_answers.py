"""Identity self-reports, first half: sample N answers per identity question from a model state (GPU
job). eval_identity classifies them."""

import logging

from job_models import load_state_model
from sampled_answers import write_sampled_answers

from sgtr_em.identity import IdentityQuestion
from sgtr_em.io import read_json
from sgtr_em.runtime import setup_logging
from sgtr_em.sampling import sample_answers

setup_logging(snakemake.log[0])
params = snakemake.params
questions = [IdentityQuestion(q["id"], tuple(q["paraphrases"])) for q in read_json(snakemake.input.questions)]
model = load_state_model(snakemake)
answers = sample_answers(
    model,
    questions,
    samples_per_question=params.samples_per_question,
    sampling=params.sampling,
    seed=int(snakemake.wildcards.seed),
)
write_sampled_answers(snakemake, answers)
logging.info("sampled %d answers to %d identity questions", len(answers), len(questions))
