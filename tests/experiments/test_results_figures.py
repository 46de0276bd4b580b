"""The results page's two charts (experiments.views.results_figures): an interval is a band
while there are several days, and error bars on the point when there is only one (a band
through one point has no width to draw)."""

import json

from experiments.views import results_figures


def _results(days: list[str]) -> dict:
    n = len(days)
    return {
        "variants": [{"key": "control"}, {"key": "red"}],
        "timeline": {
            "days": days,
            "variants": {
                "control": {"value": [0.05] * n, "lower": [0.03] * n, "upper": [0.09] * n},
                "red": {"value": [0.15] * n, "lower": [0.11] * n, "upper": [0.21] * n},
            },
            "lift": {"red": {"estimate": [0.10] * n, "lower": [0.04] * n, "upper": [0.16] * n}},
        },
    }


def _named(traces: list[dict]) -> dict[str, dict]:
    return {t["name"]: t for t in traces if "name" in t}


def test_one_day_shows_each_interval_as_error_bars_in_the_variant_colour():
    figures = results_figures(_results(["2026-11-24"]))
    cumulative = _named(json.loads(figures["cumulative"]))
    lift = _named(json.loads(figures["lift"]))

    red = cumulative["red"]["error_y"]
    assert red["array"][0] == 0.21 - 0.15
    assert red["arrayminus"][0] == 0.15 - 0.11
    assert red["color"] == cumulative["red"]["line"]["color"]
    assert cumulative["control"]["error_y"]["arrayminus"][0] == 0.05 - 0.03
    assert lift["red − control"]["error_y"]["array"][0] == 0.16 - 0.10


def test_several_days_draw_bands_and_no_error_bars():
    traces = json.loads(results_figures(_results(["2026-11-23", "2026-11-24"]))["cumulative"])

    assert all("error_y" not in t for t in traces)
    bands = [t for t in traces if t.get("fill") == "tonexty"]
    assert len(bands) == 2
    assert all(t["hoverinfo"] == "skip" for t in traces if "name" not in t)
