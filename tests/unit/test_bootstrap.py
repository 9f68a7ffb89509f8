"""The one bootstrap (sgtr_em.bootstrap) that the claims and the EM judge both draw from."""

from __future__ import annotations

import numpy as np
import pytest

from sgtr_em.bootstrap import generator, percentile_interval, resampled_item_means
from sgtr_em.em_judge import bootstrap_ci


def test_streams_are_seeded_per_key_and_independent_of_creation_order():
    a_first = generator(7, "claims", "m", "c1").integers(0, 1000, 5)
    generator(7, "claims", "m", "c2").integers(0, 1000, 5)
    assert (generator(7, "claims", "m", "c1").integers(0, 1000, 5) == a_first).all()
    assert not (generator(8, "claims", "m", "c1").integers(0, 1000, 5) == a_first).all()


def test_resampled_means_draw_items_with_replacement():
    rng = generator(0, "t")
    means = resampled_item_means([0.0, 1.0], 4000, rng)
    assert means.shape == (4000,)
    assert set(np.unique(means)) <= {0.0, 0.5, 1.0}
    assert means.mean() == pytest.approx(0.5, abs=0.03)
    assert (resampled_item_means([0.25, 0.25], 10, rng) == 0.25).all()


def test_percentile_interval_cuts_both_tails():
    draws = np.arange(1001, dtype=float)
    assert percentile_interval(draws, 0.95) == pytest.approx((25.0, 975.0))
    assert percentile_interval(draws, 0.5) == pytest.approx((250.0, 750.0))


def test_the_em_judge_pools_questions_by_their_answers():
    """The pooled interval of one question asked alone equals that question's own interval (same stream)."""
    only = bootstrap_ci({"q": [True, False, False, True, False]}, resamples=300, seed=1)
    assert only["all"] == only["q"]
