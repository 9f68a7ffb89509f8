"""The command lines: `--help` of every `python -m sgtr_em.<module>` (and of every tool) prints its usage, exits 0
and writes nothing; a module without a command line run the same way does nothing at all.

Each command runs in a copy of the package, the config and the tools, with that copy as its working directory
and no bytecode written, so that any file it writes (a rewritten config/README.md, a results folder) shows up
in the copy's snapshot, and the checkout is never at risk."""

from __future__ import annotations

import ast
import hashlib
import importlib.util
import os
import pkgutil
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
COPIED = ("sgtr_em", "config", "tools")
# Subcommands with options of their own: their `--help` is another parser's.
SUBCOMMANDS = {"sgtr_em.memory": ("audit",), "sgtr_em.states": ("export", "push")}


def _runs_as_main(path: Path) -> bool:
    """Whether a source file has an `if __name__ == "__main__":` block (a command line)."""
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.If) and isinstance(node.test, ast.Compare):
            names = [node.test.left, *node.test.comparators]
            if any(isinstance(n, ast.Name) and n.id == "__name__" for n in names) and any(
                isinstance(n, ast.Constant) and n.value == "__main__" for n in names
            ):
                return True
    return False


def _defines_main(path: Path) -> bool:
    return any(isinstance(n, ast.FunctionDef) and n.name == "main" for n in ast.parse(path.read_text()).body)


def _modules() -> dict[str, Path]:
    """Every runnable module of the package and its source (a package has no `__main__`: it cannot be run)."""
    import sgtr_em

    names = [info.name for info in pkgutil.walk_packages(sgtr_em.__path__, "sgtr_em.") if not info.ispkg]
    return {name: Path(str(importlib.util.find_spec(name).origin)) for name in names}


MODULES = _modules()
RUNNABLE = sorted(name for name, path in MODULES.items() if _runs_as_main(path))
PLAIN_MODULES = sorted(set(MODULES) - set(RUNNABLE))
# A package runs as its `__main__` module: `python -m sgtr_em.memory`.
COMMAND_MODULES = [name.removesuffix(".__main__") for name in RUNNABLE]
TOOLS = sorted(p.name for p in (REPO / "tools").glob("*.py") if _runs_as_main(p))
# What follows `python`: `-m <module> [subcommand]` or `tools/<tool>.py`.
COMMANDS = [
    *(["-m", name] for name in COMMAND_MODULES),
    *(["-m", name, sub] for name, subs in SUBCOMMANDS.items() for sub in subs),
    *([f"tools/{tool}"] for tool in TOOLS),
]


def snapshot(root: Path) -> dict[str, tuple[int, int, str]]:
    """Every file under `root`: modification time, size and content hash."""
    return {
        str(p.relative_to(root)): (p.stat().st_mtime_ns, p.stat().st_size, hashlib.sha256(p.read_bytes()).hexdigest())
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


@pytest.fixture(scope="module")
def copy(tmp_path_factory) -> tuple[Path, dict[str, str]]:
    root = tmp_path_factory.mktemp("cli")
    for name in COPIED:
        shutil.copytree(REPO / name, root / name, ignore=shutil.ignore_patterns("__pycache__"))
    env = {**os.environ, "PYTHONPATH": str(root), "PYTHONDONTWRITEBYTECODE": "1"}
    where = subprocess.run(
        [sys.executable, "-c", "import sgtr_em; print(sgtr_em.__file__)"],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert Path(where.stdout.strip()).is_relative_to(root), "the copy's package must be the one that runs"
    return root, env


def test_every_module_with_a_main_function_runs_it():
    """A module-level `main` is a command line: without the `__main__` block `python -m` would skip it."""
    assert [name for name in PLAIN_MODULES if _defines_main(MODULES[name])] == []
    # what this file checks, so that a discovery that finds nothing cannot pass unnoticed
    assert {"sgtr_em.gpus", "sgtr_em.schema_doc", "sgtr_em.memory", "sgtr_em.states"} <= set(COMMAND_MODULES)
    assert {"gpu_hours.py", "render_rulegraph.py"} <= set(TOOLS)


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_help_prints_usage_and_writes_nothing(copy, command):
    root, env = copy
    before = snapshot(root)
    result = subprocess.run(
        [sys.executable, *command, "--help"], cwd=root, env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("usage: "), result.stdout
    assert result.stderr == ""
    assert snapshot(root) == before


def test_modules_without_a_command_line_do_nothing_when_run(copy):
    """`python -m sgtr_em.<module> --help` for every other module: each runs as `__main__` (as `-m` runs it),
    one process for all of them, and prints, raises and writes nothing."""
    root, env = copy
    before = snapshot(root)
    runner = (
        "import runpy, sys, warnings\n"
        # runpy warns when a module runs that an earlier one imported: expected here, as all share a process
        "warnings.filterwarnings('ignore', category=RuntimeWarning, module='runpy')\n"
        "for name in sys.argv[1:]:\n"
        "    sys.argv = [name, '--help']\n"
        "    runpy.run_module(name, run_name='__main__', alter_sys=True)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", runner, *PLAIN_MODULES], cwd=root, env=env, capture_output=True, text=True, timeout=300
    )
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")
    assert snapshot(root) == before
