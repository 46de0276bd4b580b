from django.db import models
from django.db.models import Q

from marketing.common.models import TimeStampedModel


class ExperimentKind(models.TextChoices):
    AB = "ab", "A/B/n test"
    HOLDOUT = "holdout", "Holdout"
    BANDIT = "bandit", "Multi-armed bandit"


class ExperimentStatus(models.TextChoices):
    DRAFT = "draft", "Draft"
    RUNNING = "running", "Running"
    STOPPED = "stopped", "Stopped"


class Experiment(TimeStampedModel):
    name = models.CharField(max_length=200, unique=True)
    kind = models.CharField(max_length=16, choices=ExperimentKind.choices, default="ab")
    status = models.CharField(max_length=16, choices=ExperimentStatus.choices, default="draft")
    hypothesis = models.TextField(blank=True)
    primary_metric = models.CharField(max_length=64, default="purchase")
    started_at = models.DateTimeField(null=True, blank=True)
    stopped_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(
                condition=Q(kind__in=ExperimentKind.values), name="experiment_kind_valid"
            ),
            models.CheckConstraint(
                condition=Q(status__in=ExperimentStatus.values), name="experiment_status_valid"
            ),
        ]

    def __str__(self) -> str:
        return self.name


class Variant(models.Model):
    experiment = models.ForeignKey(Experiment, on_delete=models.CASCADE, related_name="variants")
    name = models.CharField(max_length=100)
    weight = models.PositiveIntegerField(default=1)
    is_control = models.BooleanField(default=False)
    config = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["experiment", "pk"]
        constraints = [
            models.UniqueConstraint(fields=["experiment", "name"], name="variant_unique_name"),
        ]

    def __str__(self) -> str:
        return f"{self.experiment.name}: {self.name}"
