"""Which variant a customer gets, Django-free: pure functions of the experiment's settings
and the customer id, so that every server decides the same without reading shared state.

Each decision hashes (purpose, experiment salt, customer id) into 10,000 buckets
(campaigns.dispatch_rules.bucket, SHA-256): "traffic", "holdout" and "variant" are separate
purposes, so being in the traffic share says nothing about being held out or about the
variant, and the salt makes two experiments split the same customers independently. The
global control group hashes the customer id alone: the same customers for every experiment
and every campaign (campaigns.dispatch_rules.in_global_control).

The customer id is the storefront's id as sent (an unknown customer is hashed like any other;
an alias is hashed as itself, so send the same id every time).

With fixed weights the hash alone is sticky. A bandit changes its weights, so the same hash
can land in another variant later; experiments/serving.py keeps each customer's first
variant (Redis, then the exposure table) and calls `decide` only for new customers.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from itertools import accumulate

from campaigns.dispatch_rules import bucket, in_global_control

NOT_RUNNING = "not_running"
GLOBAL_CONTROL = "global_control"
TRAFFIC = "traffic"
NOT_IN_AUDIENCE = "not_in_audience"
HOLDOUT = "holdout"


@dataclass(frozen=True)
class VariantConfig:
    id: int
    key: str
    share: float  # in force now; the shares of an experiment sum to 1
    is_control: bool
    # What the variant serves (e.g. {"strategy": "popular"} for recommendations).
    config: dict = field(default_factory=dict, hash=False, compare=False)


@dataclass(frozen=True)
class ExperimentConfig:
    """What assignment needs of an experiment (cached per process, see serving.py)."""

    id: int
    key: str
    salt: str
    running: bool
    traffic_percent: float
    holdout_percent: float
    audience_segment_id: int | None
    adaptive: bool  # a bandit: weights change, so stickiness needs the first exposure
    variants: tuple[VariantConfig, ...]

    @cached_property
    def cumulative(self) -> tuple[float, ...]:
        return tuple(accumulate(v.share for v in self.variants))


@dataclass(frozen=True)
class Decision:
    """`reason` is empty when the customer takes part; a held-out customer is logged too
    (the baseline of the experiment) but gets no variant."""

    reason: str
    variant: VariantConfig | None = None
    propensity: float = 1.0

    @property
    def logged(self) -> bool:
        return self.reason in ("", HOLDOUT)


def shares(weights: list[float]) -> list[float]:
    """Weights as shares summing to 1 (equal shares when they sum to 0; none for none, as for
    an experiment whose variants are not defined yet)."""
    if not weights:
        return []
    total = sum(max(0.0, w) for w in weights)
    if total <= 0:
        return [1 / len(weights)] * len(weights)
    return [max(0.0, w) / total for w in weights]


def variant_point(config: ExperimentConfig, customer_id: str) -> float:
    """The customer's position in [0, 1) on the variants' cumulative shares."""
    return bucket("variant", config.salt, customer_id) / 100


def variant_at(config: ExperimentConfig, point: float) -> VariantConfig:
    """The variant whose slot of the cumulative shares contains `point`."""
    index = bisect_right(config.cumulative, point)
    if index >= len(config.variants):  # rounding left the total of the shares just under 1
        index = max(i for i, v in enumerate(config.variants) if v.share > 0)
    return config.variants[index]


def decide(
    config: ExperimentConfig,
    customer_id: str,
    *,
    global_control_percent: float,
    in_audience: Callable[[int, str], bool],
) -> Decision:
    """Whether the customer takes part and, if so, their variant under the weights in force.

    The checks run cheapest first; `in_audience(segment_id, customer_id)` (a database or
    cache lookup) is called only for customers every hash let through."""
    if not config.running:
        return Decision(NOT_RUNNING)
    if in_global_control(external_id=customer_id, percent=global_control_percent):
        return Decision(GLOBAL_CONTROL)
    if bucket("traffic", config.salt, customer_id) >= config.traffic_percent:
        return Decision(TRAFFIC)
    if config.audience_segment_id is not None and not in_audience(
        config.audience_segment_id, customer_id
    ):
        return Decision(NOT_IN_AUDIENCE)
    if bucket("holdout", config.salt, customer_id) < config.holdout_percent:
        return Decision(HOLDOUT, propensity=config.holdout_percent / 100)
    variant = variant_at(config, variant_point(config, customer_id))
    # Among participants, the chance of this variant is (1 - holdout) * share.
    return Decision("", variant, (1 - config.holdout_percent / 100) * variant.share)
