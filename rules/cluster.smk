# Validating a new cluster: which devices does a job on the GPU partition see?


rule gpu_check:
    output:
        paths.GPU_CHECK,
    log:
        "logs/gpu_check.log",
    conda:
        "../envs/torch.yaml"
    resources:
        **T.gpu_check_resources(),
    params:
        # the GPUs of its jobs (at least one) are what the check asks for
        model=config["grid"]["models"][0],
    script:
        "../scripts/gpu_check.py"
