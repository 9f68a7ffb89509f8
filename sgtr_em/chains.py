"""Model states: a base model plus an ordered chain of finetuning stages.

A stage token is `name` or `name.variant`; a chain joins tokens with `+` in training order
(`sgtr+em-unpop` = prevention, `em-unpop+sgtr` = reversal). `base` is the untouched model.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

BASE = "base"
INTERVENTIONS = ("sgtr", "sgtr-flip", "sgtr-confuse", "pick-longer")
SYSTEM_VARIANTS = ("default", "none", "identity", "popped")
EM_PREFIX = "em-"

# Human-readable names used in tables and figures (the paper's vocabulary).
INTERVENTION_LABELS = {
    "sgtr": "Self++",
    "sgtr-flip": "Self--",
    "sgtr-confuse": "Self=Random",
    "pick-longer": "Pick-longer",
}

TOKEN_RE = re.compile(r"^[a-z0-9][a-z0-9-]*(\.[a-z0-9-]+)?$")


class ChainError(ValueError):
    """An unknown or malformed stage token or chain."""


@dataclass(frozen=True)
class Stage:
    token: str
    kind: str  # "em" or "intervention"
    name: str  # EM dataset name, or intervention name
    variant: str  # system-prompt variant of the training data

    @property
    def label(self) -> str:
        base = "EM" if self.kind == "em" else INTERVENTION_LABELS[self.name]
        if self.kind == "em" and self.name != "unpop":
            base = f"EM({self.name})"
        return base if self.variant == "default" else f"{base}[{self.variant}]"


def parse_stage(token: str, em_datasets: tuple[str, ...] | list[str] | None = None) -> Stage:
    if not TOKEN_RE.match(token):
        raise ChainError(f"malformed stage token {token!r}")
    name, _, variant = token.partition(".")
    variant = variant or "default"
    if variant not in SYSTEM_VARIANTS:
        raise ChainError(f"stage {token!r}: unknown system-prompt variant {variant!r} (known: {', '.join(SYSTEM_VARIANTS)})")
    if name.startswith(EM_PREFIX):
        dataset = name[len(EM_PREFIX) :]
        if em_datasets is not None and dataset not in em_datasets:
            raise ChainError(f"stage {token!r}: EM dataset {dataset!r} is not configured (have: {', '.join(em_datasets)})")
        return Stage(token, "em", dataset, variant)
    if name in INTERVENTIONS:
        return Stage(token, "intervention", name, variant)
    raise ChainError(f"unknown stage token {token!r}: expected em-<dataset> or one of {', '.join(INTERVENTIONS)}")


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
    kinds = [stage.kind for stage in stages]
    if not kinds:
        return "base"
    if kinds == ["em"]:
        return "em"
    if kinds == ["intervention"]:
        return "x"
    if kinds == ["intervention", "em"]:
        return "prevention"
    if kinds == ["em", "intervention"]:
        return "reversal"
    return "other"
