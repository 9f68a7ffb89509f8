"""Every evaluation of one model state from one load of it (rules eval_state*): params.steps names each step
and its settings; each step writes its output (snakemake.output.<step>) as soon as it is done."""

import logging
import time

from job_models import load_state_model

from sgtr_em.em_judge import EMQuestion, asked_paraphrases
from sgtr_em.identity import IdentityQuestion
from sgtr_em.io import read_articles, read_json, read_jsonl, read_summaries, write_json, write_jsonl
from sgtr_em.mmlu import questions_from_records
from sgtr_em.prompts import read_prompt_set
from sgtr_em.runtime import model_identity, setup_logging
from sgtr_em.state_evals import (
    EvaluatedState,
    mmlu_output,
    sampled_answers_output,
    self_recognition_output,
    summarise,
    truthfulqa_output,
)
from sgtr_em.targets import SUMMARIES_STEP, table_kind

setup_logging(snakemake.log[0])
wc = snakemake.wildcards
inputs, outputs, steps = snakemake.input, snakemake.output, snakemake.params.steps
state = EvaluatedState(
    rule=snakemake.rule,
    model=wc.model,
    chain=wc.chain,
    seed=int(wc.seed),
    model_identity=model_identity(wc.model, snakemake.config["models"][wc.model]["source"]),
    backend=snakemake.params.backend,
    run_name=snakemake.params.run_name,
)
prompts = read_prompt_set(inputs.prompts)
articles = read_articles(inputs.articles)
started = time.monotonic()
model = load_state_model(snakemake)
logging.info(
    "loaded %s/%s seed %s in %.1f s; steps: %s", wc.model, wc.chain, wc.seed, time.monotonic() - started, list(steps)
)

if SUMMARIES_STEP in steps:
    settings = steps[SUMMARIES_STEP]
    rows = summarise(
        model, articles, style=settings["style"], prompts=prompts, sampling=settings["sampling"], seed=state.seed
    )
    write_jsonl(outputs[SUMMARIES_STEP], rows)
    self_summaries, self_summaries_path = {r["id"]: r["summary"] for r in rows}, outputs[SUMMARIES_STEP]
    logging.info("%d fresh summaries, %d empty", len(rows), sum(not r["summary"] for r in rows))
else:
    self_summaries, self_summaries_path = read_summaries(inputs.self_summaries), inputs.self_summaries

for step, settings in steps.items():
    kind, other = table_kind(step)
    began = time.monotonic()
    if step == SUMMARIES_STEP:
        continue
    if other is not None:
        output = self_recognition_output(
            model,
            state,
            other,
            settings,
            articles=articles,
            self_summaries=self_summaries,
            self_summaries_path=self_summaries_path,
            other_summaries=read_summaries(inputs[f"other_summaries-{other}"]),
            prompts=prompts,
            summary_seed=snakemake.config["summary_seed"],
        )
    elif kind == "truthfulqa":
        output = truthfulqa_output(model, state, settings, read_jsonl(inputs.truthfulqa))
    elif kind == "em_questions":
        questions = [
            EMQuestion(q["id"], tuple(q["paraphrases"]), q["judge_prompts"]) for q in read_json(inputs.em_questions)
        ]
        output = sampled_answers_output(model, state, settings, asked_paraphrases(questions, settings["paraphrases"]))
    elif kind == "identity":
        questions = [IdentityQuestion(q["id"], tuple(q["paraphrases"])) for q in read_json(inputs.identity_questions)]
        output = sampled_answers_output(model, state, settings, questions)
    elif kind == "mmlu":
        output = mmlu_output(model, state, settings, questions_from_records(read_jsonl(inputs.mmlu), inputs.mmlu))
    else:
        raise SystemExit(f"{snakemake.rule}: no step {step!r}")
    write_json(outputs[step], output)
    logging.info(
        "%s (%.1f s): %s",
        step,
        time.monotonic() - began,
        output.get("metrics", f"{len(output.get('answers', []))} answers"),
    )
