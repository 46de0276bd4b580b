from django.conf import settings
from django.db import models
from django.db.models import Q
from rest_framework_api_key.models import AbstractAPIKey

from marketing.common.models import TimeStampedModel


class Scope(models.TextChoices):
    EVENTS_WRITE = "events:write", "Send events"
    PROFILES_READ = "profiles:read", "Read customer profiles"
    PROFILES_WRITE = "profiles:write", "Change customer profiles"
    RECOMMENDATIONS_READ = "recommendations:read", "Read recommendations"
    OFFERS_READ = "offers:read", "Rank offers"
    OFFERS_WRITE = "offers:write", "Report offer rewards"
    CATALOG_WRITE = "catalog:write", "Change the catalog"
    SEGMENTS_READ = "segments:read", "Read segments and customers' memberships"
    SEGMENTS_WRITE = "segments:write", "Create and change segments"
    EXPERIMENTS_READ = "experiments:read", "Read experiments"
    EXPERIMENTS_WRITE = "experiments:write", "Create, start and stop experiments"
    EXPERIMENTS_ASSIGN = "experiments:assign", "Assign customers to experiment variants"
    MESSAGES_READ = "messages:read", "Read customers' in-app messages"
    MESSAGES_WRITE = "messages:write", "Report in-app messages read, clicked or dismissed"
    SOCIAL_WRITE = "social:write", "Send social-media posts"


class ApiKey(AbstractAPIKey):
    """A storefront's key. Only a hash of the key is stored (djangorestframework-api-key)."""

    scopes = models.JSONField(default=list, blank=True)
    rate_limit = models.CharField(
        max_length=32,
        blank=True,
        help_text="Requests per period, e.g. '6000/min'. Blank uses the API_RATE_LIMIT default.",
    )
    last_used_at = models.DateTimeField(null=True, blank=True)

    class Meta(AbstractAPIKey.Meta):
        verbose_name = "API key"
        verbose_name_plural = "API keys"

    def has_scope(self, scope: str) -> bool:
        return scope in self.scopes


class JobStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    RUNNING = "running", "Running"
    DONE = "done", "Done"
    FAILED = "failed", "Failed"


class Job(TimeStampedModel):
    """Progress of a long piece of work (import, training, dispatch) that a page polls."""

    kind = models.CharField(max_length=64)
    status = models.CharField(max_length=16, choices=JobStatus.choices, default=JobStatus.PENDING)
    done = models.PositiveBigIntegerField(default=0)
    total = models.PositiveBigIntegerField(default=0)
    message = models.CharField(max_length=500, blank=True)
    error = models.TextField(blank=True)
    result = models.JSONField(default=dict, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True
    )
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(
                condition=Q(status__in=JobStatus.values), name="job_status_valid"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind} #{self.pk} ({self.status})"

    @property
    def percent(self) -> int:
        if not self.total:
            return 100 if self.status == JobStatus.DONE else 0
        return min(100, int(100 * self.done / self.total))


from marketing.imports_models import ImportFile  # noqa: E402, F401
from marketing.rollups_models import MetricRollup, RollupFlush  # noqa: E402, F401
