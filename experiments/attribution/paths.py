"""Conversion paths in columnar form: every touchpoint of every path in flat numpy arrays.

A million journeys of one to ten touches are about five million touchpoints; Python objects
per touch would cost more than all the models together. So a `Paths` is CSR-shaped: the
touches of path `p` are `touch_channel[offsets[p]:offsets[p + 1]]`, channels are small ints
indexing `channels`, and every model is a handful of vectorised passes over these arrays.

A path also carries counts rather than a flag, so the same structure holds one journey per
path (built from touchpoint rows) and the aggregated form "this path converted 12 times for
340.5 and ended without conversion 80 times" (ChannelAttribution's sample data).
"""

from dataclasses import dataclass
from functools import cached_property

import numpy as np
from numpy.typing import ArrayLike

SECONDS_PER_DAY = 86_400.0
DEFAULT_LOOKBACK_DAYS = 30.0


@dataclass(frozen=True, eq=False)
class Paths:
    """Touch sequences ending in conversions (with value) and/or non-conversions.

    `touch_age` is seconds between a touch and the end of its path (the conversion, or the
    last touch of a path that did not convert); None when the source had no timestamps,
    which only the time-decay model needs. `touch_campaign` is -1 for touches without one.
    Conversions that had no touch inside the lookback window cannot be credited to any
    channel; they are counted in `unattributed_*` instead of being dropped silently.
    """

    channels: tuple[str, ...]
    offsets: np.ndarray
    touch_channel: np.ndarray
    conversions: np.ndarray
    value: np.ndarray
    nulls: np.ndarray
    touch_age: np.ndarray | None = None
    campaigns: tuple[str, ...] = ()
    touch_campaign: np.ndarray | None = None
    unattributed_conversions: float = 0.0
    unattributed_value: float = 0.0

    def __post_init__(self) -> None:
        n = len(self.offsets) - 1
        if n < 0 or self.offsets[0] != 0 or self.offsets[-1] != len(self.touch_channel):
            raise ValueError("offsets must start at 0 and end at the number of touches")
        if (np.diff(self.offsets) < 1).any():
            raise ValueError("every path needs at least one touch")
        if not (len(self.conversions) == len(self.value) == len(self.nulls) == n):
            raise ValueError("conversions, value and nulls need one entry per path")
        if len(self.touch_channel) and (
            self.touch_channel.min() < 0 or self.touch_channel.max() >= len(self.channels)
        ):
            raise ValueError("touch_channel holds an unknown channel id")

    @property
    def n_paths(self) -> int:
        return len(self.offsets) - 1

    @property
    def n_touches(self) -> int:
        return len(self.touch_channel)

    @property
    def starts(self) -> np.ndarray:
        return self.offsets[:-1]

    @property
    def ends(self) -> np.ndarray:
        """Index of each path's last touch."""
        return self.offsets[1:] - 1

    @cached_property
    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)

    @cached_property
    def touch_path(self) -> np.ndarray:
        """Path index of every touch."""
        return np.repeat(np.arange(self.n_paths, dtype=np.int64), self.lengths)

    @cached_property
    def converting(self) -> "Paths":
        """Only the paths with a conversion: the only ones any model gives credit to."""
        keep = self.conversions > 0
        if keep.all():
            return self
        return self.subset(keep)

    def subset(self, keep: np.ndarray) -> "Paths":
        touch_keep = keep[self.touch_path]
        return Paths(
            channels=self.channels,
            offsets=np.concatenate(([0], np.cumsum(self.lengths[keep]))).astype(np.int64),
            touch_channel=self.touch_channel[touch_keep],
            conversions=self.conversions[keep],
            value=self.value[keep],
            nulls=self.nulls[keep],
            touch_age=None if self.touch_age is None else self.touch_age[touch_keep],
            campaigns=self.campaigns,
            touch_campaign=(
                None if self.touch_campaign is None else self.touch_campaign[touch_keep]
            ),
            unattributed_conversions=self.unattributed_conversions,
            unattributed_value=self.unattributed_value,
        )

    def channel_id(self, name: str) -> int | None:
        """Id of a channel by case-insensitive name, None when absent."""
        lowered = name.strip().lower()
        for i, channel in enumerate(self.channels):
            if channel.lower() == lowered:
                return i
        return None


