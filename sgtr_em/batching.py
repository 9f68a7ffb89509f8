"""How prompts are put into batches, with no torch: by length bucket, under a memory budget and a row cap.

Two promises, kept by construction:
- **No batch needs more memory than the device has left after the weights.** A batch's peak is planned
  with `sgtr_em.memory.InferenceMemory` before it runs and rows are added only while it fits the budget
  (a prompt too long to fit with any other runs alone). The batch-size setting is a cap on rows, not a size.
- **A prompt's numbers do not depend on its batch.** Each prompt is padded to its own length's bucket
  (`padded_length`), and a batch only holds prompts of one bucket, so every prompt is computed with the same
  tensor shapes whatever batch size, memory budget or out-of-memory split put it where it is. Prompts that
  share a prefix (`shared_prefix_groups`) keep the prefix their whole group shares, however the group is cut
  into batches.

Used at run time by the Hugging Face backend and offline by the GPU memory audit (`sgtr_em.memory audit`),
so both plan the same batches.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass

# Bucket steps: lengths are rounded up to a step of at least MIN_BUCKET tokens, BUCKETS_PER_DOUBLING steps per
# power of two (at most 1/8 of a bucket is padding).
MIN_BUCKET = 16
BUCKETS_PER_DOUBLING = 8


def padded_length(tokens: int) -> int:
    """The length a prompt of `tokens` tokens is padded to (its bucket)."""
    if tokens <= MIN_BUCKET:
        return MIN_BUCKET
    step = max(MIN_BUCKET, 1 << max(0, (tokens - 1).bit_length() - BUCKETS_PER_DOUBLING.bit_length()))
    return -(-tokens // step) * step


Fits = Callable[[int, int], bool]


def largest_rows(fits: Fits, length: int, cap: int) -> int:
    """The most rows (at most `cap`, at least 1) of padded length `length` that `fits(rows, length)` allows."""
    low, high = 1, max(cap, 1)
    if fits(high, length):
        return high
    while high - low > 1:
        middle = (low + high) // 2
        if fits(middle, length):
            low = middle
        else:
            high = middle
    return low


def bucketed_batches(lengths: Sequence[int], max_rows: int, fits: Fits | None = None) -> list[tuple[int, list[int]]]:
    """Batches as (padded length, item indices): the longest bucket first (a batch that cannot fit shows at
    once, not hours in), items in their given order within a bucket, as many rows per batch as the budget
    (`fits(rows, padded length)`; None: no memory limit) and the cap allow."""
    buckets: dict[int, list[int]] = {}
    for index, tokens in enumerate(lengths):
        buckets.setdefault(padded_length(tokens), []).append(index)
    batches = []
    for length in sorted(buckets, reverse=True):
        members = buckets[length]
        rows = max_rows if fits is None else largest_rows(fits, length, max_rows)
        batches += [(length, members[k : k + rows]) for k in range(0, len(members), rows)]
    return batches


def shared_prefix_groups(token_ids: Sequence[Sequence[int]]) -> list[tuple[int, list[int]]]:
    """Runs of neighbouring prompts that share most of their tokens, as (shared prefix length, indices).

    A prompt joins the run before it when their common prefix is at least half of every member's length
    (the two orderings of an article's pair share the article; the few-shot prompts of an MMLU subject share
    the header and the shots; two articles share only the preamble, and stay apart). Every member keeps at
    least its last token outside the prefix, so a singleton's prefix is all but its last token. A group is
    decided by content alone, however many members it has: `shared_prefix_batches` cuts it into batches."""
    groups: list[tuple[int, list[int]]] = []
    for i, tokens in enumerate(token_ids):
        if groups:
            shared, members = groups[-1]
            limit = min(shared, len(tokens) - 1)
            common = len(os.path.commonprefix([list(token_ids[members[0]][:limit]), list(tokens[:limit])]))
            if 2 * common >= max(len(tokens), *(len(token_ids[m]) for m in members)):
                groups[-1] = (common, [*members, i])
                continue
        groups.append((max(len(tokens) - 1, 0), [i]))
    return groups


@dataclass(frozen=True)
class PrefixBatch:
    """One forward pass of prompts scored on top of their groups' shared prefixes: every prefix padded to
    `prefix_length`, every member's own tokens to `suffix_length`; `groups` as (shared prefix length,
    member indices), each prefix run once however many of its members the batch holds."""

    prefix_length: int
    suffix_length: int
    groups: tuple[tuple[int, tuple[int, ...]], ...]

    @property
    def members(self) -> list[int]:
        return [i for _, members in self.groups for i in members]

    def halves(self) -> tuple[PrefixBatch, PrefixBatch]:
        """The batch cut in two by members (for an out-of-memory retry); each group keeps its prefix."""
        flat = [(g, shared, i) for g, (shared, members) in enumerate(self.groups) for i in members]
        cut = len(flat) // 2
        return self._regrouped(flat[:cut]), self._regrouped(flat[cut:])

    def _regrouped(self, flat: list[tuple[int, int, int]]) -> PrefixBatch:
        groups: list[tuple[int, int, list[int]]] = []
        for g, shared, i in flat:
            if groups and groups[-1][0] == g:
                groups[-1][2].append(i)
            else:
                groups.append((g, shared, [i]))
        return PrefixBatch(self.prefix_length, self.suffix_length, tuple((s, tuple(m)) for _, s, m in groups))


SharedFits = Callable[[int, int, int, int], bool]


def shared_prefix_batches(
    groups: Sequence[tuple[int, Sequence[int]]],
    lengths: Sequence[int],
    max_rows: int,
    fits: SharedFits | None = None,
) -> list[PrefixBatch]:
    """Batches of shared-prefix groups: members of one (prefix bucket, suffix bucket) class together, at most
    `max_rows` members and what `fits(groups, members, prefix length, suffix length)` allows (None: no memory
    limit). A group larger than a batch continues in the next one with its prefix run again; a member that
    does not fit even alone gets a batch of its own. The longest class first."""
    classes: dict[tuple[int, int], list[tuple[int, list[int]]]] = {}
    for shared, members in groups:
        prefix = padded_length(shared) if shared else 0
        by_suffix: dict[int, list[int]] = {}
        for i in members:
            by_suffix.setdefault(padded_length(lengths[i] - shared), []).append(i)
        for suffix, chosen in by_suffix.items():
            classes.setdefault((prefix, suffix), []).append((shared, chosen))
    batches: list[PrefixBatch] = []
    for prefix, suffix in sorted(classes, key=lambda key: (-(key[0] + key[1]), -key[0])):
        current: list[tuple[int, int, list[int]]] = []  # (group number, shared prefix length, members)
        count = 0
        for g, (shared, members) in enumerate(classes[(prefix, suffix)]):
            for i in members:
                n_groups = len(current) + int(not current or current[-1][0] != g)
                too_big = count + 1 > max_rows or (fits is not None and not fits(n_groups, count + 1, prefix, suffix))
                if current and too_big:
                    batches.append(_prefix_batch(prefix, suffix, current))
                    current, count = [], 0
                if current and current[-1][0] == g:
                    current[-1][2].append(i)
                else:
                    current.append((g, shared, [i]))
                count += 1
        if current:
            batches.append(_prefix_batch(prefix, suffix, current))
    return batches


def _prefix_batch(prefix: int, suffix: int, groups: list[tuple[int, int, list[int]]]) -> PrefixBatch:
    return PrefixBatch(prefix, suffix, tuple((shared, tuple(members)) for _, shared, members in groups))
