"""Free-form EM questions, first half: sample N answers per question from a model state (GPU job). The
judge scores them in eval_em_questions."""

import logging

from job_models import load_state_model
from sampled_answers import write_sampled_answers

from sgtr_em.em_judge import EMQuestion, asked_paraphrases
from sgtr_em.io import read_json
from sgtr_em.runtime import setup_logging
from sgtr_em.sampling import sample_answers

setup_logging(snakemake.log[0])
params = snakemake.params
questions = asked_paraphrases(
    [EMQuestion(q["id"], tuple(q["paraphrases"]), q["judge_prompts"]) for q in read_json(snakemake.input.questions)],
    params.paraphrases,
)
model = load_state_model(snakemake)
answers = sample_answers(
    model,
    questions,
    samples_per_question=params.samples_per_question,
    sampling=params.sampling,
    seed=int(snakemake.wildcards.seed),
)
write_sampled_answers(snakemake, answers)
logging.info("sampled %d answers to %d questions", len(answers), len(questions))
