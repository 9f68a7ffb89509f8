"""Snakemake's own conventions where they exist (issue 29): the workflow profile (profiles/default) holds only
what is right beside any other profile (the conventions Snakemake shows: tests/workflow/test_conventions.py)."""

from __future__ import annotations

import yaml
from conftest import REPO

# Keys a workflow profile must not hold: Snakemake lets it replace the same top-level key of `--profile`
# (profiles/slurm's resources would be lost).
PROFILE_ONLY_KEYS = {"resources", "default-resources", "set-resources", "executor", "jobs", "cores", "retries"}


def test_the_workflow_profile_leaves_resources_and_execution_to_the_other_profiles():
    default = yaml.safe_load((REPO / "profiles/default/config.yaml").read_text())
    assert {"rerun-incomplete", "keep-going"} <= set(default)
    assert not PROFILE_ONLY_KEYS & set(default)
    for name in ("local", "slurm"):
        profile = yaml.safe_load((REPO / f"profiles/{name}/config.yaml").read_text())
        assert "printshellcmds" not in profile, name  # script rules: it prints only "Shell command: None"
