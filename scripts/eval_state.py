"""The steps of one evaluated state's job (rules eval_state*, sgtr_em.targets.Targets.state_jobs): params.steps
names each step and its settings; each step writes its output (snakemake.output.<step>) as soon as it is done,
and a killed job resumes at the step it had reached (sgtr_em.state_evals.run_state_job)."""

from job_models import load_state_model

from sgtr_em.config import inference_settings
from sgtr_em.runtime import model_identity, setup_logging
from sgtr_em.state_evals import EvaluatedState, run_state_job

setup_logging(snakemake.log[0])
wc = snakemake.wildcards
state = EvaluatedState(
    rule=snakemake.rule,
    model=wc.model,
    chain=wc.chain,
    seed=int(wc.seed),
    model_identity=model_identity(wc.model, snakemake.config["models"][wc.model]["source"], snakemake.input.model),
    backend=snakemake.params.backend,
    run_name=snakemake.params.run_name,
)
run_state_job(
    steps=snakemake.params.steps,
    inputs=dict(snakemake.input.items()),
    outputs=dict(snakemake.output.items()),
    state=state,
    load_model=lambda: load_state_model(snakemake),
    work_dir=snakemake.params.work_dir,
    summary_seed=snakemake.config["summary_seed"],
    mmlu_batch_size=inference_settings(snakemake.config, wc.model, "mmlu")["batch_size"],
)
