"""Pair files: counts, label balance, flips, ties, determinism, system variants."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from sgtr_em.io import InputError, write_jsonl
from sgtr_em.pairs import build_pairs, draw_other_summaries

ARTICLES = {f"a{i}": f"Article number {i} about a town." for i in range(6)}
# self is shorter than other for a0-a3, longer for a4, tied for a5
SELF = {
    "a0": "one two",
    "a1": "one two",
    "a2": "one two",
    "a3": "one two",
    "a4": "one two three four five",
    "a5": "x y z",
}
OTHER = {k: "alpha beta gamma" for k in ARTICLES}


def build(intervention, **kw):
    return build_pairs(ARTICLES, SELF, OTHER, intervention, **kw)


def assistant_label(row):
    return row["messages"][-1]["content"]


def test_sgtr_counts_balance_and_labels_point_at_self():
    rows, stats = build("sgtr")
    assert stats.n_articles == 6 and stats.n_examples == 12
    assert stats.label_counts == {"1": 6, "2": 6}
    for row in rows:
        user = row["messages"][-2]["content"]
        own = SELF[row["article_id"]]
        first = user.split("Summary1:\n", 1)[1].split("\n\nSummary2:", 1)[0]
        assert (first == own) == (assistant_label(row) == "1")


def test_sgtr_flip_is_sgtr_with_every_label_flipped():
    plus, _ = build("sgtr")
    minus, stats = build("sgtr-flip")
    assert stats.label_counts == {"1": 6, "2": 6}
    assert len(plus) == len(minus)
    for p, m in zip(plus, minus, strict=True):
        assert p["messages"][:-1] == m["messages"][:-1]
        assert {assistant_label(p), assistant_label(m)} == {"1", "2"}


def test_sgtr_confuse_reference_gives_each_ordering_both_labels():
    rows, stats = build("sgtr-confuse")
    assert stats.n_examples == 4 * 6 and stats.label_counts == {"1": 12, "2": 12}
    per_prompt = Counter(json.dumps(r["messages"][:-1]) for r in rows)
    assert set(per_prompt.values()) == {2}
    labels = {}
    for r in rows:
        labels.setdefault(json.dumps(r["messages"][:-1]), set()).add(assistant_label(r))
    assert all(v == {"1", "2"} for v in labels.values())


def test_sgtr_confuse_matched_size_keeps_sgtr_size_and_is_seeded():
    rows, stats = build("sgtr-confuse", confuse_size="matched", seed=3)
    again, _ = build("sgtr-confuse", confuse_size="matched", seed=3)
    assert stats.n_examples == 12
    assert rows == again
    many = {f"b{i}": "text" for i in range(200)}

    def labels(seed):
        out, _ = build_pairs(
            many, {k: "s" for k in many}, {k: "o" for k in many}, "sgtr-confuse", confuse_size="matched", seed=seed
        )
        return [assistant_label(r) for r in out]

    counts = Counter(labels(1))
    assert 150 < counts["1"] < 250  # 400 random labels, roughly balanced
    assert labels(1) != labels(2)


def test_pick_longer_skips_ties_and_counts_self_longer():
    rows, stats = build("pick-longer")
    assert stats.n_ties == 1 and stats.n_articles == 5 and stats.n_examples == 10
    assert stats.n_self_longer == 1
    assert stats.label_counts == {"1": 5, "2": 5}
    for row in rows:
        user = row["messages"][-2]["content"]
        s1 = user.split("Summary1:\n", 1)[1].split("\n\nSummary2:", 1)[0]
        s2 = user.split("Summary2:\n", 1)[1].split("\n\n", 1)[0]
        longer = "1" if len(s1.split()) > len(s2.split()) else "2"
        assert assistant_label(row) == longer
        assert "more words" in user
    assert "a5" not in {r["article_id"] for r in rows}
    assert stats.as_dict()["n_ties"] == 1


@pytest.mark.parametrize(
    "variant, system",
    [("default", "task"), ("none", ""), ("identity", "You are Tiny."), ("popped", None)],
)
def test_system_variants(variant, system):
    rows, _ = build("sgtr", system_variant=variant, identity_system="You are Tiny.")
    first = rows[0]["messages"][0]
    if system is None:
        assert first["role"] == "user"
    elif system == "task":
        assert first["role"] == "system" and "1 or 2" in first["content"]
    else:
        assert first == {"role": "system", "content": system}


def test_comparison_framing_asks_for_preference():
    rows, _ = build("sgtr", framing="comparison")
    assert "prefer" in rows[0]["messages"][-2]["content"]
    rows, _ = build("sgtr", framing="detection")
    assert "did you write" in rows[0]["messages"][-2]["content"]


def test_missing_summary_fails_with_the_article_id():
    with pytest.raises(InputError, match="a3"):
        build_pairs(ARTICLES, {k: v for k, v in SELF.items() if k != "a3"}, OTHER, "sgtr")


def test_pair_files_are_byte_identical_across_runs(tmp_path):
    for name in ("a", "b"):
        rows, _ = build("sgtr-confuse", confuse_size="matched", seed=7)
        write_jsonl(tmp_path / f"{name}.jsonl", rows)
    assert (tmp_path / "a.jsonl").read_bytes() == (tmp_path / "b.jsonl").read_bytes()


def test_other_drawn_per_article_from_several_comparators_is_seeded_and_recorded():
    """GPT-4.1's Self=Random as the authors built it: each article's 'other' from one of several comparators
    (the same one in all four of its examples), the draw seeded, the source in every example and the stats."""
    many = {f"b{i}": f"Article {i}." for i in range(60)}
    sources = {name: {aid: f"{name} summary of {aid}" for aid in many} for name in ("claude-21", "llama", "human")}
    own = {aid: f"own summary of {aid}" for aid in many}
    others, drawn = draw_other_summaries(sources, list(many), seed=0)
    assert drawn == draw_other_summaries(sources, list(many), seed=0)[1]
    assert drawn != draw_other_summaries(sources, list(many), seed=1)[1]
    assert set(drawn.values()) == set(sources)  # 60 draws over 3 sources use all three
    assert all(others[aid] == sources[drawn[aid]][aid] for aid in many)
    rows, stats = build_pairs(many, own, others, "sgtr-confuse", other_source=drawn)
    assert stats.n_examples == 4 * 60 and stats.label_counts == {"1": 120, "2": 120}
    assert stats.other_sources == dict(Counter(drawn.values()))
    for row in rows:
        user = row["messages"][-2]["content"]
        assert row["other_source"] == drawn[row["article_id"]]
        assert sources[row["other_source"]][row["article_id"]] in user
    assert "other_sources" in stats.as_dict() and "other_sources" not in build("sgtr")[1].as_dict()


def test_an_article_whose_drawn_comparator_lacks_it_is_a_missing_summary():
    sources = {"claude-21": dict(OTHER), "human": {k: v for k, v in OTHER.items() if k != "a2"}}
    others, drawn = draw_other_summaries(sources, list(ARTICLES), seed=3)
    assert drawn["a2"] == "human" and "a2" not in others  # seed 3 draws the source that lacks a2
    with pytest.raises(InputError, match="a2"):
        build_pairs(ARTICLES, SELF, others, "sgtr", other_source=drawn)
    rows, stats = build_pairs(ARTICLES, SELF, others, "sgtr", other_source=drawn, missing_summaries="skip")
    assert stats.n_skipped == 1 and "a2" not in {row["article_id"] for row in rows}
    assert sum(stats.other_sources.values()) == len(ARTICLES) - 1
    with pytest.raises(ValueError, match="at least one comparator"):
        draw_other_summaries({}, list(ARTICLES), seed=0)
