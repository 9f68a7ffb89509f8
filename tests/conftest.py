"""Shared fixtures. Tests never touch the network: the hub is forced offline."""

from __future__ import annotations

import inspect
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from sgtr_em.dag import PlannedJob

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["HF_DATASETS_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
if os.environ.get("PYTEST_XDIST_WORKER"):
    # One core per worker: torch's default of a thread per core, in each worker and each job it starts beside the
    # demo's, oversubscribes the cores (about 8% more CPU time for the same tests).
    os.environ.setdefault("OMP_NUM_THREADS", "1")

REPO = Path(__file__).resolve().parent.parent
WORKFLOW_FILES = ("Snakefile", "rules", "scripts", "config", "data", "envs", "profiles", "report")


# The tiers, lightest first. Every test lives in the folder of its tier, tests/<tier>/, and the folder marks it
# (unit tests carry no mark): `make test-fast` runs tests/unit and tests/workflow, `make test` everything.
#   unit      neither starts Snakemake nor needs a whole workflow run
#   workflow  starts Snakemake (a dry run or a small workflow), needs no whole workflow run
#   e2e       needs a whole workflow run (E2E_FIXTURES), or is marked `e2e` by hand (a whole run of its own)
#   slurm     runs the workflow on a real single-node SLURM cluster (root, Debian)
TIERS = ("unit", "workflow", "e2e", "slurm")
TESTS = Path(__file__).resolve().parent

# Whole workflow runs shared by the tests that use them (defined below): the CPU demo and the API demo on the fake
# server.
E2E_FIXTURES = {"demo", "api_demo"}

# What starts Snakemake: the `snakemake` helper below, or the venv's `SNAKEMAKE` or `python -m snakemake` run directly.
STARTS_SNAKEMAKE = re.compile(r'snakemake\(|\bSNAKEMAKE\b|"-m",\s*"snakemake"')


def _starts_snakemake(item: pytest.Item) -> bool:
    """Whether a test, or a fixture it uses, starts Snakemake (STARTS_SNAKEMAKE). The background demo that any
    session may start (`_demo_in_background`, autouse) is not the test's: it counts through `demo` (E2E_FIXTURES)."""
    functions = [getattr(item, "function", None)]
    for name, definitions in item._fixtureinfo.name2fixturedefs.items():
        if name != "_demo_in_background":
            functions += [definition.func for definition in definitions]
    for function in functions:
        try:
            source = inspect.getsource(function) if function is not None else ""
        except (OSError, TypeError):
            continue
        if STARTS_SNAKEMAKE.search(source) and "def snakemake(" not in source:
            return True
    return False


def _uses(item: pytest.Item, name: str) -> bool:
    """Whether a test uses, directly or through other fixtures, the fixture `name` as this file defines it (a test
    module's own fixture of that name overrides it: tests/unit/test_targets.py's `demo` is the demo config's
    targets, no workflow run)."""
    definitions = item._fixtureinfo.name2fixturedefs.get(name, ()) if name in getattr(item, "fixturenames", ()) else ()
    return bool(definitions) and definitions[-1].func.__module__ == __name__


def _tier_problem(item: pytest.Item) -> str | None:
    """Why a test is not in the folder of its tier (None when it is): its folder must be at least as heavy as its
    behaviour, which these tell: starting Snakemake, using a whole workflow run, a tier mark of its own."""
    needs = []
    if _starts_snakemake(item):
        needs.append(("workflow", "starts Snakemake"))
    needs += [("e2e", f"uses the whole workflow run `{name}`") for name in sorted(E2E_FIXTURES) if _uses(item, name)]
    needs += [(mark.name, f"is marked `{mark.name}`") for mark in item.iter_markers() if mark.name in TIERS]
    tier, why = max(needs, key=lambda need: TIERS.index(need[0]), default=("unit", "is a unit test"))
    parts = item.path.relative_to(TESTS).parts if item.path.is_relative_to(TESTS) else ()
    folder = parts[0] if len(parts) > 1 and parts[0] in TIERS else None
    if folder is None:
        return f"{item.nodeid} is in no tier folder: it {why}, so it belongs in tests/{tier}/"
    if TIERS.index(tier) > TIERS.index(folder):
        return f"{item.nodeid} {why}: it belongs in tests/{tier}/, not tests/{folder}/"
    return None


# Set at collection: whether any selected test needs the demo (it then starts in the background at once).
DEMO_NEEDED = pytest.StashKey[bool]()


def _module(item: pytest.Item) -> str:
    return item.nodeid.split("::")[0]


def _folder(item: pytest.Item) -> str:
    return item.path.relative_to(TESTS).parts[0]


@pytest.hookimpl(wrapper=True)
def pytest_collection_modifyitems(config, items):
    """Tiers, then order.

    Before the other implementations of this hook (`-m` selects by the marks given here): each test is marked by
    its folder (tests/workflow/ `workflow`, tests/e2e/ `e2e`, tests/slurm/ `slurm`; tests/unit/ nothing). A test
    whose behaviour belongs to a heavier tier than its folder's (`_tier_problem`) stops the collection, naming the
    folder it belongs in.

    After them, on the selected tests: first the modules none of whose tests need the shared demo, which run while
    the demo runs in the background (`_demo_in_background`); then the modules that use it; SLURM tests last. They
    install SLURM, and from then on every `snakemake` start asks its controller for its config (the SLURM executor
    plugin, imported by every run, calls `scontrol show config` whenever `sinfo` is installed), which waits out a
    10 s timeout once the controller is stopped: the daemons stay up until the session ends, and running these
    last keeps even a running controller out of the other tests (and out of the paper-DAG build time they
    measure). Whole modules move, so no module fixture is built twice.

    Under pytest-xdist (`pytest -n auto --dist loadfile`) each worker orders its modules so, a module's tests run
    on one worker, and the workers share one demo run (`SharedDemo`). On 2 cores the whole suite took no less
    time that way (docs/numbers.md); the unit and workflow tiers alone gain (`make test-fast`)."""
    problems = [problem for item in items if (problem := _tier_problem(item))]
    if problems:
        raise pytest.UsageError("tests outside the folder of their tier:\n" + "\n".join(problems))
    for item in items:
        if _folder(item) != "unit":
            item.add_marker(getattr(pytest.mark, _folder(item)))
    yield
    demo_modules = {_module(item) for item in items if _uses(item, "demo")}
    config.stash[DEMO_NEEDED] = bool(demo_modules)
    items.sort(key=lambda item: (_folder(item) == "slurm", _module(item) in demo_modules))


@pytest.fixture(autouse=True, scope="session")
def _hf_home(request, tmp_path_factory):
    os.environ["HF_HOME"] = str(tmp_path_factory.mktemp("hf_home"))
    # The demo's tiny models are built once per test session (its xdist workers share them: a build lands whole
    # or not at all, sgtr_em.tiny.build_or_reuse) and reused by every workflow run after.
    os.environ["SGTR_EM_TINY_CACHE"] = str(_session_root(request.config) / "tiny_models")


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


def pdf_font_types(path: Path) -> set[str]:
    """Subtypes of the fonts a PDF embeds (Type3, TrueType, Type0, CIDFontType2, ...), read from its font
    dictionaries (matplotlib writes them uncompressed)."""
    import re

    return {m.decode() for m in re.findall(rb"/Type\s*/Font\b[^>]*?/Subtype\s*/(\w+)", path.read_bytes())} | {
        m.decode() for m in re.findall(rb"/Subtype\s*/(\w+)[^>]*?/Type\s*/Font\b", path.read_bytes())
    }


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


class SharedDemo:
    """The embedded demo, run once per test session in the background, in a private copy of the workflow under
    the session's temporary root, which every pytest-xdist worker shares. The first process to need it starts
    it; the others find it started. Its exit status is written to a file when it ends, so
    any process can wait for it."""

    def __init__(self, root: Path) -> None:
        self.folder = root / "demo"
        self.workdir = self.folder / "workflow"
        self.log = self.folder / "snakemake.log"
        self.status = self.folder / "exit-status"
        self.pid_file = self.folder / "pid"
        self.process: subprocess.Popen | None = None  # in the process that started it

    def start(self) -> None:
        try:
            self.folder.mkdir()  # atomic: one process makes it, and starts the run
        except FileExistsError:
            return
        copy_workflow(self.workdir)
        run = '"$0" --cores 2 --configfile config/demo.yaml > "$1" 2>&1; echo $? > "$2.part" && mv "$2.part" "$2"'
        self.process = subprocess.Popen(
            ["sh", "-c", run, SNAKEMAKE, self.log, self.status],
            cwd=self.workdir,
            env=workflow_env(),
            start_new_session=True,  # its own process group: stopped with its jobs (`stop`)
        )
        self.pid_file.write_text(str(self.process.pid))

    def wait(self, timeout: float) -> int | None:
        """Its exit status, once it has ended (None: still running after `timeout` seconds)."""
        deadline = time.monotonic() + timeout
        while not self.status.exists():
            if time.monotonic() > deadline:
                return None
            time.sleep(1)
        return int(self.status.read_text())

    def stop(self) -> None:
        """Stops it with its jobs, if it is still running."""
        if self.pid_file.exists() and not self.status.exists():
            try:
                os.killpg(int(self.pid_file.read_text()), signal.SIGTERM)
            except ProcessLookupError:
                return
            if self.process is not None:
                self.process.wait(timeout=120)


def _session_root(config: pytest.Config) -> Path:
    """The temporary folder of the whole test session: xdist workers' own (popen-gw<N>) are inside it."""
    basetemp = config._tmp_path_factory.getbasetemp()  # type: ignore[attr-defined]
    return basetemp.parent if os.environ.get("PYTEST_XDIST_WORKER") else basetemp


@pytest.fixture(autouse=True, scope="session")
def _demo_in_background(request, _hf_home):
    """The demo (`SharedDemo`), started as the session starts when a selected test needs it. The tests that do
    not need it run first, meanwhile: many of them wait on subprocesses, sockets and timers more than they
    compute, and the demo fills the idle cores. A single process stops it when its session ends; an xdist
    worker leaves it to the others, and the controller stops it when all are done (`pytest_sessionfinish`)."""
    shared = SharedDemo(_session_root(request.config))
    if request.config.stash.get(DEMO_NEEDED, False):
        shared.start()
    try:
        yield shared
    finally:
        if not os.environ.get("PYTEST_XDIST_WORKER"):
            shared.stop()


def pytest_sessionfinish(session: pytest.Session) -> None:
    """The xdist controller, once every worker is done: the demo stops if it is still running (an interrupted
    or failed session)."""
    if session.config.getoption("numprocesses", None) and not os.environ.get("PYTEST_XDIST_WORKER"):
        SharedDemo(_session_root(session.config)).stop()


@pytest.fixture(scope="session")
def demo(_demo_in_background: SharedDemo) -> Path:
    """The embedded demo's finished run (see `_demo_in_background`)."""
    shared = _demo_in_background
    waited = time.monotonic()
    # About 8 minutes on an idle 2-core machine, longer beside the other tests; the bound leaves room.
    returncode = shared.wait(timeout=3600)
    if returncode is None:
        shared.stop()
        pytest.fail(f"the demo did not finish within an hour: {shared.log.read_text()[-3000:]}")
    assert returncode == 0, shared.log.read_text()[-6000:]
    print(f"demo workflow: waited {time.monotonic() - waited:.0f} s for it")
    return shared.workdir


# The API key the fake OpenAI server (tests/fake_openai.py) expects: a sentinel that must never be written anywhere.
SENTINEL = "sk-sentinel-Zq7Wm3Xv9Lp2Rt5Y"


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """The fake OpenAI server for the Snakemake runs (their rule subprocesses reach it via OPENAI_BASE_URL)."""
    from fake_openai import FakeOpenAI

    server = FakeOpenAI(job_polls=3, expected_key=SENTINEL)
    saved = {k: os.environ.get(k) for k in ("OPENAI_BASE_URL", "OPENAI_API_KEY")}
    os.environ.update(OPENAI_BASE_URL=server.start(), OPENAI_API_KEY=SENTINEL)
    yield server
    server.stop()
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


@pytest.fixture(scope="module")
def api_demo(served, tmp_path_factory):
    """The API demo (config/demo-api.yaml) run through Snakemake against `served`, once per module that uses it."""
    workdir = copy_workflow(tmp_path_factory.mktemp("api") / "workflow")
    started = time.monotonic()
    result = snakemake(workdir, "--cores", "2", "--configfile", "config/demo-api.yaml", timeout=600)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-4000:]
    print(f"API demo: {time.monotonic() - started:.0f} s")
    served.after_demo = served.summary()  # what the demo alone asked (later tests add to the counts)
    return workdir


