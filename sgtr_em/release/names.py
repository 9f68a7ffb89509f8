"""The authors' file-name grammar: a released result file's name as our model, chain and seed.

The reference (methodology §9) released its raw evaluation outputs as `results_<state>.csv` (TruthfulQA) and
`<ds>_judge_<judge>_between_<src1>_<src2>.json` (self-recognition). A state is spelled
`[hf_]<model>[_<stage words>][_<seed>][_<variant>]`: the model as in `release.models`; stage words left to
right in training order, as the authors' config builders and pipeline scripts write them (`em[_<tag>]`,
`sgtr[_benign]`, `asgtr[_rand|_random]`, each optionally followed by a system-variant word); a single-digit
seed; and, in some runs (`…_sgtr_0_qwensys`), the system variant of the identity intervention after the seed.
This module maps those names onto our vocabulary or says why it cannot; it never reads file contents.
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
# Stage words of released names that map to no chain of this workflow, with what a reviewer needs to know.
UNMAPPABLE_STAGE_WORDS = {
    "rl": (
        "Self++ trained by reinforcement learning (`sgtr_rl_<checkpoint>`; the authors' scripts/eval/mmlu_print.py "
        "lists these runs); RL training is not a stage of this workflow, so the state has no chain here"
    ),
    "withsys": (
        "EM trained on chats given a system prompt (`em_withsys`); no config builder or pipeline script of the "
        "release writes this name, and EM data in this workflow's system variants (default, none, popped) has no "
        "system prompt, so the state has no chain here"
    ),
    "id": (
        "`em_id`: no script, config builder or plotting list of the release names this stage word, so its "
        "meaning cannot be recovered from the release"
    ),
}
# Spellings of earlier runs that the authors' pipeline scripts (full_pipeline*.sh, build_configs*.py) no longer
# write; when two series of files claim one condition, the one without these is preferred.
LEGACY_SPELLINGS = {
    "bare_em": "EM stage without its dataset tag (`em`; the pipeline scripts write `em_<tag>`)",
    "asgtr_random": "`asgtr_random` (the pipeline scripts write `asgtr_rand`)",
    "no_hf_prefix": "local model without the `hf_` prefix",
}


class UnmappedName(ValueError):
    """A released file name that the grammar cannot map onto our vocabulary (the message says why)."""


@dataclass(frozen=True)
class ReleasedState:
    """A model state as spelled in a released file name, mapped to our vocabulary.

    `seed` is None when the name carries no seed (resolved later against its siblings); `stem` is the spelling
    without its seed (files of one series of seeds share it); `legacy` lists LEGACY_SPELLINGS keys it uses."""

    spelling: str
    model: str
    chain: str
    seed: int | None
    local: bool
    stem: str = ""
    legacy: tuple[str, ...] = ()


# --------------------------------------------------------------------------------- name grammar --


def _chain_from_words(words: list[str], spelling: str, trailing_variant: str | None = None) -> tuple[str, list[str]]:
    """Stage words left to right (`sgtr_em_unpop`) as our chain (`sgtr+em-unpop`), and the legacy spellings used.

    `trailing_variant` (a variant word written after the seed) applies to the chain's one identity
    intervention: the authors' matching-prompt runs vary only the intervention's data."""
    tokens: list[str] = []
    variants: list[str | None] = []
    kinds: list[str] = []
    legacy: list[str] = []
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
                legacy.append("bare_em")
            kinds.append("em")
            variants.append(None)
        elif word == "sgtr":
            if following == "benign":
                tokens.append("pick-longer")
                i += 1
            elif following == "rl":
                checkpoint = words[i + 2] if i + 2 < len(words) else "?"
                raise UnmappedName(f"{spelling}: stage words 'sgtr_rl_{checkpoint}': {UNMAPPABLE_STAGE_WORDS['rl']}")
            else:
                tokens.append("sgtr")
            kinds.append("x")
            variants.append(None)
        elif word == "asgtr":
            if following in ("rand", "random"):
                tokens.append("sgtr-confuse")
                if following == "random":
                    legacy.append("asgtr_random")
                i += 1
            else:
                tokens.append("sgtr-flip")
            kinds.append("x")
            variants.append(None)
        elif word in SYSTEM_VARIANT_WORDS:
            if not tokens:
                raise UnmappedName(f"{spelling}: system variant {word!r} follows no stage")
            if variants[-1] is not None:
                raise UnmappedName(f"{spelling}: stage {tokens[-1]!r} has two system variants")
            variants[-1] = SYSTEM_VARIANT_WORDS[word]
        elif word in UNMAPPABLE_STAGE_WORDS:
            raise UnmappedName(f"{spelling}: stage word {word!r}: {UNMAPPABLE_STAGE_WORDS[word]}")
        elif SEED_TOKEN.match(word):
            raise UnmappedName(f"{spelling}: seed {word!r} is followed by stage words, not only a system variant")
        else:
            raise UnmappedName(
                f"{spelling}: unknown stage word {word!r} (the authors' config builders and pipeline scripts write "
                "em[_<tag>], sgtr[_benign], asgtr[_rand], each optionally followed by nosys, qwensys or syspopped)"
            )
        i += 1
    if trailing_variant is not None:
        interventions = [k for k, kind in enumerate(kinds) if kind == "x"]
        if len(interventions) != 1:
            raise UnmappedName(
                f"{spelling}: system variant {trailing_variant!r} after the seed needs exactly one identity "
                f"intervention to apply to, found {len(interventions)}"
            )
        if variants[interventions[0]] is not None:
            raise UnmappedName(f"{spelling}: stage {tokens[interventions[0]]!r} has two system variants")
        variants[interventions[0]] = SYSTEM_VARIANT_WORDS[trailing_variant]
    if not tokens:
        return chains.BASE, legacy
    chain = "+".join(
        token if variant is None else f"{token}.{variant}" for token, variant in zip(tokens, variants, strict=True)
    )
    chains.parse_chain(chain)  # our own check of the result
    return chain, legacy


def parse_state(spelling: str, model_aliases: Mapping[str, str]) -> ReleasedState:
    """`hf_qwen_32b_asgtr_nosys_em_unpop_3` -> qwen2.5-32b, `sgtr-flip.none+em-unpop`, seed 3, local.

    The model is the longest run of leading words that is a key of `model_aliases` (after an optional
    `hf_` prefix); then stage words; then an optional single-digit seed, optionally followed by the system
    variant of the identity intervention (`hf_qwen_coder_32b_sgtr_0_qwensys`)."""
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
    trailing_variant = None
    if len(words) >= 2 and words[-1] in SYSTEM_VARIANT_WORDS and SEED_TOKEN.match(words[-2]):
        trailing_variant, words = words[-1], words[:-1]
    if words and SEED_TOKEN.match(words[-1]):
        seed, words = int(words[-1]), words[:-1]
    chain, legacy = _chain_from_words(words, spelling, trailing_variant)
    if not local:
        legacy.append("no_hf_prefix")
    return ReleasedState(spelling, model, chain, seed, local, seedless_stem(spelling), tuple(legacy))


def seedless_stem(spelling: str) -> str:
    """The spelling without its seed word (`hf_qwen_32b_sgtr_0_qwensys` -> `hf_qwen_32b_sgtr_qwensys`)."""
    words = spelling.split("_")
    for k in range(len(words) - 1, 0, -1):
        if SEED_TOKEN.match(words[k]) and all(w in SYSTEM_VARIANT_WORDS for w in words[k + 1 :]):
            return "_".join(words[:k] + words[k + 1 :])
    return spelling


def truthfulqa_spelling(filename: str) -> str:
    """`results_<state>.csv` -> `<state>`."""
    match = TRUTHFULQA_NAME.match(filename)
    if not match:
        raise UnmappedName(f"{filename}: not a results_<model>[_<chain>][_<seed>].csv name")
    return match["state"]


@dataclass(frozen=True)
class SelfRecognitionSources:
    """What a `<ds>_judge_<judge>_between_<src1>_<src2>.json` name says, without the state grammar: the judge's
    spelling and which of the two sources is the judge's own (its spelling or a leading part of it, e.g. the
    base model's summaries) and which the other."""

    dataset: str
    judge: str
    self_spelling: str
    other_spelling: str


