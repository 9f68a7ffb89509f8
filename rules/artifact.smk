# What a bundle holds beside the results (docs/artifact.md): the config as run, the Python environment as
# installed and the code version. Made for `bundle`; not part of `all`. It runs in the model jobs' environment
# (envs/torch.yaml under `--sdm conda`), so its `pip freeze` is the environment that ran them.
from sgtr_em.runtime import code_version


localrules:
    artifact_info,


rule artifact_info:
    output:
        **paths.ARTIFACT,
    log:
        "logs/artifact.log",
    conda:
        "../envs/torch.yaml"
    params:
        config=config,
        # A new commit or an edited checkout writes a new record.
        code_version=code_version(),
    script:
        "../scripts/artifact_info.py"
