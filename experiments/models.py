import secrets

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


class MetricKind(models.TextChoices):
    CONVERSION = "conversion", "Conversion (did the event happen within the window)"
    REVENUE = "revenue", "Revenue per user (sum of the event values within the window)"
    CLICK_THROUGH = "click_through", "Click-through (clicks per exposed user)"


class Allocation(models.TextChoices):
    """How traffic is split between variants; the names are experiments.bandits' policies."""

    FIXED = "fixed", "Fixed weights (A/B/n)"
    EPSILON_GREEDY = "epsilon_greedy", "Epsilon-greedy bandit"
    UCB1 = "ucb1", "UCB1 bandit"
    THOMPSON = "thompson", "Thompson sampling bandit"


def new_salt() -> str:
    """A fresh salt per experiment, so that two experiments split the same customers
    independently (a customer's bucket in one says nothing about the other)."""
    return secrets.token_hex(8)


class Experiment(TimeStampedModel):
    key = models.SlugField(max_length=64, unique=True, help_text="The id the API uses.")
    name = models.CharField(max_length=200, unique=True)
    kind = models.CharField(max_length=16, choices=ExperimentKind.choices, default="ab")
    status = models.CharField(max_length=16, choices=ExperimentStatus.choices, default="draft")
    hypothesis = models.TextField(blank=True)
    salt = models.CharField(max_length=32, default=new_salt, editable=False)
    audience_segment = models.ForeignKey(
        "profiles.Segment",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="experiments",
        help_text="Only its members take part; empty means every customer.",
    )
    traffic_percent = models.FloatField(
        default=100.0, help_text="Share of the audience in the experiment, 0.01 to 100."
    )
    holdout_percent = models.FloatField(
        default=0.0,
        help_text="Share of the participants held out: no variant, measured as a baseline.",
    )
    metric_event_type = models.CharField(max_length=64, default="purchase")
    metric_window_days = models.PositiveSmallIntegerField(default=7)
    metric_kind = models.CharField(
        max_length=16, choices=MetricKind.choices, default=MetricKind.CONVERSION
    )
    guardrails = models.JSONField(
        default=list,
        blank=True,
        help_text='Metrics that must not get worse: [{"event_type", "window_days", "kind"}].',
    )
    allocation = models.CharField(
        max_length=16, choices=Allocation.choices, default=Allocation.FIXED
    )
    bandit_burn_in = models.PositiveIntegerField(
        default=100, help_text="Users every arm needs before a bandit reweights."
    )
    bandit_min_share = models.FloatField(
        default=0.01, help_text="The smallest share of traffic a bandit leaves an arm."
    )
    bandit_epsilon = models.FloatField(default=0.1, help_text="Exploration of epsilon-greedy.")
    started_at = models.DateTimeField(null=True, blank=True)
    stopped_at = models.DateTimeField(null=True, blank=True)
    campaign = models.OneToOneField(
        "campaigns.Campaign",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="experiment",
        help_text="A campaign run as this experiment: its dispatch picks each recipient's "
        "variant through assignment (Variant.config holds the campaign variant's id).",
    )

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(
                condition=Q(kind__in=ExperimentKind.values), name="experiment_kind_valid"
            ),
            models.CheckConstraint(
                condition=Q(status__in=ExperimentStatus.values), name="experiment_status_valid"
            ),
            models.CheckConstraint(
                condition=Q(metric_kind__in=MetricKind.values), name="experiment_metric_kind_valid"
            ),
            models.CheckConstraint(
                condition=Q(allocation__in=Allocation.values), name="experiment_allocation_valid"
            ),
            models.CheckConstraint(
                condition=Q(traffic_percent__gt=0, traffic_percent__lte=100),
                name="experiment_traffic_percent_range",
            ),
            models.CheckConstraint(
                condition=Q(holdout_percent__gte=0, holdout_percent__lt=100),
                name="experiment_holdout_percent_range",
            ),
            models.CheckConstraint(
                condition=Q(bandit_min_share__gte=0, bandit_min_share__lt=1),
                name="experiment_min_share_range",
            ),
            models.CheckConstraint(
                condition=Q(bandit_epsilon__gte=0, bandit_epsilon__lte=1),
                name="experiment_epsilon_range",
            ),
        ]

    def __str__(self) -> str:
        return self.name


