"""Clustering runs and their assignments (imported into profiles/models.py so Django
registers them)."""

from django.conf import settings
from django.db import models

from profiles.models import Customer


class ClusterRun(models.Model):
    """One k-means run over the customers' behavioural features (profiles/segments/
    clustering.py). Its progress and failure live in `job`; `k` is set once it is done."""

    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    job = models.ForeignKey(
        "marketing.Job", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    # k_min, k_max, k (fixed or null), features (the columns used, once loaded).
    params = models.JSONField(default=dict, blank=True)
    customers = models.PositiveIntegerField(default=0)
    k = models.PositiveSmallIntegerField(null=True, blank=True)
    silhouette = models.FloatField(null=True, blank=True)
    silhouette_by_k = models.JSONField(default=dict, blank=True)
    # Per cluster: index, size, share, description, centroid {feature: mean}, zscores.
    clusters = models.JSONField(default=list, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]

    def __str__(self) -> str:
        return f"cluster run #{self.pk}"


class ClusterAssignment(models.Model):
    """Which cluster of a run a customer fell in, and how far from its centre (in standard
    deviations of the scaled features): written in bulk by `cluster_run_execute`."""

    run = models.ForeignKey(ClusterRun, on_delete=models.CASCADE, related_name="assignments")
    customer = models.ForeignKey(
        Customer, on_delete=models.CASCADE, related_name="cluster_assignments"
    )
    cluster = models.PositiveSmallIntegerField()
    distance = models.FloatField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["run", "customer"], name="cluster_assignment_unique"),
        ]
        indexes = [
            models.Index(fields=["run", "cluster"], name="cluster_assignment_cluster"),
            models.Index(fields=["customer"], name="cluster_assignment_customer"),
        ]

    def __str__(self) -> str:
        return f"{self.customer_id} in cluster {self.cluster} of run {self.run_id}"
