# Evaluations of a model state. One job per evaluated state (rules eval_state*) loads the state once and
# writes every evaluation of it: its fresh summaries (eval.self_recognition.self_source: own), self-recognition
# against each comparator, TruthfulQA misalignment and, where its chain is listed, the sampled EM and identity
# answers and MMLU accuracy; each at the evaluation's own path, with its own settings in its provenance.
# States differ in what they write, so there is one rule per set of optional evaluations (its chains in
# wildcard_constraints). The judges score the sampled answers in jobs of their own.


for optional in T.state_eval_groups():

    rule:
        name:
            T.state_eval_rule(optional)
        input:
            unpack(T.state_eval_inputs(optional)),
        output:
            **T.state_eval_outputs(optional),
        log:
            targets.STATE_EVAL_LOG,
        benchmark:
            targets.STATE_EVAL_BENCHMARK
        wildcard_constraints:
            **T.state_eval_constraints(optional),
        conda:
            "../envs/torch.yaml"
        threads: T.model_threads
        resources:
            **T.model_job_resources(),
        params:
            steps=T.state_eval_params(optional),
            backend=T.backend,
            run_name=config["run_name"],
        script:
            "../scripts/eval_state.py"

    # A grid state's fresh summaries come from its evaluation job (generate_summaries makes the others).
    workflow.ruleorder(T.state_eval_rule(optional), "generate_summaries")


# Judging is its own job: with an API judge it runs where the network is (a local rule, on the submit
# host of a cluster), never inside a GPU job on a compute node.
rule eval_em_questions:
    input:
        answers=targets.EM_ANSWERS,
        judge_model=T.judge_model_inputs("em_questions"),
        questions=targets.QUESTIONS.format(question_set="em_questions"),
    output:
        targets.EVAL_EM_QUESTIONS,
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
        answers=targets.IDENTITY_ANSWERS,
        judge_model=T.judge_model_inputs("identity"),
    output:
        targets.EVAL_IDENTITY,
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
