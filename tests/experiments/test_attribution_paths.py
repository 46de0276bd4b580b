"""Building paths from touchpoint rows and reading journey files (no database)."""

import numpy as np
import pytest

from experiments.attribution import JourneyFileError, paths_from_touchpoints, read_paths_file

DAY = 86_400.0


def touches(paths):
    """Each path as (channels, conversions, value)."""
    return [
        (
            [paths.channels[c] for c in paths.touch_channel[a:b]],
            float(paths.conversions[p]),
            float(paths.value[p]),
        )
        for p, (a, b) in enumerate(zip(paths.offsets[:-1], paths.offsets[1:], strict=True))
    ]


def test_rows_are_sorted_by_time_and_split_after_each_conversion():
    paths = paths_from_touchpoints(
        journey_ids=["x", "y", "x", "x", "x", "y"],
        timestamps=[3.0, 1.0, 1.0, 2.0, 5.0, 2.0],
        channels=["search", "email", "email", "social", "display", "social"],
        conversions=[0, 0, 0, 1, 0, 0],
        values=[0, 0, 0, 25.0, 0, 0],
    )
    assert touches(paths) == [
        (["email", "social"], 1.0, 25.0),
        (["search", "display"], 0.0, 0.0),
        (["email", "social"], 0.0, 0.0),
    ]
    assert paths.nulls.tolist() == [0.0, 1.0, 1.0]


def test_a_conversion_sorts_after_touches_at_the_same_time():
    paths = paths_from_touchpoints(
        journey_ids=["x", "x"],
        timestamps=[5.0, 5.0],
        channels=["", "email"],
        conversions=[1, 0],
        values=[9.0, 0],
    )
    assert touches(paths) == [(["email"], 1.0, 9.0)]


def test_lookback_window_is_measured_back_from_the_conversion():
    paths = paths_from_touchpoints(
        journey_ids=["x"] * 4 + ["y"],
        timestamps=[0.0, 20 * DAY, 39 * DAY, 50 * DAY, 0.0],
        channels=["display", "email", "search", "", "social"],
        conversions=[0, 0, 0, 1, 0],
        values=[0, 0, 0, 12.0, 0],
    )
    assert touches(paths) == [(["email", "search"], 1.0, 12.0), (["social"], 0.0, 0.0)]
    assert paths.touch_age.tolist() == [30 * DAY, 11 * DAY, 0.0]
    everything = paths_from_touchpoints(
        journey_ids=["x"] * 4,
        timestamps=[0.0, 20 * DAY, 39 * DAY, 50 * DAY],
        channels=["display", "email", "search", ""],
        conversions=[0, 0, 0, 1],
        values=[0, 0, 0, 12.0],
        lookback_days=None,
    )
    assert touches(everything) == [(["display", "email", "search"], 1.0, 12.0)]


def test_conversions_without_a_touch_in_the_window_are_counted_as_unattributed():
    paths = paths_from_touchpoints(
        journey_ids=["x", "x", "y", "y"],
        timestamps=[0.0, 31 * DAY, 0.0, DAY],
        channels=["email", "", "search", ""],
        conversions=[0, 1, 0, 1],
        values=[0, 40.0, 0, 5.0],
    )
    assert touches(paths) == [(["search"], 1.0, 5.0)]
    assert (paths.unattributed_conversions, paths.unattributed_value) == (1.0, 40.0)


def test_a_touch_without_channel_must_be_a_conversion():
    with pytest.raises(ValueError, match="without a channel"):
        paths_from_touchpoints(journey_ids=["x"], timestamps=[0.0], channels=[""], conversions=[0])


def test_integer_ids_need_names():
    paths = paths_from_touchpoints(
        journey_ids=np.array([1, 1, 2]),
        timestamps=np.array([0.0, 1.0, 0.0]),
        channels=np.array([1, 0, 1]),
        channel_names=("email", "search"),
        conversions=np.array([0, 1, 1]),
        values=np.array([0, 3.0, 4.0]),
    )
    assert touches(paths) == [(["search", "email"], 1.0, 3.0), (["search"], 1.0, 4.0)]
    with pytest.raises(ValueError, match="names"):
        paths_from_touchpoints(
            journey_ids=[1], timestamps=[0.0], channels=np.array([0]), conversions=[1]
        )


