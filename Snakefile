# Reproduction workflow for "Self-Recognition Finetuning can Reverse and Prevent Emergent Misalignment"
# (arXiv 2606.23700). Default target: every figure of the configured grid.
import os

from snakemake.utils import min_version, validate

min_version("9.0")

# Conda envs install this workflow's package from here (envs/*.post-deploy.sh).
os.environ.setdefault("SGTR_EM_WORKFLOW_DIR", workflow.basedir)


# The embedded demo is the default; `--configfile config/config.yaml` replaces it (not merged into it).
if not config:

    configfile: "config/demo.yaml"


validate(config, "config/schema.yaml")


# `snakemake --report results/report.html`: every figure and table with its caption (report/).
report: "report/workflow.rst"


include: "rules/common.smk"
include: "rules/data.smk"
include: "rules/summaries.smk"
include: "rules/pairs.smk"
include: "rules/finetune.smk"
include: "rules/eval.smk"
include: "rules/figures.smk"
include: "rules/api.smk"
include: "rules/cluster.smk"
include: "rules/release.smk"
include: "rules/manifest.smk"


rule all:
    default_target: True
    input:
        all_tables(),
        all_figures(),
        "results/report/results_summary.md",
        "results/manifest.json",
