"""Sufficient statistics and result containers shared by the statistics modules.

Everything here is computed from aggregates the database can produce in one GROUP BY
(counts, sums, sums of squares), never from per-user rows, so the results page costs one query
per metric whatever the traffic.
"""

import math
from dataclasses import asdict, dataclass
from typing import Any


def jsonable(value: Any) -> Any:
    """`value` with NaN and infinities turned into None (JSON has neither) and tuples into lists."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    return value


class JsonResult:
    """Mixin for result dataclasses: `to_dict()` is ready for `json.dumps` / DRF responses."""

    def to_dict(self) -> dict[str, Any]:
        return jsonable(asdict(self))  # type: ignore[call-overload]


@dataclass(frozen=True)
class Interval(JsonResult):
    """A point estimate with a two-sided (1 - alpha) interval; bounds may be NaN when undefined
    (e.g. a relative lift against a control rate of zero)."""

    estimate: float
    lower: float
    upper: float

    def contains(self, value: float) -> bool:
        return self.lower <= value <= self.upper


@dataclass(frozen=True)
class BinomialStats:
    """Users exposed (`n`) and users who converted (`successes`) in one variant."""

    n: int
    successes: int

    def __post_init__(self) -> None:
        if self.n < 0 or self.successes < 0 or self.successes > self.n:
            raise ValueError(f"need 0 <= successes <= n, got n={self.n} successes={self.successes}")

    @property
    def rate(self) -> float:
        return self.successes / self.n if self.n else math.nan

    def moments(self) -> "SampleMoments":
        """The same data as a mean of 0/1 outcomes (sample variance with n - 1)."""
        n, s = self.n, self.successes
        return SampleMoments.from_sums(n=n, total=s, total_sq=s)


@dataclass(frozen=True)
class SampleMoments:
    """Size, mean and unbiased (n - 1) variance of a per-user metric in one variant."""

    n: int
    mean: float
    variance: float

    def __post_init__(self) -> None:
        if self.n < 0 or self.variance < 0:
            raise ValueError(f"need n >= 0 and variance >= 0, got n={self.n} var={self.variance}")

    @classmethod
    def from_sums(cls, *, n: int, total: float, total_sq: float) -> "SampleMoments":
        """From SUM(x) and SUM(x*x) over the variant's users (users without the event count as 0).

        The variance uses (sum_sq - n * mean^2) / (n - 1), clipped at 0 against rounding in the
        subtraction (large revenue sums lose a few digits there)."""
        if n == 0:
            return cls(n=0, mean=math.nan, variance=0.0)
        mean = total / n
        variance = max(total_sq - n * mean * mean, 0.0) / (n - 1) if n > 1 else 0.0
        return cls(n=n, mean=mean, variance=variance)

    @property
    def standard_error(self) -> float:
        return math.sqrt(self.variance / self.n) if self.n else math.nan
