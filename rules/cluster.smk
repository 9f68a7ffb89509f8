# Validating a new cluster: which devices does a job on the GPU partition see?


rule gpu_check:
    output:
        targets.GPU_CHECK,
    log:
        "logs/gpu_check.log",
    conda:
        "../envs/torch.yaml"
    resources:
        **T.gpu_check_resources(),
    script:
        "../scripts/gpu_check.py"
