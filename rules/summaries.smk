# Summaries of an article set by a model state (base model, comparator model, or a finetuned chain).


rule generate_summaries:
    input:
        model=model_dir,
        adapters=lambda wc: state_adapters(wc.model, wc.chain, wc.seed),
        articles=ARTICLES,
    output:
        SUMMARIES,
    log:
        "logs/summaries/{model}/{chain}/seed{seed}/{dataset}.log",
    benchmark:
        "benchmarks/summaries/{model}/{chain}/seed{seed}/{dataset}.tsv"
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
        style=lambda wc: config["datasets"]["articles"][wc.dataset]["style"],
        sampling=config["summaries"],
        backend=lambda wc: backend_settings(wc.model),
    script:
        "../scripts/generate_summaries.py"
