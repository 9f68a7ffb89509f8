"""The planned DAG as `snakemake -n` prints it: its jobs (rule, inputs, wildcards), and the model states
they load. Used to count loads per evaluated state (tests/workflow/test_loads_dry_run.py) and to estimate GPU-hours per
grid subset (tools/gpu_hours.py)."""

from __future__ import annotations

import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from .targets import Targets

# A training job loads its parent state to train a new one on it: once per child stage, which no evaluation
# design can share, so it is not counted as a load of the parent.
TRAINING_RULE = "train_stage"


@dataclass(frozen=True)
class PlannedJob:
    rule: str
    inputs: frozenset[str] = frozenset()
    wildcards: dict[str, str] = field(default_factory=dict)


def planned_jobs(dry_run_output: str) -> list[PlannedJob]:
    """Each job of `snakemake -n` output (without --quiet): its rule, inputs and wildcards."""
    jobs = []
    for block in re.split(r"\n(?=(?:local)?rule \w+:)", dry_run_output):
        head = re.match(r"\s*(?:local)?rule (\w+):", block)
        if not head:
            continue
        inputs = re.search(r"^\s+input: (.*)$", block, re.M)
        wildcards = re.search(r"^\s+wildcards: (.*)$", block, re.M)
        jobs.append(
            PlannedJob(
                head.group(1),
                frozenset(inputs.group(1).split(", ")) if inputs else frozenset(),
                dict(w.split("=", 1) for w in wildcards.group(1).split(", ")) if wildcards else {},
            )
        )
    return jobs


def dry_run(workdir: str | Path, *args: str, timeout: float = 600) -> list[PlannedJob]:
    """The jobs `snakemake -n <args>` plans in `workdir` (with this interpreter's snakemake)."""
    exe = Path(sys.executable).parent / "snakemake"
    result = subprocess.run(
        [str(exe), "-n", *args], cwd=workdir, capture_output=True, text=True, timeout=timeout, check=False
    )
    if result.returncode != 0:
        raise RuntimeError(f"snakemake -n {' '.join(args)} failed:\n{result.stderr[-3000:]}")
    return planned_jobs(result.stdout + result.stderr)


def loaded_state(targets: Targets, job: PlannedJob) -> tuple[str, str, int] | None:
    """The grid state of a local model a job loads, if any: its inputs hold the model's directory and exactly
    that state's adapters (for `base`, none, and the state's seed as a wildcard). None for a training job
    (see TRAINING_RULE), a judge of another model and jobs that load no model."""
    if job.rule == TRAINING_RULE:
        return None
    for model in targets.config["grid"]["models"]:
        if targets.is_api_model(model) or targets.model_path(model) not in job.inputs:
            continue
        adapters = {path for path in job.inputs if path.startswith(f"results/adapters/{model}/")}
        for _, chain, seed in (s for s in targets.grid_states() if s[0] == model):
            if adapters == set(targets.state_adapters(model, chain, seed)) and (
                adapters or job.wildcards.get("seed") == str(seed)
            ):
                return model, chain, seed
    return None
