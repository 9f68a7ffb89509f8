# Reviewer path: released raw results -> our evaluation JSONs -> tables -> the paper's figures, without a GPU
# (target `release_figures`; its figures and claims in `snakemake release_figures --report FILE`, each marked as
# drawn from the release), and the `bundle` of our own results that the same import path reads back.
# Released summaries as a model's base summaries: `prepare_released_summaries`. None of these is in `all`.

from sgtr_em.release import targets as release_targets


localrules:
    release_fetch,
    release_import,
    release_plan,
    release_model_tables,
    release_figure,
    release_authors_figure,
    release_figures,
    release_compare,
    prepare_released_summaries,
    bundle,


rule release_fetch:
    output:
        directory(release_targets.RAW),
    log:
        "logs/release/fetch.log",
    conda:
        "../envs/core.yaml"
    params:
        source=config["release"]["source"],
        keep=release_targets.fetch_folders(config["release"]),
        optional=release_targets.fetch_optional(config["release"]),
        extra=config["release"]["extra_files"],
        cache=paths.DOWNLOADS,
    script:
        "../scripts/release_fetch.py"


rule release_import:
    input:
        raw=release_targets.RAW,
    output:
        **release_targets.IMPORT_TABLES,
        **release_targets.REPORTS,
        evals=directory(release_targets.EVALS),
    log:
        "logs/release/import.log",
    conda:
        "../envs/core.yaml"
    params:
        layout=release_targets.import_layout(config["release"]),
        protocol=config["release"]["protocol"],
    script:
        "../scripts/release_import.py"


# Which figures the release holds data for (the rest are skipped, each with its reason in the log and plan).
checkpoint release_plan:
    input:
        **release_targets.IMPORT_TABLES,
        authors_lists=release_targets.REPORTS["authors_lists"],
    output:
        release_targets.PLAN,
    log:
        "logs/release/plan.log",
    conda:
        "../envs/core.yaml"
    params:
        release=config["release"],
        figures=paths.CORE_FIGURES,
    script:
        "../scripts/release_plan.py"


rule release_model_tables:
    input:
        truthfulqa=release_targets.IMPORT_TABLES["truthfulqa_tidy"],
        self_recognition=release_targets.IMPORT_TABLES["self_recognition_tidy"],
    output:
        **release_targets.MODEL_TABLES,
    log:
        "logs/release/tables/{model}.log",
    conda:
        "../envs/core.yaml"
    params:
        settings=release_targets.settings_param(config["release"]),
    script:
        "../scripts/release_model_tables.py"


rule release_figure:
    input:
        self_recognition=release_targets.MODEL_TABLES["self_recognition"],
        truthfulqa=release_targets.MODEL_TABLES["truthfulqa"],
    output:
        png=report(
            release_targets.FIGURE["png"],
            caption="../report/release_figure.rst",
            category="Authors' released results",
            subcategory="{model}",
            labels={"model": "{model}", "figure": "{figure}"},
        ),
        pdf=release_targets.FIGURE["pdf"],
    log:
        "logs/release/figures/{model}/{figure}.log",
    conda:
        "../envs/core.yaml"
    params:
        protocols={
            "self_recognition": config["release"]["protocol"],
            "truthfulqa": config["release"]["protocol"],
            "em_questions": None,
        },
        published=None,
        comparator=release_targets.comparator_param(config["release"]),
        source_note=release_targets.source_note(config["release"]),
    script:
        "../scripts/plot_figure.py"


rule release_authors_figure:
    input:
        authors_lists=release_targets.REPORTS["authors_lists"],
        truthfulqa_per_file=release_targets.IMPORT_TABLES["truthfulqa_per_file"],
        self_recognition_per_file=release_targets.IMPORT_TABLES[
            "self_recognition_per_file"
        ],
    output:
        png=report(
            release_targets.AUTHORS_FIGURE["png"],
            caption="../report/release_authors_figure.rst",
            category="Authors' released results",
            subcategory="the authors' plotting scripts",
            labels={"figure": "{name}"},
        ),
        pdf=release_targets.AUTHORS_FIGURE["pdf"],
    log:
        "logs/release/authors_figures/{name}.log",
    conda:
        "../envs/core.yaml"
    params:
        protocol=config["release"]["protocol"],
        source_note=release_targets.source_note(config["release"]),
    script:
        "../scripts/release_authors_figure.py"


rule release_figures:
    input:
        # Known only once the plan checkpoint has run: the figures and the claims (rules/claims.smk).
        lambda wc: release_targets.planned_outputs(
            checkpoints.release_plan.get().output[0], config["claims"]
        ),
        release_targets.PLAN,
        *release_targets.IMPORT_TABLES.values(),
        *release_targets.REPORTS.values(),


# Our run's per-condition numbers beside the release's (the same evaluations, the release's protocol), for
# every target model of the run the release holds: e.g. a one-GPU preset's run against the authors' runs of
# the same model.
rule release_compare:
    input:
        ours=[T.summary_tables()[table] for table in T.core_evaluations()],
        released=[
            release_targets.IMPORT_TABLES["truthfulqa_per_condition"],
            release_targets.IMPORT_TABLES["self_recognition_per_condition"],
        ],
    output:
        **release_targets.COMPARE,
    log:
        "logs/release/compare.log",
    conda:
        "../envs/core.yaml"
    params:
        models=config["grid"]["models"],
        protocol=config["release"]["protocol"],
        source=config["release"]["source"],
    script:
        "../scripts/release_compare.py"


rule prepare_released_summaries:
    input:
        T.released_summaries_source_file,
        articles=paths.ARTICLES,
    output:
        paths.RELEASED_SUMMARIES,
    log:
        "logs/data/released_summaries/{model}/{dataset}.log",
    conda:
        "../envs/torch.yaml"
    params:
        spec=T.released_summaries_spec,
        cache=paths.DOWNLOADS,
    script:
        "../scripts/prepare_comparator_summaries.py"


# What an artifact committee checks (docs/artifact.md): our evaluation JSONs, tables, figures, claims and
# summary, the config as run, the environment, the code version, the manifest and the sources lock.
rule bundle:
    input:
        **T.bundle_inputs(),
    output:
        release_targets.bundle_file(config["run_name"]),
    log:
        "logs/bundle.log",
    conda:
        "../envs/core.yaml"
    params:
        run_name=config["run_name"],
        names=paths.BUNDLE_NAMES,
    script:
        "../scripts/release_bundle.py"
