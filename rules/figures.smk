# Tidy tables (one row per condition, seed, protocol and metric), per-condition summaries, figures.


localrules:
    tidy_table,
    figure,


rule tidy_table:
    input:
        lambda wc: table_evals(wc.table),
    output:
        tidy="results/tables/{table}.csv",
        summary="results/tables/{table}_summary.csv",
    log:
        "logs/tables/{table}.log",
    conda:
        "../envs/core.yaml"
    script:
        "../scripts/tidy_table.py"


rule figure:
    input:
        unpack(figure_inputs),
    output:
        png="results/figures/{model}/{figure}.png",
        pdf="results/figures/{model}/{figure}.pdf",
    log:
        "logs/figures/{model}/{figure}.log",
    conda:
        "../envs/core.yaml"
    params:
        selfrec_protocol=config["eval"]["self_recognition"]["primary_protocol"],
        truthfulqa_protocol=config["eval"]["truthfulqa"]["primary_protocol"],
        comparator=config["eval"]["self_recognition"]["comparators"][0],
        run_name=config["run_name"],
    script:
        "../scripts/plot_figure.py"
