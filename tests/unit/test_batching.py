"""Batches planned by length bucket, memory budget and row cap (sgtr_em.batching): no batch beyond the budget,
and every prompt computed at its own bucket's shape whatever batch it lands in."""

from __future__ import annotations

import pytest

from sgtr_em.batching import (
    PrefixBatch,
    bucketed_batches,
    largest_rows,
    padded_length,
    shared_prefix_batches,
    shared_prefix_groups,
)


def test_a_prompt_is_padded_to_its_own_bucket_at_most_an_eighth_longer():
    assert [padded_length(n) for n in (1, 16, 17, 100, 1000, 1025)] == [16, 16, 32, 112, 1024, 1152]
    for n in range(1, 5000):
        bucket = padded_length(n)
        assert n <= bucket and (bucket - n) <= max(16, bucket // 8), n
        assert padded_length(bucket) == bucket  # a bucket's own length stays in it


def test_batches_hold_one_bucket_longest_first_within_the_row_cap():
    lengths = [100, 5, 99, 101, 100, 6, 2000]
    batches = bucketed_batches(lengths, max_rows=2)
    assert batches == [(2048, [6]), (112, [0, 2]), (112, [3, 4]), (16, [1, 5])]


def test_the_memory_budget_sets_the_rows_and_a_prompt_too_long_for_it_goes_alone():
    # a budget of 1,000 token-slots: 8 rows of 112 tokens fit, 3 of 256... none of 2048
    def fits(rows: int, length: int) -> bool:
        return rows * length <= 1000

    assert largest_rows(fits, 112, cap=64) == 8 and largest_rows(fits, 2048, cap=64) == 1
    batches = bucketed_batches([100] * 20 + [2000, 2000], max_rows=64, fits=fits)
    assert [len(rows) for _, rows in batches] == [1, 1, 8, 8, 4]
    assert all(len(rows) == 1 or fits(len(rows), length) for length, rows in batches)


def test_neighbouring_prompts_that_share_most_tokens_are_grouped_whatever_the_group_size():
    header = list(range(1000, 1300))  # an MMLU subject's header and five shots
    subject = [[*header, i, i + 1, i + 2] for i in range(0, 300, 3)]
    other = [[*list(range(5000, 5300)), 7]]
    groups = shared_prefix_groups(subject + other)
    assert groups == [(300, list(range(100))), (300, [100])]


def test_an_mmlu_sized_group_is_cut_into_batches_within_the_cap_and_budget_keeping_its_prefix():
    """The old grouping put a whole subject (up to 1,534 prompts) into one batch, one prefix copy per member;
    now no batch passes the row cap or the budget, and every batch runs the group's whole shared prefix."""
    header = list(range(1000, 1300))
    token_ids = [[*header, 5, i, i] for i in range(1534)]
    groups = shared_prefix_groups(token_ids)
    assert len(groups) == 1 and len(groups[0][1]) == 1534

    def fits(n_groups: int, members: int, prefix: int, suffix: int) -> bool:
        return (n_groups + members) * prefix + members * suffix <= 20 * 320

    batches = shared_prefix_batches(groups, [len(t) for t in token_ids], max_rows=8, fits=fits)
    assert sorted(i for batch in batches for i in batch.members) == list(range(1534))
    for batch in batches:
        assert len(batch.members) <= 8 and fits(len(batch.groups), len(batch.members), 320, 16)
        # the header, the shots and the question stem every member shares
        assert batch.prefix_length == padded_length(301) and all(shared == 301 for shared, _ in batch.groups)


def test_members_of_different_suffix_buckets_never_share_a_batch():
    header = list(range(1000, 1100))
    token_ids = [header + [1] * 5, header + [2] * 40, header + [3] * 6, header + [4] * 41]
    batches = shared_prefix_batches(shared_prefix_groups(token_ids), [len(t) for t in token_ids], max_rows=16)
    assert sorted(batch.members for batch in batches) == [[0, 2], [1, 3]]
    assert {batch.suffix_length for batch in batches} == {16, 48}


def test_an_out_of_memory_split_keeps_each_member_with_its_groups_prefix():
    batch = PrefixBatch(320, 16, ((300, (0, 1, 2)), (290, (3, 4))))
    first, second = batch.halves()
    assert first.groups == ((300, (0, 1)),) and second.groups == ((300, (2,)), (290, (3, 4)))
    assert first.members + second.members == batch.members


@pytest.mark.parametrize("cap", [1, 3, 16])
def test_every_prompt_lands_in_exactly_one_batch(cap):
    lengths = [(i * 37) % 500 + 1 for i in range(200)]
    batches = bucketed_batches(lengths, cap)
    assert sorted(i for _, rows in batches for i in rows) == list(range(200))
    assert all(len(rows) <= cap and all(padded_length(lengths[i]) == n for i in rows) for n, rows in batches)
