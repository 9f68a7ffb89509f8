# Evaluations of a model state: self-recognition against a comparator, TruthfulQA misalignment, and
# (when enabled) free-form EM questions scored by a judge, identity self-reports and MMLU accuracy.


rule eval_self_recognition:
    input:
        model=model_dir,
        adapters=lambda wc: state_adapters(wc.model, wc.chain, wc.seed),
        articles=ARTICLES.format(dataset=config["eval"]["self_recognition"]["dataset"]),
        self_summaries=selfrec_self_summaries,
        other_summaries=lambda wc: comparator_summaries(
            wc.other, config["eval"]["self_recognition"]["dataset"]
        ),
    output:
        EVAL_SELFREC,
    log:
        "logs/eval/selfrec-{other}/{model}/{chain}/seed{seed}.log",
    benchmark:
        "benchmarks/eval/selfrec-{other}/{model}/{chain}/seed{seed}.tsv"
    conda:
        "../envs/torch.yaml"
    threads: model_threads
    resources:
        gpu=model_resources("gpu"),
        mem_mb=model_resources("mem_mb"),
        runtime=model_resources("runtime"),
        slurm_partition=model_resources("slurm_partition"),
        gpu_model=model_resources("gpu_model"),
        cpus_per_gpu=model_resources("cpus_per_gpu"),
    params:
        framing=lambda wc: model_setting(wc.model, "framing"),
        identity_system_prompt=lambda wc: model_setting(
            wc.model, "identity_system_prompt"
        ),
        settings=config["eval"]["self_recognition"],
        backend=lambda wc: backend_settings(wc.model),
        run_name=config["run_name"],
    script:
        "../scripts/eval_self_recognition.py"


rule eval_truthfulqa:
    input:
        model=model_dir,
        adapters=lambda wc: state_adapters(wc.model, wc.chain, wc.seed),
        questions=TRUTHFULQA,
    output:
        EVAL_TRUTHFULQA,
    log:
        "logs/eval/truthfulqa/{model}/{chain}/seed{seed}.log",
    benchmark:
        "benchmarks/eval/truthfulqa/{model}/{chain}/seed{seed}.tsv"
    conda:
        "../envs/torch.yaml"
    threads: model_threads
    resources:
        gpu=model_resources("gpu"),
        mem_mb=model_resources("mem_mb"),
        runtime=model_resources("runtime"),
        slurm_partition=model_resources("slurm_partition"),
        gpu_model=model_resources("gpu_model"),
        cpus_per_gpu=model_resources("cpus_per_gpu"),
    params:
        settings=config["eval"]["truthfulqa"],
        backend=lambda wc: backend_settings(wc.model),
        run_name=config["run_name"],
    script:
        "../scripts/eval_truthfulqa.py"


rule sample_em_answers:
    input:
        model=model_dir,
        adapters=lambda wc: state_adapters(wc.model, wc.chain, wc.seed),
        questions=QUESTIONS.format(question_set="em_questions"),
    output:
        EM_ANSWERS,
    log:
        "logs/em_answers/{model}/{chain}/seed{seed}.log",
    benchmark:
        "benchmarks/em_answers/{model}/{chain}/seed{seed}.tsv"
    conda:
        "../envs/torch.yaml"
    threads: model_threads
    resources:
        gpu=model_resources("gpu"),
        mem_mb=model_resources("mem_mb"),
        runtime=model_resources("runtime"),
        slurm_partition=model_resources("slurm_partition"),
        gpu_model=model_resources("gpu_model"),
        cpus_per_gpu=model_resources("cpus_per_gpu"),
    params:
        samples_per_question=config["eval"]["em_questions"]["samples_per_question"],
        sampling=config["eval"]["em_questions"]["sampling"],
        backend=lambda wc: backend_settings(wc.model),
        run_name=config["run_name"],
    script:
        "../scripts/sample_em_answers.py"


