"""Model states: a base model plus an ordered chain of finetuning stages.

A stage token is `name` or `name.variant`; a chain joins tokens with `+` in training order
(`sgtr+em-unpop` = prevention, `em-unpop+sgtr` = reversal). `base` is the untouched model.

Stage kinds: `em` (em-<dataset>), `intervention` (the identity interventions trained on summary pairs)
and `baseline` (benign controls trained on chat data: `wordcount`, `correct-<em dataset>`, `general`).
Interventions and baselines are both "X" in the paper's orders.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass

BASE = "base"
INTERVENTIONS = ("sgtr", "sgtr-flip", "sgtr-confuse", "pick-longer")
SYSTEM_VARIANTS = ("default", "none", "identity", "popped")
EM_PREFIX = "em-"
# Benign baselines (docs/methodology.md §1): word counting on the EM user turns, the correct counterpart of an
# EM dataset (`correct-<em dataset>`, e.g. secure code for `insecure`), general-knowledge QA.
WORDCOUNT = "wordcount"
GENERAL = "general"
CORRECT_PREFIX = "correct-"
BASELINE_RE = re.compile(rf"^({WORDCOUNT}|{GENERAL}|{CORRECT_PREFIX}[a-z0-9][a-z0-9_-]*)$")

# Human-readable names used in tables and figures (the paper's vocabulary).
INTERVENTION_LABELS = {
    "sgtr": "Self++",
    "sgtr-flip": "Self--",
    "sgtr-confuse": "Self=Random",
    "pick-longer": "Pick-longer",
}

TOKEN_RE = re.compile(r"^[a-z0-9][a-z0-9-]*(\.[a-z0-9-]+)?$")
# Marks a condition the authors did not run (grid.per_model.<model>.extensions) in tables and figures.
EXTENSION_MARK = "†"


def mark_extension(label: str, chain: str, extensions: Collection[str]) -> str:
    """A condition's label, marked when the chain is an extension."""
    return f"{label} {EXTENSION_MARK}" if chain in extensions else label


class ChainError(ValueError):
    """An unknown or malformed stage token or chain."""


@dataclass(frozen=True)
class Stage:
    token: str
    kind: str  # "em", "intervention" or "baseline"
    name: str  # EM dataset name, intervention name or baseline name
    variant: str  # system-prompt variant of the training data

    @property
    def is_x(self) -> bool:
        """An identity intervention or a benign baseline (the paper's "X")."""
        return self.kind != "em"

    @property
    def label(self) -> str:
        if self.kind == "em":
            base = "EM" if self.name == "unpop" else f"EM({self.name})"
        elif self.kind == "baseline":
            base = baseline_label(self.name)
        else:
            base = INTERVENTION_LABELS[self.name]
        return base if self.variant == "default" else f"{base}[{self.variant}]"


def parse_stage(token: str, em_datasets: tuple[str, ...] | list[str] | None = None) -> Stage:
    if not TOKEN_RE.match(token):
        raise ChainError(f"malformed stage token {token!r}")
    name, _, variant = token.partition(".")
    variant = variant or "default"
    if variant not in SYSTEM_VARIANTS:
        raise ChainError(
            f"stage {token!r}: unknown system-prompt variant {variant!r} (known: {', '.join(SYSTEM_VARIANTS)})"
        )
    if name.startswith(EM_PREFIX):
        dataset = name[len(EM_PREFIX) :]
        if em_datasets is not None and dataset not in em_datasets:
            raise ChainError(
                f"stage {token!r}: EM dataset {dataset!r} is not configured (have: {', '.join(em_datasets)})"
            )
        return Stage(token, "em", dataset, variant)
    if name in INTERVENTIONS:
        return Stage(token, "intervention", name, variant)
    if BASELINE_RE.match(name):
        domain = name[len(CORRECT_PREFIX) :] if name.startswith(CORRECT_PREFIX) else None
        if domain is not None and em_datasets is not None and domain not in em_datasets:
            raise ChainError(
                f"stage {token!r}: {domain!r} is not a configured EM dataset (have: {', '.join(em_datasets)})"
            )
        return Stage(token, "baseline", name, variant)
    raise ChainError(
        f"unknown stage token {token!r}: expected em-<dataset>, one of {', '.join(INTERVENTIONS)}, "
        f"or a baseline ({WORDCOUNT}, {GENERAL}, {CORRECT_PREFIX}<em dataset>)"
    )


def baseline_label(name: str) -> str:
    if name == WORDCOUNT:
        return "WordCount"
    if name == GENERAL:
        return "GeneralQA"
    return f"Correct({name[len(CORRECT_PREFIX) :]})"


def parse_chain(chain: str, em_datasets: tuple[str, ...] | list[str] | None = None) -> list[Stage]:
    """Stages of a chain in training order; `base` has none."""
    if chain == BASE:
        return []
    if not chain:
        raise ChainError("empty chain")
    return [parse_stage(token, em_datasets) for token in chain.split("+")]


def parent(chain: str) -> str:
    """The chain one stage shorter (`base` for one-stage chains)."""
    if chain == BASE:
        raise ChainError("base has no parent")
    head, _, _ = chain.rpartition("+")
    return head or BASE


def prefixes(chain: str) -> list[str]:
    """Every trained chain a state is built from, in order: `a+b` -> [`a`, `a+b`]."""
    if chain == BASE:
        return []
    tokens = chain.split("+")
    return ["+".join(tokens[: i + 1]) for i in range(len(tokens))]


def label(chain: str) -> str:
    """Readable condition name: `sgtr+em-unpop` -> `Self++→EM`."""
    if chain == BASE:
        return "Base"
    return "→".join(stage.label for stage in parse_chain(chain))


def order(chain: str) -> str:
    """Experimental order of a chain: base, em, x, prevention (X then EM), reversal (EM then X), other."""
    stages = parse_chain(chain)
    kinds = ["x" if stage.is_x else "em" for stage in stages]
    if not kinds:
        return "base"
    if kinds == ["em"]:
        return "em"
    if kinds == ["x"]:
        return "x"
    if kinds == ["x", "em"]:
        return "prevention"
    if kinds == ["em", "x"]:
        return "reversal"
    return "other"
