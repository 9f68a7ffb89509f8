"""`python -m sgtr_em.memory audit ...`: the GPU memory audit of a config (sgtr_em.memory.audit)."""

from __future__ import annotations

import argparse

from . import audit


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sgtr_em.memory", description="GPU memory plans.")
    commands = parser.add_subparsers(dest="command", required=True)
    audit.add_arguments(
        commands.add_parser(
            "audit", help="plan every GPU job of a config (see audit --help)", description=audit.DESCRIPTION
        )
    )
    return audit.run(parser.parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