class Variant(models.Model):
    """`weight` is the configured split; `allocation_weight` is the share in force now (the
    configured one normalized for fixed allocation, the last reweighting for a bandit)."""

    experiment = models.ForeignKey(Experiment, on_delete=models.CASCADE, related_name="variants")
    key = models.SlugField(max_length=64)
    name = models.CharField(max_length=100)
    weight = models.PositiveIntegerField(default=1)
    allocation_weight = models.FloatField(null=True, blank=True)
    is_control = models.BooleanField(default=False)
    config = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["experiment", "pk"]
        constraints = [
            models.UniqueConstraint(fields=["experiment", "name"], name="variant_unique_name"),
            models.UniqueConstraint(fields=["experiment", "key"], name="variant_unique_key"),
            models.UniqueConstraint(
                fields=["experiment"], condition=Q(is_control=True), name="variant_one_control"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.experiment.name}: {self.name}"


class AllocationChange(models.Model):
    """The weights in force from `changed_at` on: the history behind the propensities
    logged with exposures (inverse propensity weighting) and the allocation chart."""

    experiment = models.ForeignKey(
        Experiment, on_delete=models.CASCADE, related_name="allocation_changes"
    )
    changed_at = models.DateTimeField()
    weights = models.JSONField(help_text="Variant key to share of traffic; shares sum to 1.")
    reason = models.CharField(max_length=32, help_text="start, bandit or manual.")
    details = models.JSONField(default=dict, blank=True, help_text="e.g. the arm counts used.")

    class Meta:
        ordering = ["experiment", "changed_at", "pk"]
        indexes = [
            models.Index(fields=["experiment", "changed_at"], name="allocation_change_time"),
        ]

    def __str__(self) -> str:
        return f"{self.experiment_id} at {self.changed_at:%Y-%m-%d %H:%M}: {self.weights}"


class Exposure(models.Model):
    """A customer's first assignment in an experiment, written in batches by
    `exposures_flush` (never on the assignment path). A held-out customer has no variant.
    `propensity` is the probability the customer had of landing where they did, given the
    weights in force then."""

    experiment = models.ForeignKey(Experiment, on_delete=models.CASCADE, related_name="exposures")
    customer = models.ForeignKey(
        "profiles.Customer", on_delete=models.CASCADE, related_name="exposures"
    )
    variant = models.ForeignKey(
        Variant, on_delete=models.CASCADE, null=True, blank=True, related_name="exposures"
    )
    exposed_at = models.DateTimeField()
    propensity = models.FloatField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["experiment", "customer"], name="exposure_unique_customer"
            ),
            models.CheckConstraint(
                condition=Q(propensity__gt=0, propensity__lte=1), name="exposure_propensity_range"
            ),
        ]
        indexes = [
            models.Index(fields=["experiment", "exposed_at"], name="exposure_time"),
            models.Index(fields=["customer"], name="exposure_customer"),
        ]

    def __str__(self) -> str:
        return f"{self.customer_id} in {self.experiment_id}: {self.variant_id or 'holdout'}"


class SequentialLook(models.Model):
    """The always-valid (mSPRT) p-value of a variant against control at one daily look.

    The p-value of a look is the minimum over all looks so far (what makes it always valid
    when the results page is read every day), so each day's value is stored and the next
    look starts from the smallest one: the number shown can only go down."""

    experiment = models.ForeignKey(
        Experiment, on_delete=models.CASCADE, related_name="sequential_looks"
    )
    variant = models.ForeignKey(Variant, on_delete=models.CASCADE, related_name="+")
    metric = models.CharField(max_length=80, help_text='"primary" or a guardrail\'s event type.')
    day = models.DateField()
    p_value = models.FloatField()
    users = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["experiment", "metric", "variant", "day"]
        constraints = [
            models.UniqueConstraint(
                fields=["experiment", "variant", "metric", "day"], name="sequential_look_unique"
            ),
            models.CheckConstraint(
                condition=Q(p_value__gte=0, p_value__lte=1), name="sequential_look_p_range"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.variant_id} {self.metric} {self.day}: p={self.p_value:.4g}"
