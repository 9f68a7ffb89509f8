"""The documentation works as written: every `snakemake` command in a fenced bash block of README.md or
docs/*.md (tests/doc_commands.py) is run, as a dry run in a private copy of the workflow."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from conftest import copy_workflow, snakemake
from doc_commands import COMMANDS, DocCommand, canonical, option_values

DRY_RUN_FLAGS = {"-n", "--dry-run", "--dryrun"}
# Snakemake's own message when --report reaches an output that only a real run makes.
REPORT_NEEDS_RESULTS = "marked for report but does not exist"


def without_option(argv: list[str], option: str, nargs: int) -> list[str]:
    out, skip = [], 0
    for arg in argv:
        if skip:
            skip -= 1
        elif arg == option:
            skip = nargs
        else:
            out.append(arg)
    return out


def runnable_argv(argv: list[str]) -> list[str]:
    """The command as this machine can check it. What cannot be dry-run is checked as far as it goes
    without a real run:

    - `--profile` other than profiles/local is dropped: the cluster profile needs a cluster (its file is
      checked by tests/unit/test_readme.py, and tests/slurm/test_slurm.py runs it on a real one);
    - `--unlock` runs as written: it only removes lock files, harmless in the private copy;
    - `--report` runs as written: with no results it must get as far as Snakemake's complaint that a report
      file does not exist yet, by which point the command line, the config and the whole DAG were accepted;
    - `--sdm conda` (and `--conda-create-envs-only`) is dropped where conda is not installed: the rest of the
      command is still dry-run, and `snakemake --lint` (`make lint`) checks every rule's env file;
    - everything else gets `-n`.
    """
    argv = list(argv)
    for profiles in option_values(argv, "--profile"):
        if profiles != ["profiles/local"]:
            argv = without_option(argv, "--profile", 1)
    if "--sdm" in argv and shutil.which("conda") is None:
        argv = [a for a in without_option(argv, "--sdm", 1) if a != "--conda-create-envs-only"]
    if "--unlock" not in argv and "--report" not in argv and not DRY_RUN_FLAGS & set(argv):
        argv.append("-n")
    return argv


def runs() -> list[DocCommand]:
    """Distinct commands as run here (a SLURM run and its local dry run are one check)."""
    found: dict[tuple, DocCommand] = {}
    for command in COMMANDS:
        argv = runnable_argv(command.argv)
        found.setdefault(canonical(argv), DocCommand(argv)).where.extend(command.where)
    return list(found.values())


RUNS = runs()


@pytest.fixture(scope="module")
def workflow(tmp_path_factory) -> Path:
    """One private copy for every command: dry runs write nothing but Snakemake's own metadata."""
    return copy_workflow(tmp_path_factory.mktemp("docs") / "workflow")


@pytest.mark.e2e
@pytest.mark.parametrize("run", RUNS, ids=[r.where[0] for r in RUNS])
def test_command_runs(run: DocCommand, workflow: Path):
    """Each documented command, as `runnable_argv` makes it (see there for what is not a dry run)."""
    result = snakemake(workflow, *run.argv, timeout=300)
    output = result.stdout + result.stderr
    failure = f"{run.where}: snakemake {' '.join(run.argv)}\n{output[-3000:]}"
    if "--report" in run.argv and result.returncode != 0:
        assert REPORT_NEEDS_RESULTS in output, failure
    else:
        assert result.returncode == 0, failure
