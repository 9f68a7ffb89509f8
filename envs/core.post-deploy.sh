#!/usr/bin/env bash
# Snakemake runs this in a conda env it has just created (`--sdm conda`): install the workflow's own package
# (sgtr_em) from the workflow's checkout, editable and without dependencies (the env file pins them).
# SGTR_EM_WORKFLOW_DIR is set by the Snakefile to the directory it lives in.
set -euo pipefail
root="${SGTR_EM_WORKFLOW_DIR:?is set by the Snakefile: create the env through snakemake --sdm conda}"
python -m pip install --no-deps --editable "$root"
