"""`python -m sgtr_em.memory audit ...`: the GPU memory audit of a config (sgtr_em.memory.audit)."""

from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(prog="python -m sgtr_em.memory", description="GPU memory plans.")
    parser.add_argument("command", choices=["audit"], help="audit: plan every GPU job of a config (see audit --help)")
    parser.parse_args(args[:1] or ["--help"])
    from .audit import main as audit

    return audit(args[1:])


if __name__ == "__main__":
    raise SystemExit(main())
