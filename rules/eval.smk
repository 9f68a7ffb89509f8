# Evaluations of a model state: self-recognition against a comparator, TruthfulQA misalignment, and
# (when enabled) free-form EM questions scored by a judge, identity self-reports and MMLU accuracy.


rule eval_self_recognition:
    input:
        model=T.model_dir,
        adapters=T.adapters,
        articles=T.self_recognition_articles,
        self_summaries=T.self_recognition_self_summaries,
        other_summaries=T.self_recognition_other_summaries,
        prompts=targets.PROMPTS,
    output:
        targets.EVAL_SELF_RECOGNITION,
    log:
        "logs/eval/self_recognition-{other}/{model}/{chain}/seed{seed}.log",
    benchmark:
        "benchmarks/eval/self_recognition-{other}/{model}/{chain}/seed{seed}.tsv"
    conda:
        "../envs/torch.yaml"
    threads: T.model_threads
    resources:
        **T.model_job_resources(),
    params:
        framing=T.framing,
        identity_system_prompt=T.identity_system_prompt,
        settings=T.eval_settings("self_recognition", leave_out=("sampling",)),
        sampling=T.eval_sampling("self_recognition"),
        backend=T.backend,
        run_name=config["run_name"],
    script:
        "../scripts/eval_self_recognition.py"


rule eval_truthfulqa:
    input:
        model=T.model_dir,
        adapters=T.adapters,
        questions=targets.TRUTHFULQA,
    output:
        targets.EVAL_TRUTHFULQA,
    log:
        "logs/eval/truthfulqa/{model}/{chain}/seed{seed}.log",
    benchmark:
        "benchmarks/eval/truthfulqa/{model}/{chain}/seed{seed}.tsv"
    conda:
        "../envs/torch.yaml"
    threads: T.model_threads
    resources:
        **T.model_job_resources(),
    params:
        settings=T.eval_settings("truthfulqa", leave_out=("sampling",)),
        sampling=T.eval_sampling("truthfulqa"),
        backend=T.backend,
        run_name=config["run_name"],
    script:
        "../scripts/eval_truthfulqa.py"


rule sample_em_answers:
    input:
        model=T.model_dir,
        adapters=T.adapters,
        questions=targets.QUESTIONS.format(question_set="em_questions"),
    output:
        targets.EM_ANSWERS,
    log:
        "logs/em_answers/{model}/{chain}/seed{seed}.log",
    benchmark:
        "benchmarks/em_answers/{model}/{chain}/seed{seed}.tsv"
    conda:
        "../envs/torch.yaml"
    threads: T.model_threads
    resources:
        **T.model_job_resources(),
    params:
        samples_per_question=config["eval"]["em_questions"]["samples_per_question"],
        sampling=T.eval_sampling("em_questions"),
        paraphrases=config["eval"]["em_questions"]["paraphrases"],
        backend=T.backend,
        run_name=config["run_name"],
    script:
        "../scripts/sample_em_answers.py"


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
        # The sampling settings belong to sample_em_answers: changing them reruns it, and so this.
        settings=T.eval_settings(
            "em_questions",
            leave_out=("chains", "samples_per_question", "sampling", "paraphrases"),
        ),
        judge=T.judge_settings("em_questions"),
        run_name=config["run_name"],
    script:
        "../scripts/eval_em_questions.py"


rule sample_identity_answers:
    input:
        model=T.model_dir,
        adapters=T.adapters,
        questions=targets.QUESTIONS.format(question_set="identity_questions"),
    output:
        targets.IDENTITY_ANSWERS,
    log:
        "logs/identity_answers/{model}/{chain}/seed{seed}.log",
    benchmark:
        "benchmarks/identity_answers/{model}/{chain}/seed{seed}.tsv"
    conda:
        "../envs/torch.yaml"
    threads: T.model_threads
    resources:
        **T.model_job_resources(),
    params:
        samples_per_question=config["eval"]["identity"]["samples_per_question"],
        sampling=T.eval_sampling("identity"),
        backend=T.backend,
        run_name=config["run_name"],
    script:
        "../scripts/sample_identity_answers.py"


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


rule eval_mmlu:
    input:
        model=T.model_dir,
        adapters=T.adapters,
        questions=targets.MMLU,
    output:
        targets.EVAL_MMLU,
    log:
        "logs/eval/mmlu/{model}/{chain}/seed{seed}.log",
    benchmark:
        "benchmarks/eval/mmlu/{model}/{chain}/seed{seed}.tsv"
    conda:
        "../envs/torch.yaml"
    threads: T.model_threads
    resources:
        **T.model_job_resources(),
    params:
        settings=T.eval_settings("mmlu", leave_out=("chains", "batch_size")),
        backend=T.mmlu_backend,
        run_name=config["run_name"],
    script:
        "../scripts/eval_mmlu.py"