# Judging is its own job: with an API judge it runs where the network is (a local rule, on the submit
# host of a cluster), never inside a GPU job on a compute node.
rule eval_em_questions:
    input:
        answers=EM_ANSWERS,
        judge_model=judge_model_inputs("em_questions"),
        questions=QUESTIONS.format(question_set="em_questions"),
    output:
        EVAL_EM_QUESTIONS,
    log:
        "logs/eval/em-questions/{model}/{chain}/seed{seed}.log",
    benchmark:
        "benchmarks/eval/em-questions/{model}/{chain}/seed{seed}.tsv"
    localrule: judge_runs_locally("em_questions")
    conda:
        "../envs/torch.yaml"
    threads: judge_threads("em_questions")
    resources:
        gpu=judge_resources("em_questions", "gpu"),
        mem_mb=judge_resources("em_questions", "mem_mb"),
        runtime=judge_resources("em_questions", "runtime"),
        slurm_partition=judge_resources("em_questions", "slurm_partition"),
        gpu_model=judge_resources("em_questions", "gpu_model"),
        cpus_per_gpu=judge_resources("em_questions", "cpus_per_gpu"),
    params:
        settings={
            k: v
            for k, v in config["eval"]["em_questions"].items()
            if k not in ("chains", "samples_per_question", "sampling")
        },
        judge=lambda wc: judge_settings("em_questions"),
        run_name=config["run_name"],
    script:
        "../scripts/eval_em_questions.py"


rule sample_identity_answers:
    input:
        model=model_dir,
        adapters=lambda wc: state_adapters(wc.model, wc.chain, wc.seed),
        questions=QUESTIONS.format(question_set="identity_questions"),
    output:
        IDENTITY_ANSWERS,
    log:
        "logs/identity_answers/{model}/{chain}/seed{seed}.log",
    benchmark:
        "benchmarks/identity_answers/{model}/{chain}/seed{seed}.tsv"
    conda:
        "../envs/torch.yaml"
    threads: model_threads
    resources:
        gpu=model_resources("gpu"),
        mem_mb=model_resources("mem_mb"),
        runtime=model_resources("runtime"),
        slurm_partition=model_resources("slurm_partition"),
        gpu_model=model_resources("gpu_model"),
        cpus_per_gpu=model_resources("cpus_per_gpu"),
    params:
        samples_per_question=config["eval"]["identity"]["samples_per_question"],
        sampling=config["eval"]["identity"]["sampling"],
        backend=lambda wc: backend_settings(wc.model),
        run_name=config["run_name"],
    script:
        "../scripts/sample_identity_answers.py"


# As for the EM questions, classifying the answers is its own job, so an API judge is never called from
# a compute node.
rule eval_identity:
    input:
        answers=IDENTITY_ANSWERS,
        judge_model=judge_model_inputs("identity"),
    output:
        EVAL_IDENTITY,
    log:
        "logs/eval/identity/{model}/{chain}/seed{seed}.log",
    benchmark:
        "benchmarks/eval/identity/{model}/{chain}/seed{seed}.tsv"
    localrule: judge_runs_locally("identity")
    conda:
        "../envs/torch.yaml"
    threads: judge_threads("identity")
    resources:
        gpu=judge_resources("identity", "gpu"),
        mem_mb=judge_resources("identity", "mem_mb"),
        runtime=judge_resources("identity", "runtime"),
        slurm_partition=judge_resources("identity", "slurm_partition"),
        gpu_model=judge_resources("identity", "gpu_model"),
        cpus_per_gpu=judge_resources("identity", "cpus_per_gpu"),
    params:
        judge=lambda wc: judge_settings("identity"),
        aliases=lambda wc: model_setting(wc.model, "identity_aliases"),
        true_identity=lambda wc: model_setting(wc.model, "true_identity"),
        run_name=config["run_name"],
    script:
        "../scripts/eval_identity.py"


rule eval_mmlu:
    input:
        model=model_dir,
        adapters=lambda wc: state_adapters(wc.model, wc.chain, wc.seed),
        questions=MMLU,
    output:
        EVAL_MMLU,
    log:
        "logs/eval/mmlu/{model}/{chain}/seed{seed}.log",
    benchmark:
        "benchmarks/eval/mmlu/{model}/{chain}/seed{seed}.tsv"
    conda:
        "../envs/torch.yaml"
    threads: model_threads
    resources:
        gpu=model_resources("gpu"),
        mem_mb=model_resources("mem_mb"),
        runtime=model_resources("runtime"),
        slurm_partition=model_resources("slurm_partition"),
        gpu_model=model_resources("gpu_model"),
        cpus_per_gpu=model_resources("cpus_per_gpu"),
    params:
        settings={
            k: v
            for k, v in config["eval"]["mmlu"].items()
            if k not in ("chains", "batch_size")
        },
        # eval.mmlu.batch_size replaces the model's batch size (few-shot prompts are long).
        backend=lambda wc: {
            **backend_settings(wc.model),
            "batch_size": config["eval"]["mmlu"]["batch_size"]
            or model_setting(wc.model, "batch_size"),
        },
        run_name=config["run_name"],
    script:
        "../scripts/eval_mmlu.py"