def write(tmp_path, text, name="journeys.csv"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_reading_the_journeys_format_with_iso_and_unix_timestamps(tmp_path):
    path = write(
        tmp_path,
        "journey_id,timestamp,channel,conversion,value,campaign\n"
        "1,2024-05-01T10:00:00Z,email,0,,spring\n"
        "1,1714561200,search,1,19.5,\n"  # 2024-05-01T11:00:00Z
        "2,2024-05-01T09:00:00+02:00,social,0,0,\n",
    )
    paths = read_paths_file(path)
    assert touches(paths) == [(["email", "search"], 1.0, 19.5), (["social"], 0.0, 0.0)]
    assert paths.touch_age.tolist() == [3600.0, 0.0, 0.0]
    assert paths.campaigns == ("spring",)
    assert paths.touch_campaign.tolist() == [0, -1, -1]


def test_the_touchpoint_sample_column_names_are_aliases(tmp_path):
    path = write(
        tmp_path,
        "customer_id,time,interaction,conversion,conversion_value,channel\n"
        "A1,2018-07-02T10:00:00Z,impression,0,0,Facebook\n"
        "A1,2018-07-03T10:00:00Z,conversion,1,6.5,Paid Search\n",
    )
    assert touches(read_paths_file(path)) == [(["Facebook", "Paid Search"], 1.0, 6.5)]


def test_bad_rows_are_reported_by_line_number(tmp_path):
    path = write(
        tmp_path,
        "journey_id,timestamp,channel,conversion,value\n"
        "1,2024-05-01T10:00:00Z,email,0,\n"
        "1,yesterday,email,0,\n"
        "1,2024-05-01T10:00:00Z,,0,\n"
        "1,2024-05-01T10:00:00Z,email,maybe,\n"
        "1,2024-05-01T10:00:00Z,email,1,-3\n"
        "1,2024-05-01T10:00:00Z,email,0,5\n"
        ",2024-05-01T10:00:00Z,email,0,\n"
        "1,2024-05-01T10:00:00Z,email\n",
    )
    with pytest.raises(JourneyFileError) as caught:
        read_paths_file(path)
    assert caught.value.errors == [
        "line 3: timestamp 'yesterday' is neither ISO 8601 nor unix seconds",
        "line 4: channel is empty on a row that is not a conversion",
        "line 5: conversion must be 0 or 1, got 'maybe'",
        "line 6: value must be a non-negative number, got '-3'",
        "line 7: value '5' on a row that is not a conversion",
        "line 8: journey_id is empty",
        "line 9: expected 5 columns, got 3",
    ]


def test_missing_columns_are_named(tmp_path):
    path = write(tmp_path, "journey,timestamp,channel\n1,0,email\n")
    with pytest.raises(JourneyFileError, match="missing column\\(s\\) journey_id, conversion"):
        read_paths_file(path)


def test_reading_aggregated_paths(tmp_path):
    path = write(
        tmp_path,
        "path;total_conversions;total_conversion_value;total_null\n"
        "eta > iota;2;3.5;6\n"
        "alpha;0;0;4\n",
        name="Data.csv",
    )
    paths = read_paths_file(path)
    assert touches(paths) == [(["eta", "iota"], 2.0, 3.5), (["alpha"], 0.0, 0.0)]
    assert paths.nulls.tolist() == [6.0, 4.0]
    assert paths.touch_age is None
    bad = write(
        tmp_path,
        "path;total_conversions;total_conversion_value;total_null\neta >  > iota;1;x;0\n",
        name="bad.csv",
    )
    with pytest.raises(JourneyFileError, match="line 2: path 'eta >  > iota' has an empty channel"):
        read_paths_file(bad)


def test_shuffled_rows_give_the_same_paths_as_rows_in_order():
    rng = np.random.default_rng(11)
    lengths = rng.integers(1, 6, 300)
    journey = np.repeat(np.arange(300), lengths)
    within = np.concatenate([np.arange(n) for n in lengths])
    timestamps = journey * 1000.0 + within * DAY / 3
    channels = rng.choice(["email", "search", "social"], len(journey))
    conversions = (rng.random(len(journey)) < 0.2) | (within == lengths[journey] - 1) & (
        journey % 3 == 0
    )
    values = np.where(conversions, rng.integers(1, 50, len(journey)), 0).astype(float)
    columns = {
        "journey_ids": journey,
        "timestamps": timestamps,
        "channels": channels,
        "conversions": conversions,
        "values": values,
    }
    in_order = paths_from_touchpoints(**columns)
    shuffle = rng.permutation(len(journey))
    shuffled = paths_from_touchpoints(**{k: v[shuffle] for k, v in columns.items()})
    assert touches(shuffled) == touches(in_order)
    assert shuffled.touch_age.tolist() == in_order.touch_age.tolist()
    assert in_order.conversions.sum() == conversions.sum()
