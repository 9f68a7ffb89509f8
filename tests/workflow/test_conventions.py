"""Snakemake's own conventions where they exist (issue 29): config files compose without Snakemake announcing
a merge that did not happen, the pinning rule has a name that cannot be taken for `--unlock`, and the workflow
profile (profiles/default) is read (that it holds only what is right beside any other profile:
tests/unit/test_profiles.py)."""

from __future__ import annotations

from conftest import copy_workflow, snakemake


def test_a_standalone_config_replaces_the_default_without_a_contradicting_message(tmp_path):
    workdir = copy_workflow(tmp_path / "wf")
    paper = snakemake(workdir, "-n", "--quiet", "rules", "--configfile", "config/config.yaml", timeout=300)
    assert paper.returncode == 0, paper.stderr[-2000:]
    assert "is extended by" not in paper.stderr + paper.stdout and "is replaced by" not in paper.stderr
    assert "demo-target" not in paper.stdout  # nothing of the demo's grid is left in the paper's
    replaced = snakemake(workdir, "-n", "--replace-workflow-config", "--configfile", "config/demo.yaml", timeout=120)
    assert replaced.returncode != 0
    errors = [line for line in replaced.stderr.splitlines() if line.startswith("Config error:")]
    assert len(errors) == 1 and "standalone: true" in errors[0], replaced.stderr[-2000:]
    assert "Traceback" not in replaced.stderr


def test_the_pinning_rule_is_pin_sources_and_the_workflow_profile_is_read(tmp_path):
    workdir = copy_workflow(tmp_path / "wf")
    listed = snakemake(workdir, "--list-target-rules", timeout=120)
    assert listed.returncode == 0, listed.stderr[-2000:]
    rules = set(listed.stdout.split())
    assert "pin_sources" in rules and "lock" not in rules
    assert "workflow specific profile profiles/default" in listed.stderr
