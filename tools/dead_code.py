"""Dead code (`make lint`): vulture over the package, the rule scripts, the tools and the tests, in two passes.

1. Unused anywhere: a definition nothing uses, or code after a `return`.
2. Used only by the tests: a definition of the package, a script or a tool that only tests use belongs in the
   tests (or, as an instrument the tests measure with, in TESTS_ONLY below with the reason).

A name counts as used when a rule file or the Snakefile names it: the rules call `Targets` methods and read
path templates by name (`T.model_dir`, `targets.ADAPTER`), which vulture cannot see, as `.smk` is not Python.
Names only a framework uses (a trainer's callback hooks, an HTTP handler's methods) are listed in
FRAMEWORK_NAMES with the framework. A name a package string spells as an import path (`"sgtr_em.evals:run_truthfulqa"`,
as the evaluation registry names the functions it imports when a job runs) counts as used too. Exit 1 listing each finding, or a listed name that nothing defines any more.

    python tools/dead_code.py
"""

from __future__ import annotations

import argparse
import io
import re
import tokenize
from collections.abc import Iterable
from pathlib import Path

from vulture import Vulture

REPO = Path(__file__).resolve().parent.parent
CODE = ("sgtr_em", "scripts", "tools")
TESTS = "tests"
# The authors' scripts, copied as release fixtures: read as data, never run.
EXCLUDE = ["tests/fixtures/"]
RULE_FILES = ("Snakefile", "rules/*.smk")

# Names that a library or framework uses, not our code.
FRAMEWORK_NAMES = {
    **dict.fromkeys(
        ("on_log", "on_save", "on_step_begin", "on_step_end", "on_train_begin"),
        "transformers.TrainerCallback hooks: the Trainer calls them",
    ),
    **dict.fromkeys(
        ("do_GET", "do_POST", "log_message", "protocol_version", "close_connection"),
        "http.server.BaseHTTPRequestHandler: the server calls these methods and reads these attributes",
    ),
    "daemon_threads": "socketserver.ThreadingMixIn reads it",
    **dict.fromkeys(("gid", "uid", "mode", "mtime"), "tarfile.TarInfo fields that tarfile writes"),
    **dict.fromkeys(("normalizer", "pre_tokenizer"), "tokenizers.Tokenizer components that the tokenizer runs"),
    "whitespace_split": "shlex.shlex reads it",
    "pytestmark": "pytest reads a module's marks",
    "cluster": "a pytest fixture that the SLURM tests request for its effect (a running cluster)",
    "slurm_daemons": "a pytest fixture that `cluster` requests for its effect (SLURM's daemons up)",
}
# Package code that only tests use, on purpose.
TESTS_ONLY = {
    "saved_activation_bytes": "the instrument that measured sgtr_em.memory's activation coefficients, kept beside "
    "them; tests/unit/test_memory.py re-measures with it",
}
# pytest calls its hooks and fixtures by name.
IGNORE_NAMES = ["pytest_*"]
IGNORE_DECORATORS = ["@pytest.fixture"]


def rule_file_names(repo: Path) -> set[str]:
    """Every Python name in the Snakefile and the rule files (Snakemake's syntax is Python's tokens), comments
    and strings left out."""
    names: set[str] = set()
    for pattern in RULE_FILES:
        for path in sorted(repo.glob(pattern)):
            tokens = tokenize.generate_tokens(io.StringIO(path.read_text()).readline)
            names |= {token.string for token in tokens if token.type == tokenize.NAME}
    return names


# A string naming a package object by its import path (`module:name`): the evaluation registry's `run`, `items`
# and `prepare`.
IMPORT_PATH = re.compile(r"^sgtr_em(?:\.\w+)*:(\w+)$")


def import_path_names(repo: Path) -> set[str]:
    """The name of every package string that is an import path into the package (`sgtr_em.evals:run_truthfulqa`
    names `run_truthfulqa`): the object is imported by that path when a job runs."""
    names: set[str] = set()
    for path in sorted((repo / "sgtr_em").rglob("*.py")):
        for token in tokenize.generate_tokens(io.StringIO(path.read_text()).readline):
            if token.type == tokenize.STRING:
                text = token.string.strip("\"'")
                match = IMPORT_PATH.match(text)
                if match:
                    names.add(match.group(1))
    return names


def _scan(repo: Path, folders: Iterable[str], used: Iterable[str]) -> Vulture:
    vulture = Vulture(ignore_names=IGNORE_NAMES, ignore_decorators=IGNORE_DECORATORS)
    vulture.scavenge([str(repo / folder) for folder in folders], exclude=[str(repo / e) for e in EXCLUDE])
    vulture.used_names.update(set(used) | rule_file_names(repo) | import_path_names(repo))
    return vulture


def _defined(vulture: Vulture) -> set[str]:
    return {
        item.name
        for items in (
            vulture.defined_attrs,
            vulture.defined_classes,
            vulture.defined_funcs,
            vulture.defined_methods,
            vulture.defined_props,
            vulture.defined_vars,
        )
        for item in items
    }


def findings(repo: Path = REPO) -> list[str]:
    """What the check reports, one line each (empty: no dead code)."""
    everything = _scan(repo, [*CODE, TESTS], FRAMEWORK_NAMES)
    unused = everything.get_unused_code()
    out = [f"{item.get_report()}: unused" for item in unused]
    seen = {(item.filename, item.first_lineno, item.name) for item in unused}
    without_tests = _scan(repo, CODE, {**FRAMEWORK_NAMES, **TESTS_ONLY})
    out += [
        f"{item.get_report()}: used only by the tests (move it there)"
        for item in without_tests.get_unused_code()
        if (item.filename, item.first_lineno, item.name) not in seen
    ]
    defined = _defined(everything)
    out += [
        f"{Path(__file__).relative_to(REPO)}: {name!r} is listed but defined nowhere (drop it from the list)"
        for name in [*FRAMEWORK_NAMES, *TESTS_ONLY]
        if name not in defined
    ]
    return [line.removeprefix(f"{repo}/") for line in out]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repo", type=Path, default=REPO, help="the checkout to check (default: this one)")
    args = parser.parse_args(argv)
    found = findings(args.repo.resolve())
    print("\n".join(found) if found else "No dead code.")
    return 1 if found else 0


if __name__ == "__main__":
    raise SystemExit(main())
