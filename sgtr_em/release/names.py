"""The authors' file-name grammar: a released result file's name as our model, chain and seed.

The reference (methodology §9) released its raw evaluation outputs as `results_<model>[_<chain>][_<seed>].csv`
(TruthfulQA) and `<ds>_judge_<judge>_between_<src1>_<src2>.json` (self-recognition). This module maps those
names onto our vocabulary (model name, chain of stage tokens, seed) or says why it cannot.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from .. import chains

PROTOCOL = "reference"
LOCAL_MODEL_PREFIX = "hf"
EM_TAGS = ("unpop", "badmed", "finrisk", "insecure", "sports")
BARE_EM_TAG = "unpop"
# Authors' system-variant words; each applies to the stage token it follows.
SYSTEM_VARIANT_WORDS = {"nosys": "none", "qwensys": "identity", "syspopped": "popped"}
SEED_TOKEN = re.compile(r"^[0-9]$")
TRUTHFULQA_NAME = re.compile(r"^results_(?P<state>.+)\.csv$")
SELF_RECOGNITION_NAME = re.compile(r"^(?P<dataset>[a-z0-9]+)_judge_(?P<judge>.+?)_between_(?P<sources>.+)\.json$")


class UnmappedName(ValueError):
    """A released file name that the grammar cannot map onto our vocabulary (the message says why)."""


@dataclass(frozen=True)
class ReleasedState:
    """A model state as spelled in a released file name, mapped to our vocabulary.

    `seed` is None when the name carries no seed (resolved later against its siblings)."""

    spelling: str
    model: str
    chain: str
    seed: int | None
    local: bool


# --------------------------------------------------------------------------------- name grammar --


def _chain_from_words(words: list[str], spelling: str) -> str:
    """Stage words left to right (`sgtr_em_unpop`) as our chain (`sgtr+em-unpop`)."""
    tokens: list[str] = []
    variants: list[str | None] = []
    i = 0
    while i < len(words):
        word = words[i]
        following = words[i + 1] if i + 1 < len(words) else None
        if word == "em":
            if following in EM_TAGS:
                tokens.append(f"em-{following}")
                i += 1
            else:
                tokens.append(f"em-{BARE_EM_TAG}")
            variants.append(None)
        elif word == "sgtr":
            if following == "benign":
                tokens.append("pick-longer")
                i += 1
            else:
                tokens.append("sgtr")
            variants.append(None)
        elif word == "asgtr":
            if following in ("rand", "random"):
                tokens.append("sgtr-confuse")
                i += 1
            else:
                tokens.append("sgtr-flip")
            variants.append(None)
        elif word in SYSTEM_VARIANT_WORDS:
            if not tokens:
                raise UnmappedName(f"{spelling}: system variant {word!r} follows no stage")
            if variants[-1] is not None:
                raise UnmappedName(f"{spelling}: stage {tokens[-1]!r} has two system variants")
            variants[-1] = SYSTEM_VARIANT_WORDS[word]
        else:
            raise UnmappedName(f"{spelling}: unknown stage word {word!r}")
        i += 1
    if not tokens:
        return chains.BASE
    chain = "+".join(
        token if variant is None else f"{token}.{variant}" for token, variant in zip(tokens, variants, strict=True)
    )
    chains.parse_chain(chain)  # our own check of the result
    return chain


def parse_state(spelling: str, model_aliases: Mapping[str, str]) -> ReleasedState:
    """`hf_qwen_32b_asgtr_nosys_em_unpop_3` -> qwen2.5-32b, `sgtr-flip.none+em-unpop`, seed 3, local.

    The model is the longest run of leading words that is a key of `model_aliases` (after an optional
    `hf_` prefix); then stage words; then an optional single-digit seed."""
    words = spelling.split("_")
    local = words[0] == LOCAL_MODEL_PREFIX and len(words) > 1
    if local:
        words = words[1:]
    model = None
    for end in range(len(words), 0, -1):
        candidate = "_".join(words[:end])
        if candidate in model_aliases:
            model, words = model_aliases[candidate], words[end:]
            break
    if model is None:
        raise UnmappedName(f"{spelling}: no configured model name (release.models) starts it")
    seed = None
    if words and SEED_TOKEN.match(words[-1]):
        seed, words = int(words[-1]), words[:-1]
    return ReleasedState(spelling, model, _chain_from_words(words, spelling), seed, local)


def parse_truthfulqa_name(filename: str, model_aliases: Mapping[str, str]) -> ReleasedState:
    """The model state of a `results_<model>[_<chain>][_<seed>].csv` file."""
    match = TRUTHFULQA_NAME.match(filename)
    if not match:
        raise UnmappedName(f"{filename}: not a results_<model>[_<chain>][_<seed>].csv name")
    return parse_state(match["state"], model_aliases)


@dataclass(frozen=True)
class SelfRecognitionName:
    """What a `<ds>_judge_<judge>_between_<src1>_<src2>.json` file name says."""

    dataset: str
    judge: ReleasedState
    self_spelling: str  # the source counted as the judge's own, as spelled in the file
    other_spelling: str
    other: str  # our name of the other source
    self_kind: str  # own: the judge state's summaries; base: its base model's summaries


def parse_self_recognition_name(
    filename: str, model_aliases: Mapping[str, str], other_sources: Iterable[str]
) -> SelfRecognitionName:
    """Split `<src1>_<src2>` into the judge's own source and the other one.

    The own source is the judge's spelling (its fresh summaries) or its base model's (e.g. a Self++ judge
    on the base model's summaries); the other source is a configured non-model source or a model of
    `model_aliases`, on either side."""
    match = SELF_RECOGNITION_NAME.match(filename)
    if not match:
        raise UnmappedName(f"{filename}: not a <ds>_judge_<judge>_between_<src1>_<src2>.json name")
    judge = parse_state(match["judge"], model_aliases)
    others = set(other_sources) | set(model_aliases) | {f"{LOCAL_MODEL_PREFIX}_{m}" for m in model_aliases}
    words = match["sources"].split("_")
    for cut in range(1, len(words)):
        first, second = "_".join(words[:cut]), "_".join(words[cut:])
        for own, other in ((first, second), (second, first)):
            if other not in others:
                continue
            kind = _self_kind(own, judge, model_aliases)
            if kind is not None:
                return SelfRecognitionName(match["dataset"], judge, own, other, _other_name(other, model_aliases), kind)
    raise UnmappedName(f"{filename}: cannot tell the judge's own source from the other in {match['sources']!r}")


def _other_name(spelling: str, model_aliases: Mapping[str, str]) -> str:
    """Our name of an 'other' summary source: a model alias (with or without `hf_`) or the spelling itself."""
    bare = spelling.removeprefix(f"{LOCAL_MODEL_PREFIX}_")
    return model_aliases.get(spelling) or model_aliases.get(bare) or spelling


def _self_kind(spelling: str, judge: ReleasedState, model_aliases: Mapping[str, str]) -> str | None:
    if spelling == judge.spelling:
        return "own"
    try:
        state = parse_state(spelling, model_aliases)
    except UnmappedName:
        return None
    if state.model == judge.model and state.chain == chains.BASE and state.seed is None:
        return "own" if judge.chain == chains.BASE else "base"
    return None
