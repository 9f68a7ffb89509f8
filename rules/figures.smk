# Tidy tables (one row per condition, seed, protocol and metric), per-condition summaries, figures, the
# results summary; report entries (`snakemake --report`): captions in report/ (one per figure name in
# report/figures/, one per evaluation table in report/tables/, included by report/figure.rst and table.rst).
from sgtr_em import published
from sgtr_em import report as reportlib


localrules:
    tidy_table,
    figure,
    figure_variant,
    training_curves,
    results_summary,


rule tidy_table:
    input:
        T.table_inputs,
    output:
        tidy=paths.TABLE,
        summary=report(
            paths.TABLE_SUMMARY,
            caption="../report/table.rst",
            category="Tables",
            labels={"table": "{table}", "content": "mean, sd, n per condition"},
        ),
    log:
        "logs/tables/{table}.log",
    conda:
        "../envs/core.yaml"
    script:
        "../scripts/tidy_table.py"


rule figure:
    input:
        unpack(T.figure_inputs),
    output:
        png=report(
            paths.FIGURE.replace("{ext}", "png"),
            caption="../report/figure.rst",
            category="Figures",
            subcategory="{model}",
            labels=reportlib.figure_labels,
        ),
        pdf=paths.FIGURE.replace("{ext}", "pdf"),
    log:
        "logs/figures/{model}/{figure}.log",
    conda:
        "../envs/core.yaml"
    params:
        protocols=T.figure_protocols,
        published=T.published_numbers,
        comparator=config["eval"]["self_recognition"]["comparators"][0],
        run_name=config["run_name"],
        extensions=T.figure_extensions,
    script:
        "../scripts/plot_figure.py"


# The same figure drawn with an evaluation's other protocol (e.g. logprob where the paper's protocol is primary).
use rule figure as figure_variant with:
    output:
        png=report(
            paths.FIGURE_VARIANT.replace("{ext}", "png"),
            caption="../report/figure.rst",
            category="Figures in other protocols",
            subcategory="{model}: {protocol}",
            labels=reportlib.figure_labels,
        ),
        pdf=paths.FIGURE_VARIANT.replace("{ext}", "pdf"),
    log:
        "logs/figures/{model}/{protocol}/{figure}.log",


# Loss against step of every trained stage, seeds overlaid, with the learning-rate schedule (from the adapters'
# training records; none for an API model's fine-tuning jobs).
rule training_curves:
    input:
        T.training_curve_inputs,
    output:
        png=report(
            paths.TRAINING_CURVES.replace("{ext}", "png"),
            caption="../report/training_curves.rst",
            category="Figures",
            subcategory="{model}",
            labels={"figure": "Training curves: loss per step", "model": "{model}"},
        ),
        pdf=paths.TRAINING_CURVES.replace("{ext}", "pdf"),
        csv=paths.TRAINING_CURVES.replace("{ext}", "csv"),
    log:
        "logs/figures/{model}/training_curves.log",
    conda:
        "../envs/core.yaml"
    params:
        run_name=config["run_name"],
    script:
        "../scripts/plot_training_curves.py"


rule results_summary:
    input:
        **T.summary_tables(),
        claims=list(T.claims_tables().values()),
    output:
        markdown=paths.RESULTS_SUMMARY,
        html=report(
            paths.RESULTS_SUMMARY_HTML,
            caption="../report/results_summary.rst",
            category="Results summary",
            labels={"content": "conditions × evaluations, ours beside the paper"},
        ),
    log:
        "logs/report/results_summary.log",
    conda:
        "../envs/core.yaml"
    params:
        models=config["grid"]["models"],
        model_ids={m: T.model_identity(m) for m in config["grid"]["models"]},
        protocols={
            "self_recognition": config["eval"]["self_recognition"]["primary_protocol"],
            "truthfulqa": config["eval"]["truthfulqa"]["primary_protocol"],
        },
        published=published.load_published(),
        run_name=config["run_name"],
        claim_models=list(T.claims_tables()),
        extensions={m: T.extensions(m) for m in config["grid"]["models"]},
    script:
        "../scripts/results_summary.py"
