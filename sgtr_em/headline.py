"""The paragraph a run ends with: the paper's claims it checked and their verdicts, per model, and where the
details are. Printed when the workflow succeeds (the Snakefile's `onsuccess`: our run's claims, or the
released results' on the reviewer path) and at the end of `make demo`.

`python -m sgtr_em.headline results/claims/*.csv` prints it for any claims CSVs."""

from __future__ import annotations

import sys
import textwrap
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from .claims import INCONCLUSIVE, NOT_REPRODUCED, NOT_RUN, REPRODUCED, read_claims

VERDICT_ORDER = (REPRODUCED, NOT_REPRODUCED, INCONCLUSIVE, NOT_RUN)
WIDTH = 110


def model_sentence(model: str, rows: Sequence[dict]) -> str:
    """`demo-target: 2 reproduced (A; B), 4 inconclusive (C; ...), 1 not run.` (claims not run by count only)."""
    parts = []
    for verdict in VERDICT_ORDER:
        claims = [row["claim"] for row in rows if row["verdict"] == verdict]
        if claims and verdict == NOT_RUN:
            parts.append(f"{len(claims)} not run")
        elif claims:
            parts.append(f"{len(claims)} {verdict} ({'; '.join(claims)})")
    return f"{model}: {', '.join(parts) if parts else 'no claim configured'}."


def headline(claims_csvs: Sequence[str | Path], *, summary: str | None = None) -> str:
    """One paragraph over the claims CSVs (one per model, named after it): the verdicts with their claims,
    then where each claim's effect, interval and reason are."""
    paths = [Path(p) for p in claims_csvs]
    if not paths:
        return ""
    released = any("release" in path.parts for path in paths)
    subject = "The paper's claims on the authors' released results" if released else "The paper's claims on this run"
    sentences = [f"{subject}: " + " ".join(model_sentence(path.stem, read_claims(path)) for path in paths)]
    details = f"Each claim's effect, interval and reason: {', '.join(str(p) for p in paths)}"
    sentences.append(details + (f"; the results summary: {summary}." if summary else "."))
    return textwrap.fill(" ".join(sentences), WIDTH, break_on_hyphens=False)


def print_headline(claims_csvs: Sequence[str | Path], *, summary: str | None = None) -> None:
    """The headline on stderr, where Snakemake writes its own lines (so it follows them), after a blank line."""
    existing = [p for p in claims_csvs if Path(p).is_file()]
    if existing:
        print(f"\n{headline(existing, summary=summary)}\n", file=sys.stderr, flush=True)


# The rules whose outputs are claims CSVs (ours, the released results'), and the results summary's.
CLAIMS_RULES = ("claims", "release_claims")
SUMMARY_RULE = "results_summary"


def print_for_jobs(jobs: Iterable[Any]) -> None:
    """The headline of a finished Snakemake run: over the claims CSVs among its jobs' outputs (none: nothing
    is printed), pointing to the results summary when the run has one."""
    jobs = list(jobs)
    csvs = sorted({str(job.output[0]) for job in jobs if job.rule.name in CLAIMS_RULES})
    summary = next((str(job.output[0]) for job in jobs if job.rule.name == SUMMARY_RULE), None)
    print_headline(csvs, summary=summary)


def main(argv: Sequence[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m sgtr_em.headline", description=__doc__.splitlines()[0])
    parser.add_argument("claims_csvs", nargs="+", help="claims CSVs (results/claims/<model>.csv)")
    parser.add_argument("--summary", help="the results summary to point to")
    args = parser.parse_args(argv)
    missing = [p for p in args.claims_csvs if not Path(p).is_file()]
    if missing:
        parser.error(f"no such claims CSV: {', '.join(missing)}")
    print(headline(args.claims_csvs, summary=args.summary))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
