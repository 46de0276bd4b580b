"""The ImportFile model (imported into marketing/models.py so Django registers it)."""

from django.conf import settings
from django.db import models
from django.db.models import Q

from marketing.common.models import TimeStampedModel


class ImportKind(models.TextChoices):
    INTERACTIONS = "interactions", "Interactions"
    ITEMS = "items", "Items"
    USERS = "users", "Users"
    ENDPOINTS = "endpoints", "Channel endpoints"
    POSTS = "posts", "Social-media posts"


class ImportStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    RUNNING = "running", "Running"
    DONE = "done", "Done"
    FAILED = "failed", "Failed"


class ImportFile(TimeStampedModel):
    """One CSV import: the uploaded file (or, from the command, the path it was read
    from), its outcome and the report of rejected rows.

    rows = imported + unchanged + rejected once done.
    """

    kind = models.CharField(max_length=16, choices=ImportKind.choices)
    status = models.CharField(
        max_length=16, choices=ImportStatus.choices, default=ImportStatus.PENDING
    )
    file = models.FileField(upload_to="imports/%Y/%m/", max_length=300, blank=True)
    source_path = models.CharField(
        max_length=1000, blank=True, help_text="Read in place (the import_csv command)."
    )
    original_name = models.CharField(max_length=255)
    size = models.PositiveBigIntegerField(default=0)
    sha256 = models.CharField(max_length=64, db_index=True)
    rows = models.PositiveBigIntegerField(default=0)
    imported = models.PositiveBigIntegerField(default=0)
    unchanged = models.PositiveBigIntegerField(default=0)
    rejected = models.PositiveBigIntegerField(default=0)
    details = models.JSONField(default=dict, blank=True)
    report = models.FileField(upload_to="imports/reports/", max_length=300, blank=True)
    error = models.TextField(blank=True)
    job = models.ForeignKey(
        "marketing.Job", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        constraints = [
            models.CheckConstraint(
                condition=Q(kind__in=ImportKind.values), name="importfile_kind_valid"
            ),
            models.CheckConstraint(
                condition=Q(status__in=ImportStatus.values), name="importfile_status_valid"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind} import #{self.pk} ({self.status})"
