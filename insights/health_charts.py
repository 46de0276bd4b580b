"""Plotly figures of the brand health page (traces and layouts as JSON-ready dicts).

Each point carries the post list's URL of what it counts (`customdata`), which the page opens
on click; campaign periods are shaded rectangles behind the sentiment chart.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime

from django.utils import timezone

from insights.selectors_health import BrandHealth

COLORS = {"positive": "#2e7d32", "neutral": "#9e9e9e", "negative": "#c62828"}
PostsUrl = Callable[..., str]


def health_figures(health: BrandHealth, posts_url: PostsUrl) -> dict[str, dict]:
    """{"volume" | "sentiment" | "voice": {"data": traces, "layout": layout}}."""
    dates = health.window.dates
    x = [d.isoformat() for d in dates]
    brand = health.brand.pk

    def day_urls(label: str = "") -> list[str]:
        return [posts_url(brand=brand, sentiment=label, first=d, last=d) for d in dates]

    volume = {
        "data": [
            {
                "type": "bar",
                "name": "mentions",
                "x": x,
                "y": health.series(),
                "customdata": day_urls(),
                "marker": {"color": "#1565c0"},
                "showlegend": False,
                "hovertemplate": "%{x}: %{y:,} mentions<extra></extra>",
            }
        ]
        if health.total
        else [],
        "layout": {
            "height": 260,
            "xaxis": {"tickformat": "%b %d"},
            "yaxis": {"rangemode": "tozero"},
        },
    }
    sentiment_traces = []
    for label in ("positive", "neutral", "negative"):
        sentiment_traces.append(
            {
                "type": "scatter",
                "mode": "lines+markers",
                "name": label,
                "x": x,
                "y": health.series(label),
                "customdata": day_urls(label),
                "line": {"color": COLORS[label]},
                "hovertemplate": f"%{{x}}: %{{y:,}} {label}<extra></extra>",
            }
        )
    shapes, annotations = _campaign_shapes(health, dates)
    sentiment = {
        "data": sentiment_traces if health.positive + health.neutral + health.negative else [],
        "layout": {
            "height": 300,
            "xaxis": {"tickformat": "%b %d"},
            "yaxis": {"rangemode": "tozero", "title": {"text": "mentions per day"}},
            "legend": {"orientation": "h", "y": 1.15},
            "shapes": shapes,
            "annotations": annotations,
        },
    }
    voices = list(reversed(health.voices))
    voice = {
        "data": [
            {
                "type": "bar",
                "orientation": "h",
                "x": [v.mentions for v in voices],
                "y": [v.brand.name for v in voices],
                "text": [f"{(v.share or 0) * 100:.0f}%" for v in voices],
                "textposition": "auto",
                "customdata": [
                    posts_url(brand=v.brand.pk, sentiment="", first=dates[0], last=dates[-1])
                    for v in voices
                ],
                "marker": {"color": ["#1565c0" if v.brand.is_own else "#90a4ae" for v in voices]},
                "showlegend": False,
                "hovertemplate": "%{y}: %{x:,} mentions (%{text})<extra></extra>",
            }
        ]
        if any(v.mentions for v in voices)
        else [],
        "layout": {
            "height": max(160, 40 * len(voices) + 60),
            "margin": {"l": 140, "r": 10, "t": 10, "b": 30},
        },
    }
    return {"volume": volume, "sentiment": sentiment, "voice": voice}


def _campaign_shapes(health: BrandHealth, dates: list[date]) -> tuple[list, list]:
    shapes, annotations = [], []
    for period in health.campaigns:
        shapes.append(
            {
                "type": "rect",
                "xref": "x",
                "yref": "paper",
                "x0": _plotly_time(period.start),
                "x1": _plotly_time(period.end),
                "y0": 0,
                "y1": 1,
                "fillcolor": "#ffb300",
                "opacity": 0.15,
                "line": {"width": 0},
                "layer": "below",
            }
        )
        annotations.append(
            {
                "xref": "x",
                "yref": "paper",
                "x": _plotly_time(period.start),
                "y": 1,
                "xanchor": "left",
                "yanchor": "bottom",
                "text": period.name[:30],
                "showarrow": False,
                "font": {"size": 10, "color": "#8d6e00"},
            }
        )
    return shapes, annotations


def _plotly_time(at: datetime) -> str:
    """Plotly's date axis reads local wall time without an offset."""
    return f"{timezone.localtime(at):%Y-%m-%d %H:%M}"