def _factorize(values: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    uniques, codes = np.unique(np.asarray(values), return_inverse=True)
    return uniques, codes.astype(np.int64).ravel()


def _codes(
    values: ArrayLike, names: tuple[str, ...] | None, *, what: str
) -> tuple[tuple[str, ...], np.ndarray]:
    """(names, int codes) with -1 for empty values; ints pass through when names are given."""
    arr = np.asarray(values)
    if np.issubdtype(arr.dtype, np.integer):
        if names is None:
            raise ValueError(f"integer {what} ids need {what} names")
        if len(arr) and arr.max() >= len(names):
            raise ValueError(f"{what} id out of range")
        return names, arr.astype(np.int64)
    uniques, codes = _factorize(arr.astype(str))
    names_all = [str(u) for u in uniques]
    if "" in names_all:
        empty = names_all.index("")
        codes = np.where(codes == empty, -1, codes - (codes > empty))
        names_all.remove("")
    return tuple(names_all), codes


def _in_order(journey: np.ndarray, ts: np.ndarray, conv: np.ndarray) -> bool:
    """Whether rows already come grouped by journey in time order (as a query ordered by
    customer and time returns them): one linear pass instead of a three-key sort, which is
    the most expensive step on millions of rows. Journeys only need to be contiguous."""
    if len(journey) < 2:
        return True
    same = journey[1:] == journey[:-1]
    later = (ts[1:] > ts[:-1]) | ((ts[1:] == ts[:-1]) & (conv[1:] >= conv[:-1]))
    if not (~same | later).all():
        return False
    firsts = journey[np.concatenate(([0], np.flatnonzero(~same) + 1))]
    if (firsts[1:] > firsts[:-1]).all():
        return True
    firsts = np.sort(firsts)
    return bool((firsts[1:] != firsts[:-1]).all())


def paths_from_touchpoints(
    *,
    journey_ids: ArrayLike,
    timestamps: ArrayLike,
    channels: ArrayLike,
    conversions: ArrayLike,
    values: ArrayLike | None = None,
    campaigns: ArrayLike | None = None,
    channel_names: tuple[str, ...] | None = None,
    campaign_names: tuple[str, ...] | None = None,
    lookback_days: float | None = DEFAULT_LOOKBACK_DAYS,
) -> Paths:
    """Build paths from touchpoint rows (one row per touch, any order).

    Rows are grouped by journey and sorted by time (a conversion row sorts after touches with
    the same timestamp; otherwise ties keep input order). A row with the conversion flag ends
    a path, and the touches after it start the next one, so a customer who buys twice yields
    two paths and no touch is credited for two conversions. Rows after the last conversion
    form a non-converting path. A conversion row with a channel is itself a touch (an ad that
    was clicked and converted); one with an empty channel just marks the conversion (a
    purchase event). Empty channels are allowed only on conversion rows; empty campaigns are.

    The lookback window keeps touches at most `lookback_days` before the path's end: the
    conversion, or the last touch for paths that did not convert. None keeps everything.
    `timestamps` are seconds (e.g. unix time); `channels` / `campaigns` are strings, or int
    ids together with `channel_names` / `campaign_names`.
    """
    ts = np.asarray(timestamps, dtype=np.float64)
    conv = np.asarray(conversions).astype(bool)
    n = len(ts)
    val = np.zeros(n) if values is None else np.asarray(values, dtype=np.float64)
    channel_tuple, ch = _codes(channels, channel_names, what="channel")
    if campaigns is None:
        campaign_tuple: tuple[str, ...] = ()
        camp = None
    else:
        campaign_tuple, camp = _codes(campaigns, campaign_names, what="campaign")
    journey = np.asarray(journey_ids)
    if journey.dtype == object:
        journey = journey.astype(str)
    same_length = len(journey) == len(conv) == len(val) == len(ch) == n
    if not same_length or (camp is not None and len(camp) != n):
        raise ValueError("all touchpoint columns must have the same length")
    if ((ch < 0) & ~conv).any():
        raise ValueError("a touchpoint without a channel must be a conversion")

    if not _in_order(journey, ts, conv):
        order = np.lexsort((conv, ts, journey))
        journey, ts, conv, val, ch = journey[order], ts[order], conv[order], val[order], ch[order]
        if camp is not None:
            camp = camp[order]

    new_path = np.ones(n, dtype=bool)
    if n:
        new_path[1:] = (journey[1:] != journey[:-1]) | conv[:-1]
    row_starts = np.flatnonzero(new_path)
    row_ends = np.append(row_starts[1:], n) - 1
    n_rows_paths = len(row_starts)
    path_of_row = np.repeat(np.arange(n_rows_paths), row_ends - row_starts + 1)
    path_converted = conv[row_ends] if n else np.zeros(0, dtype=bool)
    path_value = np.where(path_converted, val[row_ends], 0.0) if n else np.zeros(0)

    age = ts[row_ends][path_of_row] - ts if n else np.zeros(0)
    keep = ch >= 0
    if lookback_days is not None:
        keep &= age <= lookback_days * SECONDS_PER_DAY
    kept_per_path = np.bincount(path_of_row[keep], minlength=n_rows_paths)
    has_touch = kept_per_path > 0
    lost = path_converted & ~has_touch

    return Paths(
        channels=channel_tuple,
        offsets=np.concatenate(([0], np.cumsum(kept_per_path[has_touch]))).astype(np.int64),
        touch_channel=ch[keep],
        conversions=path_converted[has_touch].astype(np.float64),
        value=path_value[has_touch],
        nulls=(~path_converted[has_touch]).astype(np.float64),
        touch_age=age[keep],
        campaigns=campaign_tuple,
        touch_campaign=None if camp is None else camp[keep],
        unattributed_conversions=float(lost.sum()),
        unattributed_value=float(path_value[lost].sum()),
    )


def paths_from_sequences(
    sequences: list[list[str]],
    *,
    conversions: ArrayLike,
    values: ArrayLike,
    nulls: ArrayLike,
) -> Paths:
    """Aggregated paths without timestamps: one entry per distinct channel sequence with its
    number of conversions, their total value and its number of non-converting journeys."""
    names = sorted({c for seq in sequences for c in seq})
    ids = {c: i for i, c in enumerate(names)}
    lengths = np.array([len(s) for s in sequences], dtype=np.int64)
    return Paths(
        channels=tuple(names),
        offsets=np.concatenate(([0], np.cumsum(lengths))).astype(np.int64),
        touch_channel=np.array([ids[c] for s in sequences for c in s], dtype=np.int64),
        conversions=np.asarray(conversions, dtype=np.float64),
        value=np.asarray(values, dtype=np.float64),
        nulls=np.asarray(nulls, dtype=np.float64),
    )
