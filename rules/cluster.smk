# Validating a new cluster: which devices does a job on the GPU partition see?


rule gpu_check:
    output:
        "results/gpu_check.txt",
    log:
        "logs/gpu_check.log",
    conda:
        "../envs/torch.yaml"
    resources:
        gpu=lambda wc: max(
            1, model_setting(config["grid"]["models"][0], "resources")["gpu"]
        ),
        slurm_partition=lambda wc: model_setting(
            config["grid"]["models"][0], "resources"
        )["slurm_partition"],
        mem_mb=2000,
        runtime=10,
    script:
        "../scripts/gpu_check.py"
