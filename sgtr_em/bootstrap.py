"""The one bootstrap of the project: seeded numpy streams, items drawn with replacement, percentile intervals.

The claims' hierarchical bootstrap (seeds, then items within each drawn seed) and the EM judge's stratified
bootstrap (answers within each question) are both built from these three pieces, so they draw, average and
cut intervals the same way."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .sampling import seeded_rng


def generator(seed: int, *keys: object) -> np.random.Generator:
    """A numpy stream of its own for `keys` under `seed`: independent of every other key and of the order in
    which streams are made (a claim's, a state's judged answers')."""
    return np.random.default_rng(seeded_rng(seed, *keys).getrandbits(64))


def resampled_item_means(items: Sequence[float] | np.ndarray, draws: int, rng: np.random.Generator) -> np.ndarray:
    """`draws` bootstrap means of `items`: each the mean of len(items) items drawn with replacement."""
    values = np.asarray(items, dtype=float)
    return values[rng.integers(0, len(values), size=(draws, len(values)))].mean(axis=1)


def percentile_interval(draws: np.ndarray, confidence: float = 0.95) -> tuple[float, float]:
    """The percentile interval of a bootstrap distribution (linear interpolation between order statistics)."""
    tail = (1.0 - confidence) / 2.0
    low, high = np.quantile(draws, [tail, 1.0 - tail])
    return float(low), float(high)
