# Evaluations of a model state: self-recognition against a comparator, TruthfulQA misalignment.


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
