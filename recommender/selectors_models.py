"""Reads for the Recommendations page: the metrics chart and the served versions."""

from recommender.models import ModelStatus, ModelVersion

CHART_METRICS = ("ndcg@10", "precision@10", "recall@10", "map@10", "coverage")


def modelversion_metrics_chart(*, limit: int = 60) -> list[dict]:
    """Plotly traces: holdout NDCG@10 of the ready versions over time, one line per
    algorithm (the other metrics are in the hover text)."""
    versions = (
        ModelVersion.objects.filter(status=ModelStatus.READY)
        .exclude(metrics={})
        .order_by("-created_at")
        .values("pk", "algorithm", "trained_at", "created_at", "metrics", "is_active")[:limit]
    )
    traces: dict[str, dict] = {}
    for v in reversed(list(versions)):
        trace = traces.setdefault(
            v["algorithm"],
            {
                "type": "scatter",
                "mode": "lines+markers",
                "name": v["algorithm"],
                "x": [],
                "y": [],
                "text": [],
            },
        )
        trace["x"].append((v["trained_at"] or v["created_at"]).isoformat())
        trace["y"].append(v["metrics"].get("ndcg@10"))
        trace["text"].append(
            f"#{v['pk']}{' (served)' if v['is_active'] else ''}<br>"
            + "<br>".join(f"{m}: {v['metrics'][m]}" for m in CHART_METRICS if m in v["metrics"])
        )
    return list(traces.values())


def modelversion_served() -> list[ModelVersion]:
    """The active version of each algorithm (with `ndcg`, its holdout NDCG@10), for the
    rollback controls."""
    versions = list(
        ModelVersion.objects.defer("artifact").filter(is_active=True).order_by("algorithm")
    )
    for version in versions:
        version.ndcg = version.metrics.get("ndcg@10")  # type: ignore[attr-defined]
    return versions
