"""Training files for the identity interventions (X): SGTR pairs and the pick-longer control."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .chains import INTERVENTIONS
from .io import InputError
from .prompts import FRAMINGS, PROJECT, PromptSet, pair_messages
from .sampling import seeded_rng


@dataclass
class PairStats:
    n_articles: int = 0
    n_examples: int = 0
    label_counts: dict[str, int] = field(default_factory=lambda: {"1": 0, "2": 0})
    n_self_longer: int | None = None
    n_ties: int | None = None
    n_skipped: int | None = None  # articles left out for lack of a summary (missing_summaries: skip)
    # Articles per comparator whose summary was 'other' (several comparators, `draw_other_summaries`).
    other_sources: dict[str, int] | None = None

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "n_articles": self.n_articles,
            "n_examples": self.n_examples,
            "label_counts": dict(self.label_counts),
        }
        if self.n_self_longer is not None:
            out["n_self_longer"] = self.n_self_longer
            out["n_ties"] = self.n_ties
        if self.n_skipped is not None:
            out["n_skipped"] = self.n_skipped
        if self.other_sources is not None:
            out["other_sources"] = dict(self.other_sources)
        return out


def word_count(text: str) -> int:
    return len(text.split())


def draw_other_summaries(
    sources: Mapping[str, Mapping[str, str]], article_ids: Sequence[str], seed: int
) -> tuple[dict[str, str], dict[str, str]]:
    """'Other' drawn per article from several comparators, as the authors built GPT-4.1's Self=Random file
    (`random.choice` over Claude-2.1, Llama and human per article; unseeded there, seeded here by `seed` and the
    article). Returns the drawn summary and the comparator it came from, per article; an article whose drawn
    comparator has no summary of it is left out of the first (a missing summary, as `build_pairs` treats it)."""
    names = list(sources)
    if not names:
        raise ValueError("draw_other_summaries needs at least one comparator")
    drawn = {aid: seeded_rng(seed, "other-source", aid).choice(names) for aid in article_ids}
    summaries = {aid: sources[name][aid] for aid, name in drawn.items() if aid in sources[name]}
    return summaries, drawn


def _example(article_id: str, order: str, label: str, messages: list[dict[str, str]]) -> dict[str, Any]:
    return {
        "id": f"{article_id}:{order}:{label}",
        "article_id": article_id,
        "order": order,
        "label": label,
        "messages": [*messages, {"role": "assistant", "content": label}],
    }


def build_pairs(
    articles: dict[str, str],
    self_summaries: dict[str, str],
    other_summaries: dict[str, str],
    intervention: str,
    framing: str = "detection",
    system_variant: str = "default",
    identity_system: str | None = None,
    confuse_size: str = "reference",
    seed: int = 0,
    missing_summaries: str = "fail",
    prompts: PromptSet = PROJECT,
    other_source: Mapping[str, str] | None = None,
) -> tuple[list[dict[str, Any]], PairStats]:
    """Build X training examples for each article in order.

    Orderings: `self-first` = (self, other), `other-first` = (other, self).
    sgtr: label = position of self. sgtr-flip: position of other. sgtr-confuse: `reference` size gives each
    ordering twice, once per label (4 per article); `matched` gives each ordering one seeded random label.
    pick-longer: label = position of the summary with more words; tied articles are skipped.
    An article without a self or other summary fails the build (`missing_summaries="fail"`) or is left
    out and counted in `n_skipped` (`"skip"`). `prompts`: the prompt set the texts come from. `other_source`:
    which comparator each article's 'other' summary came from, when several did (`draw_other_summaries`); each
    example records it and the stats count the articles per comparator.
    """
    if intervention not in INTERVENTIONS:
        raise ValueError(f"unknown intervention {intervention!r} (known: {', '.join(INTERVENTIONS)})")
    if framing not in FRAMINGS:
        raise ValueError(f"unknown framing {framing!r} (known: {', '.join(FRAMINGS)})")
    if confuse_size not in ("reference", "matched"):
        raise ValueError(f"confuse_size must be 'reference' or 'matched', not {confuse_size!r}")
    if missing_summaries not in ("fail", "skip"):
        raise ValueError(f"missing_summaries must be 'fail' or 'skip', not {missing_summaries!r}")
    missing = [aid for aid in articles if aid not in self_summaries or aid not in other_summaries]
    if missing and missing_summaries == "fail":
        raise InputError(
            f"{len(missing)} article(s) lack a self or other summary (first: {missing[0]!r}); "
            "every training article needs both (or set pairs.missing_summaries: skip)"
        )
    question = "longer" if intervention == "pick-longer" else framing
    stats = PairStats()
    if missing_summaries == "skip":
        stats.n_skipped = len(missing)
        skipped = set(missing)
        articles = {aid: text for aid, text in articles.items() if aid not in skipped}
    if intervention == "pick-longer":
        stats.n_self_longer, stats.n_ties = 0, 0
    rows: list[dict[str, Any]] = []
    for article_id, article in articles.items():
        own, other = self_summaries[article_id], other_summaries[article_id]
        orderings = {"self-first": (own, other), "other-first": (other, own)}
        self_pos = {"self-first": "1", "other-first": "2"}
        other_pos = {"self-first": "2", "other-first": "1"}
        if intervention == "pick-longer":
            own_words, other_words = word_count(own), word_count(other)
            if own_words == other_words:
                stats.n_ties = (stats.n_ties or 0) + 1
                continue
            self_longer = own_words > other_words
            stats.n_self_longer = (stats.n_self_longer or 0) + int(self_longer)
            labels = {o: [self_pos[o] if self_longer else other_pos[o]] for o in orderings}
        elif intervention == "sgtr":
            labels = {o: [self_pos[o]] for o in orderings}
        elif intervention == "sgtr-flip":
            labels = {o: [other_pos[o]] for o in orderings}
        elif confuse_size == "reference":
            labels = {o: ["1", "2"] for o in orderings}
        else:
            labels = {o: [seeded_rng(seed, "confuse", article_id, o).choice(["1", "2"])] for o in orderings}
        stats.n_articles += 1
        for order, (first, second) in orderings.items():
            messages = pair_messages(article, first, second, question, system_variant, identity_system, prompts)
            for label in labels[order]:
                example = _example(article_id, order, label, messages)
                if other_source is not None:
                    example["other_source"] = other_source[article_id]
                rows.append(example)
                stats.label_counts[label] += 1
    stats.n_examples = len(rows)
    if other_source is not None:
        stats.other_sources = dict(Counter(other_source[aid] for aid in dict.fromkeys(r["article_id"] for r in rows)))
    return rows, stats


def pair_file_rows(
    articles: dict[str, str],
    self_summaries: dict[str, str],
    comparator_summaries: Mapping[str, Mapping[str, str]],
    intervention: str,
    *,
    seed: int,
    **options: Any,
) -> tuple[list[dict[str, Any]], PairStats]:
    """The rows of a pair file (rule build_pairs) from the 'other' summaries of its comparators, in the rule's
    order: one comparator's, or with several each article's drawn from one of them (`draw_other_summaries`,
    seeded by `seed`). `options`: the rest of `build_pairs`'s settings."""
    if len(comparator_summaries) == 1:
        others, other_source = dict(next(iter(comparator_summaries.values()))), None
    else:
        others, other_source = draw_other_summaries(comparator_summaries, list(articles), seed)
    return build_pairs(articles, self_summaries, others, intervention, seed=seed, other_source=other_source, **options)


def check_pairs(stats: PairStats, where: str) -> None:
    """Stop on a degenerate pair file: no example at all (no article has both a self and an other summary,
    or every pick-longer article is a tie), or examples of one label only (training would teach the model
    to always give that answer). `where` names the pair file and what it was built from."""
    if stats.n_examples == 0:
        skipped = f", {stats.n_skipped} skipped for a missing summary" if stats.n_skipped else ""
        ties = f", {stats.n_ties} ties" if stats.n_ties else ""
        raise InputError(f"{where}: 0 examples ({stats.n_articles} articles with both summaries{skipped}{ties})")
    present = [label for label, count in stats.label_counts.items() if count]
    if len(present) == 1:
        raise InputError(f"{where}: every one of the {stats.n_examples} examples has label {present[0]!r}")
