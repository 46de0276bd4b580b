"""Data-driven attribution: Shapley values over channel coalitions.

Method (the "simplified Shapley value" of Zhao et al. 2018, "Shapley Value Methods for
Attribution Modeling in Online Advertising"):

1. A path's coalition is the set of distinct channels on it (order and repeats ignored).
2. For every coalition T seen in the data, r(T) = conversions / journeys of the paths whose
   channel set is exactly T (the coalition's conversion rate).
3. The worth of a coalition S is what its members can produce together:
   v(S) = sum of r(T) over the observed T that are subsets of S.
4. That v is a sum of unanimity games r(T) * u_T, and the Shapley value of u_T gives 1/|T|
   to each member of T. So the exact Shapley value is
   phi(j) = sum over observed T containing j of r(T) / |T|,
   one pass over the observed coalitions instead of 2^K subsets per channel; it equals the
   textbook average of marginal contributions over all orderings (the tests check both).

Coalitions are bitmasks in an int64, so up to 62 channels; the number of observed coalitions
is what the cost depends on, not 2^K. The values phi are normalised to channel weights.
"""

import numpy as np

from experiments.attribution.paths import Paths

MAX_CHANNELS = 62


def coalition_masks(paths: Paths) -> np.ndarray:
    """Bitmask of the distinct channels on each path."""
    if len(paths.channels) > MAX_CHANNELS:
        raise ValueError(
            f"Shapley attribution supports at most {MAX_CHANNELS} channels, "
            f"got {len(paths.channels)}"
        )
    bits = np.left_shift(np.int64(1), paths.touch_channel.astype(np.int64))
    if not paths.n_paths:
        return bits[:0]
    return np.bitwise_or.reduceat(bits, paths.starts)


def membership(masks: np.ndarray, n_channels: int) -> np.ndarray:
    """Boolean matrix (coalitions x channels): is the channel in the coalition."""
    return ((masks[:, None] >> np.arange(n_channels, dtype=np.int64)) & 1).astype(bool)


def coalition_rates(paths: Paths) -> tuple[np.ndarray, np.ndarray]:
    """(observed coalition masks, their conversion rates)."""
    masks, inverse = np.unique(coalition_masks(paths), return_inverse=True)
    inverse = inverse.ravel()
    conversions = np.bincount(inverse, paths.conversions, minlength=len(masks))
    journeys = np.bincount(inverse, paths.conversions + paths.nulls, minlength=len(masks))
    rates = np.divide(conversions, journeys, out=np.zeros(len(masks)), where=journeys > 0)
    return masks, rates


def shapley_values(paths: Paths) -> np.ndarray:
    """phi(j) = sum over observed coalitions T containing j of r(T) / |T| (see module doc)."""
    masks, rates = coalition_rates(paths)
    members = membership(masks, len(paths.channels))
    sizes = members.sum(axis=1)
    return (rates / np.maximum(sizes, 1)) @ members


def shapley_weights(paths: Paths) -> np.ndarray:
    values = shapley_values(paths)
    total = values.sum()
    return values / total if total > 0 else np.zeros_like(values)
