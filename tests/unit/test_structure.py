"""The package's layering: backends only load models and answer queries, so nothing under
sgtr_em/backends/ imports training, release or evaluation code (read from the source, not by importing)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "sgtr_em"
# Training, fine-tuning, release and evaluation modules of sgtr_em (a module or a package of that name).
NOT_FOR_BACKENDS = (
    "train",
    "checkpoints",
    "finetune",
    "openai_ft",
    "release",
    "evals",
    "em_judge",
    "mmlu",
    "identity",
    "pairs",
    "aggregate",
    "report",
    "plot",
    "cost",
)


def imported_modules(source: str, module: str, is_package: bool = False) -> set[str]:
    """Absolute names of every module `source` (the module `module`) imports, at any depth of the file;
    `from X import name` counts X and X.name, since the name may be a submodule."""
    package = module.split(".") if is_package else module.split(".")[:-1]
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = ".".join(package[: len(package) - node.level + 1]) if node.level else ""
            origin = ".".join(part for part in (base, node.module or "") if part)
            found.add(origin)
            found.update(f"{origin}.{alias.name}" for alias in node.names)
    return found


def forbidden(imports: set[str]) -> list[str]:
    return sorted(
        name
        for name in imports
        for banned in NOT_FOR_BACKENDS
        if name == f"sgtr_em.{banned}" or name.startswith(f"sgtr_em.{banned}.")
    )


def backend_modules() -> list[Path]:
    return sorted((PACKAGE / "backends").rglob("*.py"))


def module_name(path: Path) -> tuple[str, bool]:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return (".".join(parts[:-1]), True) if parts[-1] == "__init__" else (".".join(parts), False)


@pytest.mark.parametrize("path", backend_modules(), ids=lambda p: p.name)
def test_backends_import_no_training_release_or_evaluation_code(path):
    module, is_package = module_name(path)
    assert not forbidden(imported_modules(path.read_text(encoding="utf-8"), module, is_package)), module


@pytest.mark.parametrize(
    "source",
    [
        "from ..openai_ft import parent_model_id",
        "from .. import train",
        "import sgtr_em.release",
        "from sgtr_em.release.tables import tidy",
        "def load():\n    from ..em_judge import sample_answers",
    ],
)
def test_the_import_check_sees_each_form_of_import(source):
    assert forbidden(imported_modules(source, "sgtr_em.backends.hf"))


def test_the_import_check_resolves_relative_imports_from_the_package():
    assert imported_modules("from . import Conversation", "sgtr_em.backends", is_package=True) >= {
        "sgtr_em.backends",
        "sgtr_em.backends.Conversation",
    }
    assert not forbidden(imported_modules("from ..io import read_json\nfrom . import hf", "sgtr_em.backends.x"))


# ------------------------------------------------------------------------------------ the layers --
# Every module of the package on one floor; a module imports only from its own floor or below (imports inside
# functions included), so the package has no circle and no arrow back up. docs/extending.md draws the map.
LAYERS: dict[str, tuple[str, ...]] = {
    "ground": (
        "io",
        "chains",
        "evaluations",
        "batching",
        "memory",
        "published",
        "gpus",
        "paths",
        "api_cache",
        "checkpoints",
        "hub",
        "runtime",
        "data",
        "prompts",
        "sources",
        "lock",
        "grid",
        "release.names",
        "release.series",
        "release.authors",
        "release.bundle",
    ),
    "backends": ("backends",),
    "science": (
        "evaluated_state",
        "sampling",
        "bootstrap",
        "evals",
        "em_judge",
        "identity",
        "mmlu",
        "pairs",
        "baselines",
        "paper_prompts",
        "tiny",
        "train",
        "openai_ft",
        "finetune",
        "state_evals",
    ),
    "config": ("config",),
    "results": (
        "aggregate",
        "claims",
        "report",
        "plot",
        "forest",
        "headline",
        "rescore",
        "curves",
        "release.figures",
        "release.importer",
        "release.compare",
        "release.targets",
    ),
    "workflow": (
        "targets",
        "dag",
        "cost",
        "manifest",
        "artifact",
        "states",
        "jobs",
        "schema_doc",
        "memory.audit",
        "memory.__main__",
    ),
    "tools": ("bench", "acceptance"),
}
FLOORS = list(LAYERS)


def evaluation_modules() -> set[str]:
    """The modules the evaluation registry names functions of: each an evaluation's code, on the science
    floor without being listed (adding an evaluation touches no test, docs/extending.md)."""
    from sgtr_em.evaluations import EVALUATIONS

    named = (f for e in EVALUATIONS.values() for f in (e.run, e.items, e.prepare) if f)
    return {f.split(":")[0].removeprefix("sgtr_em.") for f in named}


def floor_of(module: str) -> int | None:
    """The floor of `sgtr_em.<module>` (a submodule of a listed package shares its floor unless listed; an
    evaluation's own module is on the science floor)."""
    name = module.removeprefix("sgtr_em.")
    if name in evaluation_modules() and not any(name in names for names in LAYERS.values()):
        return FLOORS.index("science")
    best = None
    for floor, names in enumerate(LAYERS.values()):
        for listed in names:
            if (name == listed or name.startswith(f"{listed}.")) and (best is None or len(listed) > best[1]):
                best = (floor, len(listed))
    return best[0] if best else None


def package_imports() -> dict[str, set[str]]:
    """Every module of the package and the modules of the package it imports."""
    modules = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        module, is_package = module_name(path)
        modules[module] = (path, is_package)
    edges = {}
    for module, (path, is_package) in modules.items():
        imported = imported_modules(path.read_text(encoding="utf-8"), module, is_package)
        edges[module] = {m for m in imported if m in modules and m != module and m != "sgtr_em"}
    return edges


def test_every_module_has_a_floor_and_imports_nothing_above_it():
    edges = package_imports()
    unplaced = sorted(m for m in edges if m not in ("sgtr_em", "sgtr_em.release") and floor_of(m) is None)
    assert not unplaced, f"add these modules to LAYERS: {unplaced}"
    upward = [
        f"{module} ({FLOORS[floor_of(module)]}) imports {target} ({FLOORS[floor_of(target)]})"
        for module, targets in edges.items()
        for target in targets
        if floor_of(module) is not None and floor_of(target) is not None and floor_of(target) > floor_of(module)
    ]
    assert not upward, upward


def test_the_package_has_no_import_circle():
    edges = package_imports()
    seen: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(module: str, path: list[str]) -> None:
        seen[module] = 1
        for target in sorted(edges[module]):
            if seen.get(target) == 1:
                raise AssertionError(" -> ".join([*path[path.index(target) :], target]))
            if target not in seen:
                visit(target, [*path, target])
        seen[module] = 2

    for module in sorted(edges):
        if module not in seen:
            visit(module, [module])


def test_scripts_read_the_config_through_the_package():
    """A rule script reads its job's settings through `sgtr_em.jobs.Job` (or its params), never by indexing
    `snakemake.config`: what a job reads from the config is then listed in one place."""
    offenders = [
        f"{path.name}:{number}"
        for path in sorted((PACKAGE.parent / "scripts").glob("*.py"))
        for number, line in enumerate(path.read_text().splitlines(), start=1)
        if "snakemake.config" in line
    ]
    assert offenders == []
