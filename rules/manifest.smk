# results/manifest.json: every declared output with its sha256. Its inputs are rule all's other targets
# (figure variants included), so it runs last; model snapshots, downloads, trainer scratch and caches are no
# declared output and not listed.


localrules:
    manifest,


rule manifest:
    input:
        T.manifest_inputs(),
    output:
        paths.MANIFEST,
    log:
        "logs/manifest.log",
    conda:
        "../envs/core.yaml"
    script:
        "../scripts/manifest.py"