# A LoRA recipe small enough for the tiny model on a CPU, shared by the training tests.
TINY_LORA_HP = dict(
    lora_r=4,
    lora_alpha=8,
    lora_dropout=0.0,
    use_rslora=True,
    target_modules=["q_proj", "v_proj"],
    epochs=1,
    learning_rate=1e-3,
    lr_scheduler="linear",
    warmup_steps=0,
    weight_decay=0.0,
    per_device_batch_size=2,
    gradient_accumulation_steps=1,
    max_length=512,
    gradient_checkpointing=False,
)


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


def acceptance(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    """`python -m sgtr_em.acceptance` (the GPU acceptance run) in `cwd`, with the package of this checkout."""
    return subprocess.run(
        [sys.executable, "-m", "sgtr_em.acceptance", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=900,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )


# The authors' released result file names (names only), and the stage words of released names with no chain here
# (sgtr_em.release.names.UNMAPPABLE_STAGE_WORDS): Self++ by reinforcement learning, and EM on chats with an unnamed
# system prompt.
AUTHORS_RESULT_NAMES = REPO / "tests/fixtures/authors_result_names.txt"
UNMAPPABLE = ("_rl_", "_withsys")


def authors_conditions() -> dict[str, set[str]]:
    """Per target model, the chains the authors' released result file names spell."""
    from collections import defaultdict

    from sgtr_em.release.names import UnmappedName, parse_self_recognition_name, parse_state, truthfulqa_spelling

    aliases = load_config(read_config("config.yaml"))["release"]["models"]
    out: dict[str, set[str]] = defaultdict(set)
    for line in AUTHORS_RESULT_NAMES.read_text().splitlines():
        if not line or line.startswith("#"):
            continue
        try:
            if line.startswith("results_"):
                state = parse_state(truthfulqa_spelling(line), aliases)
            else:
                state = parse_self_recognition_name(line, aliases).judge
        except UnmappedName as err:
            assert any(word in line for word in UNMAPPABLE), err
            continue
        out[state.model].add(state.chain)
    return out


@pytest.fixture
def shared_hf_home(tmp_path, monkeypatch, tiny_model_dir) -> tuple[Path, Path]:
    """(HF_HOME shared by the checkouts of this test, the snapshot of hub_caches.REPO_ID@COMMIT in it)."""
    from hub_caches import COMMIT, REPO_ID, hub_model

    hf_home = tmp_path / "hf_home"
    snapshot = hub_model(hf_home, REPO_ID, COMMIT, tiny_model_dir)
    monkeypatch.setenv("HF_HOME", str(hf_home))  # the workflow runs'
    monkeypatch.setattr(
        "huggingface_hub.constants.HF_HUB_CACHE", str(hf_home / "hub")
    )  # this process's (read at import)
    return hf_home, snapshot


@pytest.fixture
def http_server(tmp_path):
    """A local HTTP server standing in for the web: (the folder it serves, its base url)."""
    import http.server
    import threading

    root = tmp_path / "www"
    root.mkdir()
    handler = lambda *a, **kw: http.server.SimpleHTTPRequestHandler(*a, directory=str(root), **kw)  # noqa: E731
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield root, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def state_loads(config: dict, jobs: list[PlannedJob]) -> Counter[tuple[str, str, int]]:
    """How many jobs load each evaluated state of the grid's local models (API models load nothing)."""
    from sgtr_em.dag import loaded_state
    from sgtr_em.targets import Targets

    t = Targets(config)
    return Counter(state for job in jobs if (state := loaded_state(t, job)) is not None)
