# The prompt texts of the run (prompts.set): the project's own, or the authors' read from their pinned files
# (docs/methodology.md §11). Every job that builds a prompt reads this one file.


localrules:
    prepare_prompts,


rule prepare_prompts:
    input:
        T.prompt_source_files,
    output:
        paths.PROMPTS,
    log:
        "logs/data/prompts.log",
    conda:
        "../envs/core.yaml"
    params:
        prompts=T.prompt_settings(),
        cache=paths.DOWNLOADS,
    script:
        "../scripts/prepare_prompts.py"
