# One training stage of a chain. Local models: a fresh LoRA adapter on the parent state (base + earlier
# adapters, merged in memory). API models (source: {openai: ...}): a fine-tuning job on the parent's
# model id, its result in <output>/openai_model.json; the job's state file lives in the work_dir.


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
        slurm_partition=model_resources("slurm_partition"),
        gpu_model=model_resources("gpu_model"),
        cpus_per_gpu=model_resources("cpus_per_gpu"),
    params:
        hp=stage_hyperparameters,
        model_id=lambda wc: model_identity(wc.model),
        # Trainer scratch space or fine-tuning job state, outside the declared output (a failed
        # job's outputs are deleted).
        work_dir=lambda wc: f"results/checkpoints/{wc.model}/{wc.chain}/seed{wc.seed}",
    script:
        "../scripts/train_lora.py"
