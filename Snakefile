# Reproduction workflow for "Self-Recognition Finetuning can Reverse and Prevent Emergent Misalignment"
# (arXiv 2606.23700). Default target: every table and figure of the configured grid.
#
# Config: the embedded demo (config/demo.yaml) is the default. `--configfile FILE` merges FILE over it,
# unless FILE sets `standalone: true` (config/config.yaml does), which replaces everything before it;
# `--config key=value` applies last. sgtr_em.config.load checks the result once (one line per error).
import os
import sys

from snakemake.utils import min_version

from sgtr_em import config as configlib
from sgtr_em import headline
from sgtr_em import lock as locklib
from sgtr_em import paths, targets
from sgtr_em.targets import Targets

min_version("9.0.1")

# Conda envs install this workflow's package from here (envs/*.post-deploy.sh).
os.environ.setdefault("SGTR_EM_WORKFLOW_DIR", workflow.basedir)

# The config is composed here, not by a `configfile:` directive (whose merge Snakemake would announce as
# "extended" even where a standalone file replaces the default): config/demo.yaml, then each --configfile
# in order, then --config. A file with `standalone: true` plays the part of Snakemake's
# --replace-workflow-config inside the file, so every job on a cluster composes the same config.
# `snakemake pin_sources` resolves the remote sources that are neither pinned nor locked, so strict_pins lets
# it start without them (Snakemake's targets are not known yet when this file is read: the command line is).
if workflow.config_settings.replace_workflow_config:
    sys.exit(
        "Config error: --replace-workflow-config is not used by this workflow: give a complete config file "
        "(`standalone: true`, as config/config.yaml) with --configfile instead"
    )
try:
    _loaded = configlib.load(
        configlib.compose(
            configlib.DEFAULT_CONFIG,
            workflow.overwrite_configfiles,
            workflow.config_settings.config,
        ),
        resolving_lock="pin_sources" in sys.argv[1:],
    )
except configlib.ConfigError as err:
    sys.exit(f"Config error: {err}")
# Snakemake's `config` object is shared with the workflow: it becomes the loaded config, and the files it
# was composed of are the ones Snakemake lists (run header, report).
config.clear()
config.update(_loaded)
workflow.configfiles[:] = configlib.composed_files(
    configlib.DEFAULT_CONFIG, workflow.overwrite_configfiles
)
# What the profile's default-resources (or --default-resources) give rules that set none: a model whose config
# names no partition or GPU model takes the profile's instead of overriding it with nothing.
T = Targets(
    config,
    profile_resources=targets.written_resources(
        workflow.resource_settings.default_resources, targets.PROFILE_RESOURCES
    ),
)


wildcard_constraints:
    **paths.WILDCARD_CONSTRAINTS,


# `snakemake --report results/report.html`: every figure and table with its caption (report/).
report: "report/workflow.rst"


include: "rules/pin_sources.smk"
include: "rules/data.smk"
include: "rules/prompts.smk"
include: "rules/summaries.smk"
include: "rules/pairs.smk"
include: "rules/finetune.smk"
include: "rules/eval.smk"
include: "rules/figures.smk"
include: "rules/claims.smk"
include: "rules/api.smk"
include: "rules/cluster.smk"
include: "rules/release.smk"
include: "rules/manifest.smk"
include: "rules/artifact.smk"


rule all:
    default_target: True
    input:
        T.all_targets(),


# A finished run ends with the paper's claims it checked and their verdicts (ours, or the released results'
# on the reviewer path), in one paragraph.
onsuccess:
    headline.print_for_jobs(workflow.dag.jobs)
