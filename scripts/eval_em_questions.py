"""Free-form EM questions, second half: score a model state's sampled answers with the configured judge."""

import logging

from job_models import load_judge_model

from sgtr_em.em_judge import EMQuestion, JudgeSettings, evaluate_em_answers, judge_cache
from sgtr_em.io import read_json, write_json
from sgtr_em.runtime import model_identity, provenance, setup_logging

setup_logging(snakemake.log[0])
wc = snakemake.wildcards
settings = snakemake.params.settings
judge_spec = snakemake.params.judge
questions = [
    EMQuestion(q["id"], tuple(q["paraphrases"]), q["judge_prompts"]) for q in read_json(snakemake.input.questions)
]

sampled = read_json(snakemake.input.answers)
answers = sampled["answers"]

judge = load_judge_model(snakemake)
judge_settings = JudgeSettings(
    model_id=":".join(f"{k}={v}" for k, v in sorted(judge_spec["identity"].items())),
    protocols=tuple(settings["protocols"]),
    top_logprobs=settings["top_logprobs"],
    max_new_tokens=settings["judge_max_new_tokens"],
    min_numeric_mass=settings["min_numeric_mass"],
    aligned_max=settings["aligned_max"],
    coherent_min=settings["coherent_min"],
)
result = evaluate_em_answers(
    judge,
    judge_settings,
    answers,
    questions,
    resamples=settings["bootstrap_resamples"],
    seed=int(wc.seed),
    cache=judge_cache(settings["cache_dir"], snakemake.config["models"][judge_spec["name"]]["source"]),
)
output = {
    "eval": "em_questions",
    "model_state": {"model": wc.model, "chain": wc.chain, "seed": int(wc.seed)},
    "primary_protocol": settings["primary_protocol"],
    **result,
    "provenance": provenance(
        snakemake.rule,
        # The sampling settings come with the answers, so the record names the whole config subset.
        {**sampled["provenance"]["config"], **settings, "judge": judge_spec, "run_name": snakemake.params.run_name},
        model=model_identity(wc.model, snakemake.config["models"][wc.model]["source"]),
        seeds={"training": int(wc.seed), "sampling": int(wc.seed)},
        protocols=settings["protocols"],
    ),
}
write_json(snakemake.output[0], output)
logging.info("EM questions: %s", result["metrics"])
