"""Which series of released files a condition uses.

Several series of files may claim one condition (model, chain) of one evaluation: an earlier run's spelling
beside the pipeline's (`qwen_32B_em`, bare `em_<seed>` beside `em_unpop_<seed>`), a seedless single run beside
seeds `_0`…`_4`. A series is one spelling over seeds; `choose_series` picks one per condition and says why.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .names import LEGACY_SPELLINGS, ReleasedState


@dataclass
class ReleasedFile:
    """One released result file, re-scored, with its mapping (or why it has none)."""

    file: str  # relative to the release root
    kind: str  # truthfulqa or self_recognition
    row: dict[str, Any]  # its per-file table row
    state: ReleasedState | None = None
    condition: tuple[str, str, str] | None = None  # (eval, model, chain)
    make_eval: Callable[[int], dict[str, Any]] | None = None  # seed -> our evaluation JSON


@dataclass
class Series:
    """Files of one condition that belong together: one spelling (stem) over seeds."""

    condition: tuple[str, str, str]
    stem: str
    members: dict[int, ReleasedFile]  # seed -> file
    unseeded: bool = False  # a seedless file whose stem also has an explicit seed 0: a run of its own
    listed: list[str] = field(default_factory=list)  # where the authors' plotting scripts list its files
    legacy: tuple[str, ...] = ()

    @property
    def label(self) -> str:
        return self.stem + (" (seedless)" if self.unseeded else "")

    def files(self) -> list[str]:
        return [self.members[s].file for s in sorted(self.members)]


def group_series(files: Iterable[ReleasedFile], listed_in: Mapping[str, list[str]]) -> dict[tuple, list[Series]]:
    """Mapped files by condition, each condition's files split into series. A seedless file is seed 0 of its
    stem's series (the reference's first run; its siblings carry `_1`…`_4`) unless the stem also has an
    explicit `_0`: then it is a series of its own."""
    by_stem: dict[tuple, list[ReleasedFile]] = {}
    for released in files:
        if released.condition is not None and released.state is not None:
            by_stem.setdefault((released.condition, released.state.stem), []).append(released)
    conditions: dict[tuple, list[Series]] = {}
    for (condition, stem), members in sorted(by_stem.items()):
        explicit = {m.state.seed: m for m in members if m.state is not None and m.state.seed is not None}
        seedless = [m for m in members if m.state is not None and m.state.seed is None]
        series = [Series(condition, stem, dict(explicit))] if explicit else []
        for m in seedless:
            if 0 in explicit:
                series.append(Series(condition, stem, {0: m}, unseeded=True))
            elif series:
                series[0].members[0] = m
            else:
                series.append(Series(condition, stem, {0: m}))
        for s in series:
            s.listed = list(dict.fromkeys(where.split(" as ")[0] for f in s.files() for where in listed_in.get(f, [])))
            s.legacy = tuple(sorted({w for m in s.members.values() if m.state for w in m.state.legacy}))
        conditions.setdefault(condition, []).extend(series)
    return conditions


def _preference(series: Series) -> tuple:
    return (-len(series.members), not series.listed, len(series.legacy), series.unseeded, series.stem)


def choose_series(candidates: list[Series]) -> tuple[Series, str]:
    """The series a condition uses, and why: most seeds; then one the authors' plotting scripts draw; then the
    spelling the authors' pipeline scripts write (no legacy spelling); then a seeded series over a seedless run;
    then the first stem by name."""
    ordered = sorted(candidates, key=_preference)
    chosen = ordered[0]
    if len(ordered) == 1:
        return chosen, "the only series of this condition"
    runner = ordered[1]
    if len(chosen.members) != len(runner.members):
        why = f"most seeds ({len(chosen.members)}, the next has {len(runner.members)})"
    elif bool(chosen.listed) != bool(runner.listed):
        why = f"as many seeds as the next, and the authors' plotting scripts draw it ({chosen.listed[0]})"
    elif len(chosen.legacy) != len(runner.legacy):
        used = "; ".join(LEGACY_SPELLINGS[w] for w in runner.legacy if w not in chosen.legacy)
        why = f"as many seeds as the next, spelled as the authors' pipeline scripts write runs (the next uses {used})"
    elif chosen.unseeded != runner.unseeded:
        why = "as many seeds as the next, which is a seedless run beside an explicit seed 0"
    else:
        why = "no other difference: the first stem by name"
    return chosen, why
