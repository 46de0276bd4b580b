"""Rule-based attribution: each model is a weight per touch that sums to 1 on every path.

The weight times the path's conversions (or value) is the touch's credit, so credit sums to
the conversion value of every conversion by construction. All functions are vectorised over
a `Paths` (callers pass only converting paths; the others get no credit anyway).
"""

import numpy as np

from experiments.attribution.paths import SECONDS_PER_DAY, Paths

DEFAULT_HALF_LIFE_DAYS = 7.0
DEFAULT_DIRECT_CHANNEL = "direct"
DEFAULT_POSITION_ENDS = 0.4


def _one_hot(paths: Paths, chosen: np.ndarray) -> np.ndarray:
    weights = np.zeros(paths.n_touches)
    weights[chosen] = 1.0
    return weights


def first_touch_weights(paths: Paths) -> np.ndarray:
    return _one_hot(paths, paths.starts)


def last_touch_weights(paths: Paths) -> np.ndarray:
    return _one_hot(paths, paths.ends)


def last_non_direct_weights(
    paths: Paths, *, direct_channel: str = DEFAULT_DIRECT_CHANNEL
) -> np.ndarray:
    """All credit to the last touch that is not direct traffic (matched case-insensitively).

    Direct visits mostly mean the customer already decided, so the channel that sent them
    before gets the credit. A path of direct touches only credits its last direct touch:
    there is nothing else to give the conversion to, and dropping it would break the sum.
    """
    direct = paths.channel_id(direct_channel)
    if direct is None:
        return last_touch_weights(paths)
    index = np.arange(paths.n_touches)
    candidates = np.where(paths.touch_channel != direct, index, -1)
    best = np.maximum.reduceat(candidates, paths.starts) if paths.n_paths else candidates[:0]
    return _one_hot(paths, np.where(best >= 0, best, paths.ends))


def linear_weights(paths: Paths) -> np.ndarray:
    return 1.0 / paths.lengths[paths.touch_path]


def time_decay_weights(
    paths: Paths, *, half_life_days: float = DEFAULT_HALF_LIFE_DAYS
) -> np.ndarray:
    """Weight 2^(-age / half-life), age measured back from the conversion, normalised per path.

    Ages are taken relative to the path's most recent touch before exponentiating: the
    normalisation cancels that shift, and it keeps old paths (no lookback window) from
    underflowing to all-zero weights.
    """
    if half_life_days <= 0:
        raise ValueError("half_life_days must be positive")
    if paths.touch_age is None:
        raise ValueError("time decay needs touch timestamps; these paths have none")
    if not paths.n_touches:
        return np.zeros(0)
    age = paths.touch_age
    newest = np.minimum.reduceat(age, paths.starts)
    weights = np.exp2(-(age - newest[paths.touch_path]) / (half_life_days * SECONDS_PER_DAY))
    return weights / np.bincount(paths.touch_path, weights)[paths.touch_path]


def position_based_weights(
    paths: Paths, *, ends_share: float = DEFAULT_POSITION_ENDS
) -> np.ndarray:
    """U-shaped: `ends_share` (40%) each to the first and last touch, the rest split evenly
    over the touches in between. One touch gets everything, two touches get half each (there
    is no middle to give the remaining 20% to)."""
    if not 0 <= ends_share <= 0.5:
        raise ValueError("ends_share must be between 0 and 0.5")
    length = paths.lengths[paths.touch_path]
    position = np.arange(paths.n_touches) - paths.starts[paths.touch_path]
    at_end = (position == 0) | (position == length - 1)
    middle = (1.0 - 2 * ends_share) / np.maximum(length - 2, 1)
    weights = np.where(at_end, ends_share, middle)
    weights = np.where(length == 2, 0.5, weights)
    return np.where(length == 1, 1.0, weights)
