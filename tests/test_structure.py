"""The package's layering: backends only load models and answer queries, so nothing under
sgtr_em/backends/ imports training, release or evaluation code (read from the source, not by importing)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "sgtr_em"
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
