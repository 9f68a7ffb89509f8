"""Installs that fit (issue 19): the conda envs of `--sdm conda` and the GPU machine's wheelhouse command
agree with pyproject.toml, install the workflow's package from its own checkout, and the light env's rules
import no model library."""

from __future__ import annotations

import ast
import re
import tomllib
from pathlib import Path

import pytest
import yaml
from conftest import REPO
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

MODEL_STACK = {"torch", "transformers", "tokenizers", "peft", "trl", "accelerate", "datasets"}
# What runs the workflow, not its jobs: no job environment carries it.
WORKFLOW_RUNNER = {"snakemake", "snakemake-executor-plugin-slurm"}


def pyproject_requirements(extra: str | None = None) -> dict[str, Requirement]:
    """pyproject.toml's runtime requirements, or those of one extra."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    listed = project["optional-dependencies"][extra] if extra else project["dependencies"]
    return {canonicalize_name(r.name): r for r in map(Requirement, listed)}


def env_pins(name: str) -> dict[str, str]:
    env = yaml.safe_load((REPO / "envs" / f"{name}.yaml").read_text())
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d)
    pins = {}
    for line in pip:
        match = re.fullmatch(r"([A-Za-z0-9_.-]+)==([0-9][0-9A-Za-z.+]*)", line)
        assert match, f"envs/{name}.yaml: {line!r} is not an exact pin"
        pins[canonicalize_name(match.group(1))] = match.group(2)
    return pins


@pytest.mark.parametrize("name", ["torch", "core"])
def test_env_pins_are_exact_and_agree_with_pyproject(name):
    required = pyproject_requirements()
    for package, version in env_pins(name).items():
        assert package in required, f"envs/{name}.yaml pins {package}, which pyproject.toml does not require"
        assert required[package].specifier.contains(version, prereleases=True), (
            f"envs/{name}.yaml: {package}=={version} is outside pyproject.toml's {required[package]}"
        )


def test_the_model_env_holds_the_whole_stack_and_the_light_one_no_model_library():
    assert set(env_pins("torch")) == set(pyproject_requirements()) - WORKFLOW_RUNNER
    assert not (set(env_pins("torch")) | set(env_pins("core"))) & WORKFLOW_RUNNER
    assert not set(env_pins("core")) & MODEL_STACK
    core, full = env_pins("core"), env_pins("torch")
    assert all(full[p] == v for p, v in core.items()), "core.yaml and torch.yaml pin different versions"


@pytest.mark.parametrize("name", ["torch", "core"])
def test_each_env_installs_the_package_from_the_workflow_checkout(name):
    """Not `-e ../`: Snakemake copies an env file into .snakemake/conda/, where `..` is no checkout. The
    post-deploy script installs from SGTR_EM_WORKFLOW_DIR, which the Snakefile sets to its own directory."""
    assert "-e " not in (REPO / "envs" / f"{name}.yaml").read_text().split("dependencies:")[1]
    script = (REPO / "envs" / f"{name}.post-deploy.sh").read_text()
    assert re.search(r'pip install --no-deps --editable "\$root"', script)
    assert 'root="${SGTR_EM_WORKFLOW_DIR:?' in script
    assert 'os.environ.setdefault("SGTR_EM_WORKFLOW_DIR", workflow.basedir)' in (REPO / "Snakefile").read_text()


def rules_using(env: str) -> dict[str, str]:
    """rule name -> its script, for the rules whose conda env is envs/<env>.yaml."""
    found = {}
    for path in (REPO / "rules").glob("*.smk"):
        for block in re.split(r"\n(?=(?:local)?rule \w+:)", path.read_text()):
            rule = re.match(r"(?:local)?rule (\w+):", block.strip())
            script = re.search(r'script:\s*\n\s*"\.\./(scripts/[\w.]+)"', block)
            if rule and script and f'"../envs/{env}.yaml"' in block:
                found[rule.group(1)] = script.group(1)
    return found


def top_level_imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names = set()
    for node in tree.body:
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            # `from a import b` imports a, and b too when b is a module
            base = "." * node.level + (node.module or "")
            if node.module:
                names.add(base)
            names |= {base + ("" if base.endswith(".") else ".") + alias.name for alias in node.names}
    return names


def module_file(name: str, importer: Path) -> Path | None:
    """The repository file of an sgtr_em module (absolute or relative import), else None."""
    if name.startswith("."):
        level = len(name) - len(name.lstrip("."))
        base = importer.parent
        for _ in range(level - 1):
            base = base.parent
        parts = [p for p in name.lstrip(".").split(".") if p]
    elif name.split(".")[0] == "sgtr_em":
        base, parts = REPO, name.split(".")
    else:
        return None
    target = base.joinpath(*parts)
    for candidate in (target.with_suffix(".py"), target / "__init__.py"):
        if candidate.exists():
            return candidate
    return None


def test_the_light_env_rules_import_no_model_library():
    """Importing any core.yaml rule's script, and the sgtr_em modules it imports at top level, needs no
    model library (their heavy imports sit inside the functions that need them)."""
    rules = rules_using("core")
    assert {"tidy_table", "figure", "results_summary", "manifest"} <= set(rules)
    for rule, script in rules.items():
        seen: set[Path] = set()
        todo = [REPO / script]
        while todo:
            path = todo.pop()
            if path in seen:
                continue
            seen.add(path)
            for name in top_level_imports(path):
                assert name.split(".")[0] not in MODEL_STACK, f"{rule}: {path.relative_to(REPO)} imports {name}"
                if (found := module_file(name, path)) is not None:
                    todo.append(found)


def test_the_gpu_wheelhouse_command_pins_what_pyproject_pins():
    """docs/gpu.md's `pip download` for a GPU machine without network names pyproject.toml's versions."""
    doc = (REPO / "docs/gpu.md").read_text()
    command = re.search(r"pip download [^`]*?-d wheelhouse(?P<pins>(?: \\\n)?(?:[^\n`]|\\\n)*)", doc)
    assert command, "docs/gpu.md has no `pip download ... -d wheelhouse` command"
    pins = dict(re.findall(r"'([A-Za-z0-9_.-]+)==([0-9.*]+)'", command.group("pins")))
    required = pyproject_requirements()
    assert {"transformers", "tokenizers", "peft", "trl", "accelerate", "datasets"} <= set(pins)
    for package, version in pins.items():
        assert str(required[canonicalize_name(package)].specifier) == f"=={version}", package


def test_extras_and_the_crypto_floor():
    """The SLURM plugin and tiktoken are extras, not runtime requirements; no requirement or env pin allows a
    cryptography below 42 (41.x is CVE-flagged), and no test tool caps it; the Snakefile's minimum
    Snakemake is pyproject.toml's."""
    runtime = pyproject_requirements()
    assert "snakemake-executor-plugin-slurm" in pyproject_requirements("slurm")
    assert "tiktoken" in pyproject_requirements("api")
    assert not {"snakemake-executor-plugin-slurm", "tiktoken"} & set(runtime)
    assert not runtime["cryptography"].specifier.contains("41.0.7")
    assert "easy-dataset-share" not in pyproject_requirements("test")
    for name in ("torch", "core"):
        assert int(env_pins(name)["cryptography"].split(".")[0]) >= 42, name
    minimum = re.search(r'min_version\("([0-9.]+)"\)', (REPO / "Snakefile").read_text())
    assert minimum, "the Snakefile has no min_version"
    assert f">={minimum.group(1)}" in str(runtime["snakemake"].specifier).split(",")
    assert not runtime["snakemake"].specifier.contains("10.0")
