"""Rollup tables of the live dashboard: pre-aggregated counters per minute, hour and day.

The dashboard reads only these (and Redis for the minute not flushed yet), never the raw
events: a 30-day window is 30 day rows per metric whatever the event volume.
"""

from django.db import models
from django.db.models import Q


class RollupGrain(models.TextChoices):
    MINUTE = "minute", "Minute"
    HOUR = "hour", "Hour"
    DAY = "day", "Day"


class MetricRollup(models.Model):
    """One counter of one time bucket: `metric` names what is counted (events, revenue,
    messages, offer_shown, item_view, active...), `key` the dimension (event type,
    "channel:stage", offer or item id; empty for totals). The unique index is both the
    upsert target and the read path of a window; (grain, bucket) serves the pruning."""

    grain = models.CharField(max_length=8, choices=RollupGrain.choices)
    bucket = models.DateTimeField()
    metric = models.CharField(max_length=32)
    key = models.CharField(max_length=160, blank=True, default="")
    value = models.FloatField(default=0)

    class Meta:
        constraints = [
            # Metric before bucket: a window reads each metric as one index range (the items'
            # rows, most of a bucket, are skipped), index-only thanks to the included value.
            models.UniqueConstraint(
                fields=["grain", "metric", "bucket", "key"],
                include=["value"],
                name="metricrollup_unique",
            ),
            models.CheckConstraint(
                condition=Q(grain__in=RollupGrain.values), name="metricrollup_grain_valid"
            ),
        ]
        indexes = [models.Index(fields=["grain", "bucket"], name="metricrollup_grain_bucket")]

    def __str__(self) -> str:
        return f"{self.grain} {self.bucket:%Y-%m-%d %H:%M} {self.metric}[{self.key}]={self.value}"


class RollupFlush(models.Model):
    """A batch of Redis counters already added to MetricRollup: a flush that crashed after
    its commit and runs again finds its token here and does not add the counts twice."""

    token = models.CharField(max_length=100, primary_key=True)
    flushed_at = models.DateTimeField()

    def __str__(self) -> str:
        return self.token
