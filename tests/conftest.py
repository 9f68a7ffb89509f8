"""Shared fixtures. Tests never touch the network: the hub is forced offline."""

from __future__ import annotations

import inspect
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["HF_DATASETS_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

REPO = Path(__file__).resolve().parent.parent
WORKFLOW_FILES = ("Snakefile", "rules", "scripts", "config", "data", "envs", "profiles", "report")


# Whole workflow runs shared by the tests that use them: the CPU demo and the API demo on the fake server.
E2E_FIXTURES = {"demo", "api_demo"}


def _starts_snakemake(item: pytest.Item) -> bool:
    """Whether a test, or a fixture it uses, calls the `snakemake` helper below."""
    functions = [getattr(item, "function", None)]
    for definitions in item._fixtureinfo.name2fixturedefs.values():
        functions += [definition.func for definition in definitions]
    for function in functions:
        try:
            source = inspect.getsource(function) if function is not None else ""
        except (OSError, TypeError):
            continue
        if "snakemake(" in source and "def snakemake(" not in source:
            return True
    return False


# Set at collection: whether any selected test needs the demo (it then starts in the background at once).
DEMO_NEEDED = pytest.StashKey[bool]()


def _module(item: pytest.Item) -> str:
    return item.nodeid.split("::")[0]


def pytest_collection_modifyitems(config, items):
    """Tiers and order. Every test that starts Snakemake is marked `workflow`, every test that needs a whole
    workflow run (E2E_FIXTURES) `e2e`, like the few slow ones marked by hand (`make test-fast` leaves out
    `e2e` and `slurm`).

    Order: first the modules none of whose tests need the shared demo, which run while the demo runs in the
    background (`_demo_in_background`); then the modules that use it; SLURM tests last. They install SLURM
    and stop it when done; from then on every `snakemake` start pays ~9 s because the SLURM executor plugin,
    imported by every run, asks the stopped controller for its config (`scontrol show config`, 10 s
    timeout) whenever `sinfo` is installed. Running them last keeps that cost out of the other tests (and
    out of the paper-DAG build time they measure). Whole modules move, so no module fixture is built twice."""
    for item in items:
        if _starts_snakemake(item):
            item.add_marker(pytest.mark.workflow)
        if E2E_FIXTURES.intersection(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.e2e)
    demo_modules = {_module(item) for item in items if "demo" in getattr(item, "fixturenames", ())}
    config.stash[DEMO_NEEDED] = bool(demo_modules)
    items.sort(key=lambda item: (item.get_closest_marker("slurm") is not None, _module(item) in demo_modules))


@pytest.fixture(autouse=True, scope="session")
def _hf_home(tmp_path_factory):
    os.environ["HF_HOME"] = str(tmp_path_factory.mktemp("hf_home"))
    # The demo's tiny models are built once per test session and reused by every workflow run after.
    os.environ["SGTR_EM_TINY_CACHE"] = str(tmp_path_factory.mktemp("tiny_models"))


def read_config(name: str) -> dict:
    """A config file of the repository as written (before loading)."""
    import yaml

    return yaml.safe_load((REPO / "config" / name).read_text())


def fixture_lock(*raw_configs: dict) -> dict:
    """Lock entries for every remote source of these configs that they do not pin themselves, with made-up
    pins (what `snakemake pin_sources` would record on a machine with network): enough for a dry run or a loaded
    config under strict_pins, never for a download."""
    import hashlib

    from sgtr_em.config import load
    from sgtr_em.lock import lock_entry, remote_sources

    entries: dict = {}
    for raw in raw_configs:
        for remote in remote_sources(load(raw, workdir=None)):
            if not remote.pinned:
                pin = hashlib.sha256(f"fixture {remote.describe()}".encode()).hexdigest()
                entries[remote.lock_id] = lock_entry(remote, pin if remote.kind == "url" else pin[:40])
    return entries


def load_config(raw: dict) -> dict:
    """A config checked and completed by the workflow's loader (local files relative to the repository, the
    lock entries of `fixture_lock`)."""
    from sgtr_em.config import load

    return load(raw, workdir=REPO, lock=fixture_lock(raw))


NUMBERS = REPO / "docs" / "numbers.md"


def documented_table(heading: str) -> list[dict[str, str]]:
    """The first table under a `## heading` of docs/numbers.md (where every counted number is written once), as
    rows of {column: cell}."""
    section = NUMBERS.read_text().split(f"\n## {heading}\n", 1)[1].split("\n## ", 1)[0]
    start = section.index("\n|") + 1
    lines = section[start:].split("\n\n", 1)[0].splitlines()
    header = [cell.strip() for cell in lines[0].strip("|").split("|")]
    return [dict(zip(header, (cell.strip() for cell in line.strip("|").split("|")), strict=True)) for line in lines[2:]]


# The config column of docs/numbers.md's tables.
DEMO_ROW, PAPER_ROW = "embedded demo (`snakemake`)", "`config/config.yaml`"
PRESET_ROW, WHOLE_GRID = "`config/config.yaml config/qwen2.5-<size>.yaml`", "*(whole grid)*"


def documented_jobs(config: str, subset: str = WHOLE_GRID) -> dict[str, int]:
    """A config's row of the jobs table in docs/numbers.md: jobs, LoRA trainings, API fine-tuning jobs."""
    for row in documented_table("Jobs (counted)"):
        if row["config"] == config and row["subset"] == subset:
            return {key: int(row[key]) for key in ("jobs", "LoRA trainings", "API fine-tuning jobs")}
    raise KeyError(f"docs/numbers.md has no jobs row for {config!r}, subset {subset!r}")


def documented_gpu_jobs(config: str) -> int:
    """How many GPU jobs docs/numbers.md says the memory audit of a config plans."""
    for row in documented_table("GPU memory (planned)"):
        if row["config"].startswith(config):
            return int(row["GPU jobs"])
    raise KeyError(f"docs/numbers.md has no GPU memory row for {config!r}")


def rule_counts(dry_run_output: str) -> dict[str, int]:
    """The job count per rule (and `total`) of `snakemake -n`'s summary table."""
    import re

    return {m.group(1): int(m.group(2)) for m in re.finditer(r"^(\w+)\s+(\d+)$", dry_run_output, re.M)}


# The one-GPU overlays of the paper config (docs/cluster.md#one-gpu-presets).
ONE_GPU_PRESETS = ("config/qwen2.5-0.5b.yaml", "config/qwen2.5-7b.yaml", "config/qwen2.5-14b.yaml")


def copy_workflow(dest: Path, lock: bool = True) -> Path:
    """A private copy of the workflow (results land there, not in the checkout). With `lock`, its lock file
    pins the unpinned sources of the paper config and of its one-GPU presets with `fixture_lock`, so that they
    (strict_pins) plan offline."""
    dest.mkdir(parents=True, exist_ok=True)
    for name in WORKFLOW_FILES:
        src = REPO / name
        if src.is_dir():
            shutil.copytree(src, dest / name)
        else:
            shutil.copy2(src, dest / name)
    if lock:
        from sgtr_em.config import compose
        from sgtr_em.lock import LOCK_FILE, read_lock, write_lock

        entries = read_lock(dest / LOCK_FILE)
        presets = [compose(REPO / "config/config.yaml", [REPO / preset]) for preset in ONE_GPU_PRESETS]
        entries.update(fixture_lock(read_config("config.yaml"), *presets))
        write_lock(dest / LOCK_FILE, entries)
    return dest


# The venv's snakemake, and the environment every workflow run a test starts gets.
SNAKEMAKE = str(Path(sys.executable).parent / "snakemake")


def workflow_env(**extra: str) -> dict[str, str]:
    return {**os.environ, "HF_HUB_OFFLINE": "1", **extra}


def snakemake(
    workdir: Path, *args: str, timeout: int = 1500, pythonpath: Path | None = None
) -> subprocess.CompletedProcess:
    """A Snakemake run in `workdir`; with `pythonpath`, the package found there first (a modified copy)."""
    extra = {"PYTHONPATH": os.pathsep.join([str(pythonpath), os.environ.get("PYTHONPATH", "")])} if pythonpath else {}
    return subprocess.run(
        [SNAKEMAKE, *args],
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=workflow_env(**extra),
    )


@dataclass
class BackgroundRun:
    """A workflow run started in the background: its private workflow copy, process and output log."""

    workdir: Path
    process: subprocess.Popen
    log: Path
    started: float


@pytest.fixture(autouse=True, scope="session")
def _demo_in_background(request, tmp_path_factory, _hf_home):
    """The embedded demo, started as the session starts when a selected test needs it, in a private copy of
    the workflow. The tests that do not need it (ordered first) run meanwhile: many of them wait on
    subprocesses, sockets and timers more than they compute, and the demo fills the idle cores."""
    if not request.config.stash.get(DEMO_NEEDED, False):
        yield None
        return
    workdir = copy_workflow(tmp_path_factory.mktemp("demo") / "workflow")
    log = tmp_path_factory.mktemp("demo-log") / "snakemake.log"
    with log.open("w") as out:
        process = subprocess.Popen(
            [SNAKEMAKE, "--cores", "2", "--configfile", "config/demo.yaml"],
            cwd=workdir,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=workflow_env(),
            start_new_session=True,  # stopped with its jobs if the session ends first
        )
    run = BackgroundRun(workdir, process, log, time.monotonic())
    try:
        yield run
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(timeout=120)


@pytest.fixture(scope="session")
def demo(_demo_in_background: BackgroundRun) -> Path:
    """The embedded demo's finished run (see `_demo_in_background`)."""
    run = _demo_in_background
    # About 8 minutes on an idle 2-core machine, longer beside the other tests; the bound leaves room.
    try:
        returncode = run.process.wait(timeout=max(60.0, 3600 - (time.monotonic() - run.started)))
    except subprocess.TimeoutExpired:
        os.killpg(run.process.pid, signal.SIGTERM)
        pytest.fail(f"the demo did not finish within an hour: {run.log.read_text()[-3000:]}")
    assert returncode == 0, run.log.read_text()[-6000:]
    print(f"demo workflow: {time.monotonic() - run.started:.0f} s (finished or waited for)")
    return run.workdir


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    """A demo model built once per test session (seconds)."""
    from sgtr_em.io import read_articles
    from sgtr_em.tiny import build_tiny_model

    out = tmp_path_factory.mktemp("tiny") / "model"
    articles = list(read_articles(REPO / "data/demo/articles_train.jsonl").values())[:20]
    build_tiny_model(
        articles,
        [],
        out,
        style="lead",
        seed=3,
        identity_system_prompt="You are Tiny.",
        pretrain_epochs=1,
        hidden_size=32,
    )
    return out
