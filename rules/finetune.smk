# One training stage of a chain. Local models: a fresh LoRA adapter on the parent state (base + earlier
# adapters, merged in memory). API models (source: {openai: ...}, rule train_stage_api, run on the submit
# host): a fine-tuning job on the parent's model id, its result in <output>/openai_model.json; the job's state
# file lives in the work_dir.
# Snakemake write-protects a finished adapter (GPU-hours, or a paid fine-tuning job): a forced or triggered
# rerun stops with "Write-protected output files" until it is made writable again (docs/reruns.md).


for suffix, models, api in T.model_kinds():

    rule:
        name:
            f"train_stage{suffix}"
        input:
            model=T.model_dir,
            parents=T.parent_adapters,
            data=T.stage_train_file,
        output:
            protected(directory(paths.ADAPTER)),
        log:
            "logs/adapters/{model}/{chain}/seed{seed}.log",
        benchmark:
            "benchmarks/adapters/{model}/{chain}/seed{seed}.tsv"
        wildcard_constraints:
            model=models,
        # A fine-tuning job is the API's: polled from the submit host, where the network is.
        localrule: api
        conda:
            "../envs/torch.yaml"
        threads: T.model_threads
        resources:
            **T.model_job_resources(fine_tuning=True),
        params:
            hp=T.stage_hyperparameters,
            model_id=T.model_id,
            work_dir=T.training_work_dir,
        script:
            "../scripts/train_stage.py"
