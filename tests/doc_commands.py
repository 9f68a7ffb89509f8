"""The commands the documentation shows: every `snakemake` command in a fenced shell block of README.md or
docs/*.md, once per distinct command. Shared by tests/unit/test_readme.py (well formed) and
tests/e2e/test_doc_commands_run.py (each runs)."""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path

from conftest import REPO

DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
FENCE = re.compile(r"^(?P<fence>```+|~~~+)(?P<lang>[^\n`]*)\n(?P<body>.*?)^(?P=fence)[ \t]*$", re.M | re.S)
SHELL_LANGS = {"bash", "sh", "shell", "console"}


def relative(path: Path) -> str:
    return str(path.relative_to(REPO))


def fenced_blocks(text: str) -> list[tuple[str, int, str]]:
    """(language, line number of the first body line, body) of every fenced code block."""
    return [
        (m["lang"].strip().lower(), text.count("\n", 0, m.start("body")) + 1, m["body"]) for m in FENCE.finditer(text)
    ]


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


COMMANDS = snakemake_commands()
