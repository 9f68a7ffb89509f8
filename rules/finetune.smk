# One LoRA stage: the parent state (base + earlier adapters, merged in memory) plus a fresh adapter.


rule train_lora:
    input:
        model=model_dir,
        parents=lambda wc: state_adapters(wc.model, chainlib.parent(wc.chain), wc.seed),
        data=stage_train_file,
    output:
        directory(ADAPTER),
    log:
        "logs/adapters/{model}/{chain}/seed{seed}.log",
    benchmark:
        "benchmarks/adapters/{model}/{chain}/seed{seed}.tsv"
    conda:
        "../envs/torch.yaml"
    threads: model_threads
    resources:
        gpu=model_resources("gpu"),
        mem_mb=model_resources("mem_mb"),
        runtime=model_resources("runtime"),
    params:
        hp=lambda wc: cfglib.training_hyperparameters(
            config, wc.model, wc.chain.split("+")[-1]
        ),
        model_id=lambda wc: config["models"][wc.model]["source"].get("hf", wc.model),
        # Trainer scratch space, outside the declared output (a failed job's outputs are deleted).
        work_dir=lambda wc: f"results/checkpoints/{wc.model}/{wc.chain}/seed{wc.seed}",
    script:
        "../scripts/train_lora.py"
