"""Run attribution models over `Paths` and collect credit per channel (and per campaign).

Every model ends as a weight per touch of a converting path, summing to 1 on each path;
credit = weight x the path's conversion value (and x its conversions for fractional
conversion counts). That is what makes credit sum to the conversion value of every
conversion in every model, and it is checked on every run.

The path-level models (first, last, last non-direct, linear, time decay, position-based) set
the weights directly. Markov and Shapley produce one weight per channel for the whole data
set; each conversion's value is then split over the distinct channels on its own path in
proportion to those weights (w_c / sum of w over the path's channels), and a channel's share
on a path is split evenly over its touches there (which is what per-campaign credit needs).
A path whose channels all have weight 0 is split evenly over them. Unlike spreading the
total value by the global weights, this never credits a channel for a conversion it did not
touch.
"""

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from experiments.attribution.heuristic import (
    DEFAULT_DIRECT_CHANNEL,
    DEFAULT_HALF_LIFE_DAYS,
    DEFAULT_POSITION_ENDS,
    first_touch_weights,
    last_non_direct_weights,
    last_touch_weights,
    linear_weights,
    position_based_weights,
    time_decay_weights,
)
from experiments.attribution.markov import markov_chain
from experiments.attribution.paths import Paths
from experiments.attribution.shapley import shapley_weights

FIRST_TOUCH = "first_touch"
LAST_TOUCH = "last_touch"
LAST_NON_DIRECT = "last_non_direct"
LINEAR = "linear"
TIME_DECAY = "time_decay"
POSITION_BASED = "position_based"
MARKOV = "markov"
SHAPLEY = "shapley"
MODELS = (
    FIRST_TOUCH,
    LAST_TOUCH,
    LAST_NON_DIRECT,
    LINEAR,
    TIME_DECAY,
    POSITION_BASED,
    MARKOV,
    SHAPLEY,
)
# Models whose channel weights are estimated from all paths, converting or not.
DATA_DRIVEN = (MARKOV, SHAPLEY)


class AttributionError(ValueError):
    """A model cannot run on these paths (e.g. time decay without timestamps)."""


@dataclass(frozen=True)
class AttributionSettings:
    direct_channel: str = DEFAULT_DIRECT_CHANNEL
    half_life_days: float = DEFAULT_HALF_LIFE_DAYS
    position_ends: float = DEFAULT_POSITION_ENDS


@dataclass(frozen=True, eq=False)
class Attribution:
    """One model's credit. `channel_weights` are the Markov normalised removal effects or the
    normalised Shapley values (None for the path-level models)."""

    model: str
    channels: tuple[str, ...]
    credit: np.ndarray
    conversions: np.ndarray
    campaigns: tuple[str, ...] = ()
    campaign_credit: np.ndarray = field(default_factory=lambda: np.zeros(0))
    channel_weights: np.ndarray | None = None
    seconds: float = 0.0

    def credit_by_channel(self) -> dict[str, float]:
        return {c: float(v) for c, v in zip(self.channels, self.credit, strict=True)}

    def conversions_by_channel(self) -> dict[str, float]:
        return {c: float(v) for c, v in zip(self.channels, self.conversions, strict=True)}


def channel_weighted_touch_weights(paths: Paths, channel_weights: np.ndarray) -> np.ndarray:
    """Per-touch weights from per-channel weights: see the module docstring."""
    k = max(len(paths.channels), 1)
    pair_key = paths.touch_path * k + paths.touch_channel
    pairs, touch_pair, touches_in_pair = np.unique(
        pair_key, return_inverse=True, return_counts=True
    )
    touch_pair = touch_pair.ravel()
    pair_path = pairs // k
    pair_weight = channel_weights[pairs % k]
    path_total = np.bincount(pair_path, pair_weight, minlength=paths.n_paths)
    unweighted = path_total[pair_path] <= 0
    pair_weight = np.where(unweighted, 1.0, pair_weight)
    path_total = np.bincount(pair_path, pair_weight, minlength=paths.n_paths)
    pair_share = pair_weight / path_total[pair_path]
    return (pair_share / touches_in_pair)[touch_pair]