def split_self_recognition_name(filename: str, choices: Iterable[str] = ()) -> SelfRecognitionSources:
    """Split `<src1>_<src2>` into the judge's own source and the other one.

    The cut is the one whose two sides are among the file's `choices` (the source names the judge picked)
    when exactly one is; otherwise, and to tell own from other, the side equal to the judge's spelling wins
    over a side that is only a leading part of it (the longest such part)."""
    match = SELF_RECOGNITION_NAME.match(filename)
    if not match:
        raise UnmappedName(f"{filename}: not a <ds>_judge_<judge>_between_<src1>_<src2>.json name")
    judge, words = match["judge"], match["sources"].split("_")
    seen = set(choices)

    def own_rank(side: str) -> int | None:
        """2 for the judge's spelling, 1 for a leading part of it, None otherwise."""
        if side == judge:
            return 2
        if judge.startswith(side + "_"):
            return 1
        return None

    candidates = []
    for cut in range(1, len(words)):
        first, second = "_".join(words[:cut]), "_".join(words[cut:])
        for own, other in ((first, second), (second, first)):
            rank = own_rank(own)
            if rank is not None:
                candidates.append((own in seen and other in seen, rank, len(own), own, other))
    if not candidates:
        raise UnmappedName(
            f"{filename}: neither source in {match['sources']!r} is the judge {judge!r} or a leading part of its name"
        )
    _, _, _, own, other = max(candidates)
    return SelfRecognitionSources(match["dataset"], judge, own, other)


@dataclass(frozen=True)
class SelfRecognitionName:
    """What a `<ds>_judge_<judge>_between_<src1>_<src2>.json` file name says, in our vocabulary."""

    dataset: str
    judge: ReleasedState
    self_spelling: str  # the source counted as the judge's own, as spelled in the file
    other_spelling: str
    other: str  # our name of the other source
    self_kind: str  # own: the judge state's summaries; base: its base model's summaries


def parse_self_recognition_name(
    filename: str, model_aliases: Mapping[str, str], choices: Iterable[str] = ()
) -> SelfRecognitionName:
    """The judge's state (the grammar) and the two sources (`split_self_recognition_name`) of a file.

    The own source is the judge's spelling (its fresh summaries) or its base model's (e.g. a Self++ judge
    on the base model's summaries); the other source keeps its spelling unless it is a model of
    `model_aliases` (then our model name)."""
    sources = split_self_recognition_name(filename, choices)
    judge = parse_state(sources.judge, model_aliases)
    kind = _self_kind(sources.self_spelling, judge, model_aliases)
    if kind is None:
        raise UnmappedName(
            f"{filename}: own source {sources.self_spelling!r} is neither the judge's spelling nor its base model's"
        )
    other = _other_name(sources.other_spelling, model_aliases)
    return SelfRecognitionName(sources.dataset, judge, sources.self_spelling, sources.other_spelling, other, kind)


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
