"""Reads for the segment detail page: the rule in words, how a fixed list was made, and the
size history as a plotly figure."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta

from profiles.models import Segment, SegmentKind, SegmentSnapshot
from profiles.segments.rules import rules_describe, rules_segment_refs
from profiles.segments.selectors import segment_rule_users, segment_scores_are_distances

# What the page says about each key of `Segment.definition`, in this order; keys not named
# here are shown under their own name.
DEFINITION_LABELS = {
    "source": "Source",
    "file_name": "File",
    "column": "Matched on column",
    "rows": "Rows read",
    "matched": "Matched",
    "unknown": "Unknown",
    "duplicates": "Duplicates",
    "members": "Members imported",
    "imported_at": "Imported at",
    "description": "Cluster",
    "run": "Clustering run",
    "cluster": "Cluster number",
    "silhouette": "Silhouette",
    "item": "Affinity for item",
    "expression": "Affinity for",
    "model_version": "Model version",
    "algorithm": "Algorithm",
    "aggregate": "Aggregate",
    "customers_scored": "Customers scored",
    "score": "Score",
}
SOURCE_LABELS = {
    "import": "Imported file",
    "cluster": "k-means cluster",
    "item_affinity": "Affinity for an item",
    "attribute_affinity": "Affinity for items matching an expression",
}
# Bookkeeping that means nothing to a reader of the page.
DEFINITION_HIDDEN = frozenset({"report", "job", "scored_note", "seconds", "model_source"})


def segment_rules_in_words(*, segment: Segment, names: Mapping[int, str] | None = None) -> str:
    """The rule of a rule segment in words, with the names of the segments it refers to
    (from `names` when given, e.g. for a list of segments)."""
    if segment.kind != SegmentKind.RULES or not segment.rules.get("conditions"):
        return ""
    if names is None:
        refs = rules_segment_refs(segment.rules)
        names = dict(Segment.objects.filter(pk__in=refs).values_list("pk", "name")) if refs else {}
    return rules_describe(segment.rules, names)


def segment_definition_rows(*, segment: Segment) -> list[tuple[str, object]]:
    """How an imported or machine-learned segment was made, as (label, value) rows."""
    definition = segment.definition or {}
    keys = [k for k in DEFINITION_LABELS if k in definition]
    keys += sorted(k for k in definition if k not in DEFINITION_LABELS)
    rows: list[tuple[str, object]] = []
    for key in keys:
        if key in DEFINITION_HIDDEN:
            continue
        value = definition[key]
        if key == "source":
            value = SOURCE_LABELS.get(value, value)
        elif isinstance(value, bool):
            value = "yes" if value else "no"
        elif key == "cluster" and isinstance(value, int):
            value += 1
        elif isinstance(value, dict | list):
            continue
        rows.append((DEFINITION_LABELS.get(key, key.replace("_", " ").capitalize()), value))
    return rows


def segment_history_layout(*, snapshots: list[SegmentSnapshot]) -> dict:
    """The chart's layout; a single count is shown within a day around it (plotly would
    otherwise zoom its time axis to milliseconds)."""
    layout: dict = {"height": 320, "yaxis": {"title": {"text": "members"}, "rangemode": "tozero"}}
    if len(snapshots) == 1:
        taken = snapshots[0].taken_at
        span = [
            (taken - timedelta(hours=12)).isoformat(),
            (taken + timedelta(hours=12)).isoformat(),
        ]
        layout["xaxis"] = {"type": "date", "range": span}
    return layout


def segment_history_chart(*, snapshots: list[SegmentSnapshot]) -> list[dict]:
    """One plotly line: size at each refresh, with who entered and left in the hover."""
    if not snapshots:
        return []
    return [
        {
            "type": "scatter",
            "mode": "lines+markers",
            "name": "members",
            "x": [s.taken_at.isoformat() for s in snapshots],
            "y": [s.size for s in snapshots],
            "customdata": [[s.entered, s.left] for s in snapshots],
            "hovertemplate": (
                "%{x|%Y-%m-%d %H:%M}<br>%{y:,} members<br>"
                "%{customdata[0]:,} entered, %{customdata[1]:,} left<extra></extra>"
            ),
        }
    ]


def segment_score_label(*, segment: Segment) -> str:
    """The heading of the members' score column ("" when the segment's members have none)."""
    if segment.kind != SegmentKind.MODEL:
        return ""
    if segment_scores_are_distances(segment=segment):
        return "Distance to centre"
    return "Affinity score"


def segment_used_by(*, segment: Segment) -> dict[str, list]:
    """Where the segment is used: the campaigns that target it and the rule segments that
    refer to it (either keeps it from being deleted)."""
    campaigns = list(segment.campaigns.order_by("-created_at", "-pk"))  # type: ignore[attr-defined]
    return {"campaigns": campaigns, "segments": segment_rule_users(segment=segment)}