def touch_weights(
    paths: Paths, *, model: str, settings: AttributionSettings | None = None
) -> tuple[np.ndarray, np.ndarray | None]:
    """(weight of every touch of `paths.converting`, summing to 1 per path; the channel
    weights for Markov and Shapley, else None)."""
    config = settings or AttributionSettings()
    converting = paths.converting
    rules: dict[str, Callable[[Paths], np.ndarray]] = {
        FIRST_TOUCH: first_touch_weights,
        LAST_TOUCH: last_touch_weights,
        LAST_NON_DIRECT: lambda p: last_non_direct_weights(p, direct_channel=config.direct_channel),
        LINEAR: linear_weights,
        TIME_DECAY: lambda p: time_decay_weights(p, half_life_days=config.half_life_days),
        POSITION_BASED: lambda p: position_based_weights(p, ends_share=config.position_ends),
    }
    if model in rules:
        try:
            return rules[model](converting), None
        except ValueError as exc:
            raise AttributionError(str(exc)) from exc
    if model == MARKOV:
        weights = markov_chain(paths).weights
    elif model == SHAPLEY:
        try:
            weights = shapley_weights(paths)
        except ValueError as exc:
            raise AttributionError(str(exc)) from exc
    else:
        raise AttributionError(f"unknown model {model!r}; choose from {', '.join(MODELS)}")
    return channel_weighted_touch_weights(converting, weights), weights


def attribute(
    paths: Paths, *, model: str, settings: AttributionSettings | None = None
) -> Attribution:
    """Credit per channel (and campaign) of one model over all conversions of `paths`."""
    started = time.perf_counter()
    converting = paths.converting
    weights, channel_weights = touch_weights(paths, model=model, settings=settings)
    touch_value = weights * converting.value[converting.touch_path]
    touch_conversions = weights * converting.conversions[converting.touch_path]
    k = len(paths.channels)
    credit = np.bincount(converting.touch_channel, touch_value, minlength=k)
    conversions = np.bincount(converting.touch_channel, touch_conversions, minlength=k)
    _check_conserved(model, credit, converting.value)
    _check_conserved(model, conversions, converting.conversions)
    campaign_credit: np.ndarray = np.zeros(len(paths.campaigns))
    if converting.touch_campaign is not None and len(paths.campaigns):
        has = converting.touch_campaign >= 0
        campaign_credit = np.bincount(
            converting.touch_campaign[has], touch_value[has], minlength=len(paths.campaigns)
        )
    return Attribution(
        model=model,
        channels=paths.channels,
        credit=credit,
        conversions=conversions,
        campaigns=paths.campaigns,
        campaign_credit=campaign_credit,
        channel_weights=channel_weights,
        seconds=time.perf_counter() - started,
    )


def _check_conserved(model: str, credit: np.ndarray, target: np.ndarray) -> None:
    total, expected = float(credit.sum()), float(target.sum())
    if not np.isclose(total, expected, rtol=1e-9, atol=1e-6):
        raise AttributionError(f"{model}: credit {total} != conversion total {expected}")


def attribute_all(
    paths: Paths,
    *,
    models: Sequence[str] = MODELS,
    settings: AttributionSettings | None = None,
) -> tuple[list[Attribution], dict[str, str]]:
    """Every model that can run; the others are returned with the reason they were skipped
    (time decay on paths without timestamps, Shapley with more than 62 channels)."""
    results, skipped = [], {}
    for model in models:
        try:
            results.append(attribute(paths, model=model, settings=settings))
        except AttributionError as exc:
            if model not in MODELS:
                raise
            skipped[model] = str(exc)
    return results, skipped


def format_table(results: Sequence[Attribution], *, digits: int = 2) -> str:
    """Channels as rows, models as columns, credit (value) in each cell, a total row."""
    if not results:
        return "(no model could run)"
    channels = results[0].channels
    header = ["channel", *[r.model for r in results]]
    rows = [
        [channel, *[f"{r.credit[i]:,.{digits}f}" for r in results]]
        for i, channel in enumerate(channels)
    ]
    rows.append(["total", *[f"{r.credit.sum():,.{digits}f}" for r in results]])
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]

    def line(cells: list[str]) -> str:
        first = cells[0].ljust(widths[0])
        return "  ".join([first, *[c.rjust(w) for c, w in zip(cells[1:], widths[1:], strict=True)]])

    return "\n".join([line(header), *[line(row) for row in rows]])
