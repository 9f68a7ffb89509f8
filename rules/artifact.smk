# What a bundle holds beside the results (docs/artifact.md): the config as run, the Python environment as
# installed and the code version. Made for `bundle`; not part of `all`.
from sgtr_em.runtime import code_version


localrules:
    artifact_info,


rule artifact_info:
    output:
        **targets.ARTIFACT,
    log:
        "logs/artifact.log",
    conda:
        "../envs/core.yaml"
    params:
        config=config,
        # A new commit or an edited checkout writes a new record.
        code_version=code_version(),
    script:
        "../scripts/artifact_info.py"
