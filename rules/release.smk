# Reviewer path: released raw results -> our evaluation JSONs -> tables -> the paper's figures, without a GPU
# (target `release_figures`), and the `bundle` of our own results that the same import path reads back.
# Released summaries as a model's base summaries: `prepare_released_summaries`. None of these is in `all`.

RELEASE = "results/release"
RELEASE_RAW = f"{RELEASE}/raw"
RELEASE_EVALS = f"{RELEASE}/eval"
RELEASE_TABLES = f"{RELEASE}/tables"
RELEASE_IMPORT_TABLES = {
    "truthfulqa_per_file": f"{RELEASE_TABLES}/truthfulqa_per_file.csv",
    "self_recognition_per_file": f"{RELEASE_TABLES}/self_recognition_per_file.csv",
    "truthfulqa_per_condition": f"{RELEASE_TABLES}/truthfulqa_per_condition.csv",
    "self_recognition_per_condition": f"{RELEASE_TABLES}/self_recognition_per_condition.csv",
    "truthfulqa_grid": f"{RELEASE_TABLES}/truthfulqa_grid.csv",
}
RELEASE_UNMAPPED = f"{RELEASE}/unmapped_files.csv"
BUNDLE = f"results/bundle/{config['run_name']}.tar.gz"


localrules:
    release_fetch,
    release_import,
    release_model_tables,
    release_figure,
    release_figures,
    prepare_released_summaries,
    bundle,


rule release_fetch:
    output:
        directory(RELEASE_RAW),
    log:
        "logs/release/fetch.log",
    conda:
        "../envs/core.yaml"
    params:
        source=config["release"]["source"],
        keep=[
            config["release"]["truthfulqa_dir"],
            config["release"]["self_recognition_dir"],
        ],
        cache=targets.DOWNLOADS,
    script:
        "../scripts/release_fetch.py"


rule release_import:
    input:
        raw=RELEASE_RAW,
    output:
        **RELEASE_IMPORT_TABLES,
        evals=directory(RELEASE_EVALS),
        unmapped=RELEASE_UNMAPPED,
    log:
        "logs/release/import.log",
    conda:
        "../envs/core.yaml"
    params:
        layout={
            key: config["release"][key]
            for key in (
                "truthfulqa_dir",
                "self_recognition_dir",
                "models",
                "other_sources",
                "article_id_patterns",
            )
        },
        protocol=config["release"]["protocol"],
    script:
        "../scripts/release_import.py"


rule release_model_tables:
    input:
        evals=RELEASE_EVALS,
    output:
        truthfulqa=f"{RELEASE_TABLES}/{{model}}/truthfulqa_summary.csv",
        self_recognition=f"{RELEASE_TABLES}/{{model}}/self_recognition_summary.csv",
    log:
        "logs/release/tables/{model}.log",
    conda:
        "../envs/core.yaml"
    params:
        selfrec_eval=lambda wc: config["release"]["figures"][wc.model][
            "self_recognition"
        ],
        figure_chains=config["release"]["figure_chains"],
    script:
        "../scripts/release_model_tables.py"


rule release_figure:
    input:
        self_recognition=f"{RELEASE_TABLES}/{{model}}/self_recognition_summary.csv",
        truthfulqa=f"{RELEASE_TABLES}/{{model}}/truthfulqa_summary.csv",
    output:
        png=f"{RELEASE}/figures/{{model}}/{{figure}}.png",
        pdf=f"{RELEASE}/figures/{{model}}/{{figure}}.pdf",
    log:
        "logs/release/figures/{model}/{figure}.log",
    conda:
        "../envs/core.yaml"
    params:
        self_recognition_protocol=config["release"]["protocol"],
        truthfulqa_protocol=config["release"]["protocol"],
        comparator=lambda wc: config["release"]["figures"][wc.model][
            "self_recognition"
        ].removeprefix("selfrec-"),
    script:
        "../scripts/plot_figure.py"


rule release_figures:
    input:
        expand(
            f"{RELEASE}/figures/{{model}}/{{figure}}.{{ext}}",
            model=list(config["release"]["figures"]),
            figure=targets.CORE_FIGURES,
            ext=("png", "pdf"),
        ),
        *RELEASE_IMPORT_TABLES.values(),
        RELEASE_UNMAPPED,


rule prepare_released_summaries:
    input:
        articles=targets.ARTICLES,
    output:
        targets.RELEASED_SUMMARIES,
    log:
        "logs/data/released_summaries/{model}/{dataset}.log",
    conda:
        "../envs/torch.yaml"
    params:
        spec=lambda wc: config["models"][wc.model]["summaries"][wc.dataset],
        cache=targets.DOWNLOADS,
    script:
        "../scripts/prepare_comparator_summaries.py"


# Our evaluation JSONs of the grid (every evaluation), the tables and the figures.
rule bundle:
    input:
        [T.evaluation_files(table) for table in T.core_evaluations()],
        T.all_tables(),
        T.all_figures(),
    output:
        BUNDLE,
    log:
        "logs/bundle.log",
    conda:
        "../envs/core.yaml"
    params:
        run_name=config["run_name"],
    script:
        "../scripts/release_bundle.py"
