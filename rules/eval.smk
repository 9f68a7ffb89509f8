# Evaluations of a model state. Each evaluated state is loaded by its core job (rules eval_state*: the state's
# summaries where any are needed, self-recognition against each comparator, TruthfulQA misalignment) and, where
# its chain is listed, by its optional job (the sampled EM and identity answers, MMLU accuracy), so a failing
# optional evaluation never costs the core results; each step writes at the evaluation's own path with its own
# settings in its provenance, and a killed job resumes at the step it had reached (Targets.state_jobs). States
# differ in what they write, so there is one rule per set of steps (its states in wildcard_constraints). The
# judges score the sampled answers in jobs of their own.


for job in T.state_jobs:

    rule:
        name:
            job.rule
        input:
            unpack(T.state_job_inputs(job)),
        output:
            **T.state_job_outputs(job),
        log:
            T.state_job_log(job),
        benchmark:
            T.state_job_log(job, paths.STATE_EVAL_BENCHMARK)
        wildcard_constraints:
            **T.state_job_constraints(job),
        # An API model's jobs need the network, which compute nodes of many clusters lack: the submit host.
        localrule: job.local
        conda:
            "../envs/torch.yaml"
        threads: T.model_threads
        resources:
            **T.model_job_resources(),
        params:
            steps=T.state_job_params(job),
            backend=T.backend,
            run_name=config["run_name"],
            work_dir=T.eval_work_dir,
        script:
            "../scripts/eval_state.py"

    # A grid state's summaries come from its evaluation job (generate_summaries makes the others).
    for suffix, _, _ in T.model_kinds():
        workflow.ruleorder(job.rule, f"generate_summaries{suffix}")


# Judging is its own job: with an API judge it runs where the network is (a local rule, on the submit
# host of a cluster), never inside a GPU job on a compute node.
rule eval_em_questions:
    input:
        answers=paths.EM_ANSWERS,
        judge_model=T.judge_model_inputs("em_questions"),
        questions=paths.QUESTIONS.format(question_set="em_questions"),
    output:
        paths.EVAL_EM_QUESTIONS,
    log:
        "logs/eval/em_questions/{model}/{chain}/seed{seed}.log",
    benchmark:
        "benchmarks/eval/em_questions/{model}/{chain}/seed{seed}.tsv"
    localrule: T.judge_runs_locally("em_questions")
    conda:
        "../envs/torch.yaml"
    threads: T.judge_threads("em_questions")
    resources:
        **T.judge_job_resources("em_questions"),
    params:
        # The sampling settings belong to the state's evaluation job: changing them reruns it, and so this.
        settings=T.eval_settings(
            "em_questions",
            leave_out=("chains", "samples_per_question", "sampling", "paraphrases"),
        ),
        judge=T.judge_settings("em_questions"),
        run_name=config["run_name"],
    script:
        "../scripts/eval_em_questions.py"


# As for the EM questions, classifying the answers is its own job, so an API judge is never called from
# a compute node.
rule eval_identity:
    input:
        answers=paths.IDENTITY_ANSWERS,
        judge_model=T.judge_model_inputs("identity"),
    output:
        paths.EVAL_IDENTITY,
    log:
        "logs/eval/identity/{model}/{chain}/seed{seed}.log",
    benchmark:
        "benchmarks/eval/identity/{model}/{chain}/seed{seed}.tsv"
    localrule: T.judge_runs_locally("identity")
    conda:
        "../envs/torch.yaml"
    threads: T.judge_threads("identity")
    resources:
        **T.judge_job_resources("identity"),
    params:
        judge=T.judge_settings("identity"),
        aliases=T.identity_aliases,
        true_identity=T.true_identity,
        run_name=config["run_name"],
    script:
        "../scripts/eval_identity.py"
