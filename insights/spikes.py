"""Is the count of the latest window a spike above the usual level? Without Django.

The usual level is the mean of the previous windows' counts; a spike is a count at or above
mean + k standard deviations and at least `min_count` (so a brand with next to no negative
mentions does not alert on its third one).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class SpikeCheck:
    count: int
    baseline: float
    threshold: float

    @property
    def is_spike(self) -> bool:
        return self.count >= self.threshold


def spike_check(*, count: int, history: Sequence[int], k: float, min_count: int) -> SpikeCheck:
    """`history` holds the counts of the previous windows (zeros included)."""
    n = len(history)
    mean = sum(history) / n if n else 0.0
    variance = sum((x - mean) ** 2 for x in history) / (n - 1) if n > 1 else 0.0
    threshold = max(float(min_count), mean + k * math.sqrt(variance))
    return SpikeCheck(count=count, baseline=mean, threshold=threshold)
