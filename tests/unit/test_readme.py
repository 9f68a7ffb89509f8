"""The documentation works as written: every `snakemake` command in a fenced bash block of README.md or
docs/*.md is well formed (each runs, as a dry run in a private copy of the workflow, in
tests/e2e/test_doc_commands_run.py), every `make` target it names exists, and every relative link points at an
existing file (and heading)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from conftest import REPO
from doc_commands import COMMANDS, DOCS, FENCE, DocCommand, fenced_blocks, option_values, relative


def prose(text: str) -> str:
    """The text with fenced blocks blanked (their `#` lines are not headings, their brackets not links)."""
    return FENCE.sub(lambda m: "\n" * m.group(0).count("\n"), text)


def test_the_docs_show_snakemake_commands():
    """The extraction found the commands (a broken fence pattern would silently test nothing)."""
    readme = [c for c in COMMANDS if any(w.startswith("README.md:") for w in c.where)]
    assert len(readme) >= 5, [c.where for c in COMMANDS]
    assert len(COMMANDS) >= 20, [c.where for c in COMMANDS]


@pytest.mark.parametrize("command", COMMANDS, ids=[c.where[0] for c in COMMANDS])
def test_command_is_well_formed(command: DocCommand):
    """No placeholder is left in a runnable command, every config file exists, and nothing but config files
    follows `--configfile` (it takes every following word as a file, so a target there is lost)."""
    text = " ".join(command.argv)
    assert "<" not in text and ">" not in text, f"{command.where}: placeholder in `snakemake {text}`"
    for files in option_values(command.argv, "--configfile"):
        assert files, f"{command.where}: --configfile without a file"
        for name in files:
            assert name.endswith((".yaml", ".yml")), (
                f"{command.where}: `{name}` after --configfile is read as a config file; put targets before --configfile"
            )
            assert (REPO / name).is_file(), f"{command.where}: config file {name} does not exist"
    for profiles in option_values(command.argv, "--profile"):
        assert len(profiles) == 1 and (REPO / profiles[0] / "config.yaml").is_file(), (
            f"{command.where}: profile {profiles} not found"
        )


def makefile_targets() -> set[str]:
    text = (REPO / "Makefile").read_text()
    return {m.group(1) for m in re.finditer(r"^([A-Za-z0-9][A-Za-z0-9_.-]*)\s*:(?!=)", text, re.M)}


def named_make_targets(text: str) -> set[str]:
    """`make <target>` in inline code and in shell blocks."""
    code = [body for _, _, body in fenced_blocks(text)] + re.findall(r"`([^`\n]+)`", prose(text))
    return {m.group(1) for snippet in code for m in re.finditer(r"(?:^|[\s;&(])make\s+([a-z][\w-]*)", snippet, re.M)}


@pytest.mark.parametrize("doc", DOCS, ids=relative)
def test_make_targets_exist(doc: Path):
    missing = named_make_targets(doc.read_text()) - makefile_targets()
    assert not missing, f"{relative(doc)} names make targets the Makefile lacks: {sorted(missing)}"


def test_readme_names_the_make_targets_it_promises():
    assert {"demo", "test", "test-fast", "lint"} <= named_make_targets((REPO / "README.md").read_text())


def github_anchors(text: str) -> set[str]:
    """Heading anchors as GitHub renders them: lower case, punctuation dropped, spaces to hyphens,
    repeats numbered."""
    anchors: set[str] = set()
    for match in re.finditer(r"^#{1,6}\s+(.+?)\s*#*\s*$", prose(text), re.M):
        heading = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", match.group(1))  # a link's text only
        slug = re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")
        candidate, n = slug, 0
        while candidate in anchors:
            n += 1
            candidate = f"{slug}-{n}"
        anchors.add(candidate)
    return anchors


LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")


@pytest.mark.parametrize("doc", DOCS, ids=relative)
def test_relative_links_resolve(doc: Path):
    text = doc.read_text()
    broken = []
    for target in LINK.findall(prose(text)):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target, re.I):  # http:, https:, mailto:
            continue
        path_part, _, anchor = target.partition("#")
        path = (doc.parent / path_part).resolve() if path_part else doc
        if not path.exists():
            broken.append(f"{target} (no such file)")
        elif anchor and path.suffix == ".md" and anchor not in github_anchors(path.read_text()):
            broken.append(f"{target} (no heading #{anchor} in {relative(path)})")
    assert not broken, f"{relative(doc)}: broken links: {broken}"


# Spelled in two pieces so that this file does not match itself.
SIBLING_CHECKOUT = ("../" + "shared", "/work/" + "shared")


def test_nothing_points_outside_the_repository():
    """The repository stands alone: no document or Python file refers to a sibling `shared` checkout."""
    offenders = [
        f"{relative(path)}:{number}"
        for pattern in ("*.md", "*.py")
        for path in REPO.rglob(pattern)
        if not {".git", ".venv", ".snakemake", "results"} & set(path.relative_to(REPO).parts)
        for number, line in enumerate(path.read_text(errors="replace").splitlines(), start=1)
        if any(sibling in line for sibling in SIBLING_CHECKOUT)
    ]
    assert not offenders, offenders
