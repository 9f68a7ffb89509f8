# The paper's claims checked on this run (config `claims`, docs/methodology.md §8): per target model a row per
# claim (effect, hierarchical-bootstrap interval, one-sided test over seeds, verdict) read from the evaluation
# JSONs' per-item records, and a forest plot of the effects beside the paper's.
from sgtr_em import published
from sgtr_em.release import targets as release_targets


localrules:
    claims,
    claims_forest,
    release_claims,
    release_claims_forest,


rule claims:
    input:
        T.claim_inputs,
    output:
        paths.CLAIMS,
    log:
        "logs/claims/{model}.log",
    benchmark:
        "benchmarks/claims/{model}.tsv"
    conda:
        "../envs/core.yaml"
    params:
        claims=T.claims_param,
        settings=T.claims_settings(),
        published=published.load_published(),
        model_id=T.model_id,
    script:
        "../scripts/claims.py"


rule claims_forest:
    input:
        paths.CLAIMS,
    output:
        png=report(
            paths.CLAIMS_FIGURE["png"],
            caption="../report/claims.rst",
            category="Claims",
            labels={
                "model": "{model}",
                "figure": "Claims: our effects beside the paper's",
            },
        ),
        pdf=paths.CLAIMS_FIGURE["pdf"],
    log:
        "logs/claims/{model}_forest.log",
    conda:
        "../envs/core.yaml"
    params:
        title=T.claims_figure_title,
    script:
        "../scripts/claims_forest.py"


# The same claims on the authors' released results (target `release_figures`, rules/release.smk).
rule release_claims:
    input:
        evals=release_targets.EVALS,
    output:
        release_targets.CLAIMS,
    log:
        "logs/release/claims/{model}.log",
    conda:
        "../envs/core.yaml"
    params:
        claims=release_targets.claims_param(config["claims"], config["release"]),
        settings=T.claims_settings(),
        published=published.load_published(),
    script:
        "../scripts/claims.py"


rule release_claims_forest:
    input:
        release_targets.CLAIMS,
    output:
        png=report(
            release_targets.CLAIMS_FIGURE["png"],
            caption="../report/release_claims.rst",
            category="Authors' released results",
            subcategory="{model}",
            labels={"model": "{model}", "figure": "Claims on the released results"},
        ),
        pdf=release_targets.CLAIMS_FIGURE["pdf"],
    log:
        "logs/release/claims/{model}_forest.log",
    conda:
        "../envs/core.yaml"
    params:
        title=release_targets.claims_figure_title,
        source_note=release_targets.source_note(config["release"]),
    script:
        "../scripts/claims_forest.py"
