# results/manifest.json: every result file with its sha256. Its inputs are rule all's other targets, so it
# runs last; it lists everything under results/ except checkpoints/ and api_cache/ (scratch).


localrules:
    manifest,


rule manifest:
    input:
        T.all_tables(),
        T.all_figures(),
        T.all_claims(),
        targets.RESULTS_SUMMARY,
    output:
        targets.MANIFEST,
    log:
        "logs/manifest.log",
    conda:
        "../envs/core.yaml"
    script:
        "../scripts/manifest.py"
