"""The steps of one evaluated state's job (rules eval_state*, sgtr_em.targets.Targets.state_jobs): params.steps
names each step and its settings; each step writes its output (snakemake.output.<step>) as soon as it is done,
and a killed job resumes at the step it had reached (sgtr_em.state_evals.run_state_job)."""

from sgtr_em.evaluated_state import EvaluatedState
from sgtr_em.jobs import Job
from sgtr_em.runtime import setup_logging
from sgtr_em.state_evals import run_state_job

setup_logging(snakemake.log[0])
job = Job(snakemake)
wc = job.wildcards
run_state_job(
    steps=snakemake.params.steps,
    inputs=dict(snakemake.input.items()),
    outputs=dict(snakemake.output.items()),
    state=EvaluatedState(
        rule=job.rule,
        model=wc.model,
        chain=wc.chain,
        seed=int(wc.seed),
        model_identity=job.model_identity(),
        backend=snakemake.params.backend,
        run_name=snakemake.params.run_name,
    ),
    load_model=job.load_state_model,
    work_dir=snakemake.params.work_dir,
    summary_seed=job.summary_seed,
    # how many prompts an evaluation's batches hold where it sets its own cap (MMLU's): no result depends on it
    batch_sizes=job.batch_sizes(snakemake.params.steps),
)
