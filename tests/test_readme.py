"""The documentation works as written: every `snakemake` command in a fenced bash block of README.md or
docs/*.md is run (as a dry run, in a private copy of the workflow), every `make` target it names exists, and
every relative link points at an existing file (and heading)."""

from __future__ import annotations

import re
import shlex
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from conftest import REPO, copy_workflow, snakemake

DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
FENCE = re.compile(r"^(?P<fence>```+|~~~+)(?P<lang>[^\n`]*)\n(?P<body>.*?)^(?P=fence)[ \t]*$", re.M | re.S)
SHELL_LANGS = {"bash", "sh", "shell", "console"}
DRY_RUN_FLAGS = {"-n", "--dry-run", "--dryrun"}
# Snakemake's own message when --report reaches an output that only a real run makes.
REPORT_NEEDS_RESULTS = "marked for report but does not exist"


def relative(path: Path) -> str:
    return str(path.relative_to(REPO))


def fenced_blocks(text: str) -> list[tuple[str, int, str]]:
    """(language, line number of the first body line, body) of every fenced code block."""
    return [
        (m["lang"].strip().lower(), text.count("\n", 0, m.start("body")) + 1, m["body"]) for m in FENCE.finditer(text)
    ]


def prose(text: str) -> str:
    """The text with fenced blocks blanked (their `#` lines are not headings, their brackets not links)."""
    return FENCE.sub(lambda m: "\n" * m.group(0).count("\n"), text)


def shell_commands(body: str, first_line: int) -> list[tuple[int, list[str]]]:
    """(line, argv) of every simple command in a shell block: continuation lines joined, comments dropped,
    split at `&&`, `||`, `;`, `|` and `&`."""
    out = []
    logical, start = "", first_line
    for offset, line in enumerate(body.splitlines()):
        if not logical:
            start = first_line + offset
        if line.rstrip().endswith("\\"):
            logical += line.rstrip()[:-1] + " "
            continue
        logical += line
        lexer = shlex.shlex(logical, posix=True, punctuation_chars=True)  # `;`, `&&`, `|`, `&` as tokens
        lexer.whitespace_split = True
        logical = ""
        command: list[str] = []
        for token in [*lexer, ";"]:
            if token in {"&&", "||", ";", "|", "&"}:
                if command:
                    out.append((start, command))
                command = []
            else:
                command.append(token)
    return out


@dataclass
class DocCommand:
    argv: list[str]  # the words after `snakemake`
    where: list[str] = field(default_factory=list)  # file:line of every place it is shown


def snakemake_commands() -> list[DocCommand]:
    """Every `snakemake ...` command shown in a fenced shell block, once per distinct command."""
    found: dict[tuple, DocCommand] = {}
    for doc in DOCS:
        for lang, first_line, body in fenced_blocks(doc.read_text()):
            if lang not in SHELL_LANGS:
                continue
            for line, argv in shell_commands(body, first_line):
                while argv and re.match(r"^[A-Za-z_][A-Za-z0-9_]*=", argv[0]):  # VAR=value prefixes
                    argv = argv[1:]
                if not argv or Path(argv[0]).name != "snakemake":
                    continue
                key = canonical(argv[1:])
                found.setdefault(key, DocCommand(argv[1:])).where.append(f"{relative(doc)}:{line}")
    return list(found.values())


def canonical(args: list[str]) -> tuple:
    """Option order does not change what Snakemake does: commands that differ only in it run once."""
    groups: list[tuple[str, ...]] = []
    for arg in args:
        if arg.startswith("-") or not groups:
            groups.append((arg,))
        else:
            groups[-1] = (*groups[-1], arg)
    return tuple(sorted(groups))


def option_values(argv: list[str], option: str) -> list[list[str]]:
    """The words after each occurrence of `option`, up to the next option."""
    values = []
    for index, arg in enumerate(argv):
        if arg == option:
            words = []
            for word in argv[index + 1 :]:
                if word.startswith("-"):
                    break
                words.append(word)
            values.append(words)
    return values


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


COMMANDS = snakemake_commands()


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


def runnable_argv(argv: list[str]) -> list[str]:
    """The command as this machine can check it. What cannot be dry-run is checked as far as it goes
    without a real run:

    - `--profile` other than profiles/local is dropped: the cluster profile needs a cluster (its file is
      checked above, and tests/test_slurm.py runs it on a real one);
    - `--unlock` runs as written: it only removes lock files, harmless in the private copy;
    - `--report` runs as written: with no results it must get as far as Snakemake's complaint that a report
      file does not exist yet, by which point the command line, the config and the whole DAG were accepted;
    - `--sdm conda` (and `--conda-create-envs-only`) is dropped where conda is not installed: the rest of the
      command is still dry-run, and `snakemake --lint` (tests/test_workflow.py) checks every rule's env file;
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
