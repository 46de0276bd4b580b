from django.core.validators import MaxValueValidator
from django.db import models
from django.db.models import Q

from marketing.common.models import TimeStampedModel
from profiles.models import Channel, Customer, Segment


class MessageTemplate(TimeStampedModel):
    """A message in Jinja2 (see campaigns/templating.py for the parts of each channel):
    email uses subject, html_body and body (the text alternative, derived from the HTML when
    blank); SMS uses body; push and in-app use subject (the title), body, url and icon."""

    name = models.CharField(max_length=200, unique=True)
    channel = models.CharField(max_length=16, choices=Channel.choices)
    subject = models.CharField(max_length=300, blank=True)
    body = models.TextField(blank=True)
    html_body = models.TextField(blank=True)
    url = models.CharField(max_length=1000, blank=True)
    icon = models.CharField(max_length=1000, blank=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(
                condition=Q(channel__in=Channel.values), name="template_channel_valid"
            ),
        ]

    def __str__(self) -> str:
        return self.name


class CampaignStatus(models.TextChoices):
    DRAFT = "draft", "Draft"
    SCHEDULED = "scheduled", "Scheduled"
    SENDING = "sending", "Sending"
    PAUSED = "paused", "Paused"
    DONE = "done", "Done"
    # Kept for campaigns recorded before dispatch existed (the demo data uses "sent").
    SENT = "sent", "Sent"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"


class Campaign(TimeStampedModel):
    name = models.CharField(max_length=200)
    channel = models.CharField(max_length=16, choices=Channel.choices)
    status = models.CharField(
        max_length=16, choices=CampaignStatus.choices, default=CampaignStatus.DRAFT
    )
    template = models.ForeignKey(
        MessageTemplate, on_delete=models.PROTECT, null=True, blank=True, related_name="campaigns"
    )
    segment = models.ForeignKey(
        Segment, on_delete=models.PROTECT, null=True, blank=True, related_name="campaigns"
    )
    scheduled_at = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    holdout_percent = models.PositiveSmallIntegerField(
        default=0, validators=[MaxValueValidator(100)]
    )
    # Local hours of the recipient (Customer.timezone, else CAMPAIGN_DEFAULT_TIMEZONE); both
    # set means quiet from start (inclusive) to end (exclusive), wrapping past midnight.
    quiet_hours_start = models.PositiveSmallIntegerField(
        null=True, blank=True, validators=[MaxValueValidator(23)]
    )
    quiet_hours_end = models.PositiveSmallIntegerField(
        null=True, blank=True, validators=[MaxValueValidator(23)]
    )
    goal_event_type = models.CharField(max_length=32, blank=True)
    goal_window_hours = models.PositiveIntegerField(default=72)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(
                condition=Q(status__in=CampaignStatus.values), name="campaign_status_valid"
            ),
            models.CheckConstraint(
                condition=Q(holdout_percent__lte=100), name="campaign_holdout_percent_valid"
            ),
            models.CheckConstraint(
                condition=Q(channel__in=Channel.values), name="campaign_channel_valid"
            ),
        ]

    def __str__(self) -> str:
        return self.name


class CampaignVariant(TimeStampedModel):
    """One version of a campaign's message; recipients are split by `weight`."""

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="variants")
    name = models.CharField(max_length=100)
    template = models.ForeignKey(MessageTemplate, on_delete=models.PROTECT, related_name="variants")
    weight = models.PositiveIntegerField(default=1)

    class Meta:
        ordering = ["campaign", "pk"]
        constraints = [
            models.UniqueConstraint(fields=["campaign", "name"], name="variant_name_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.campaign} / {self.name}"


class MessageStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    SENDING = "sending", "Sending"
    SENT = "sent", "Sent"
    FAILED = "failed", "Failed"
    SKIPPED = "skipped", "Skipped"


class SkipReason(models.TextChoices):
    CONSENT = "consent", "No consent"
    FREQUENCY_CAP = "frequency_cap", "Frequency cap"
    HOLDOUT = "holdout", "Campaign holdout"
    GLOBAL_CONTROL = "global_control", "Global control group"
    QUIET_HOURS = "quiet_hours", "Quiet hours"
    RENDER_ERROR = "render_error", "Template did not render"
    NO_ENDPOINT = "no_endpoint", "No reachable address"


class Message(models.Model):
    """One (campaign, variant, customer, channel) delivery. The row, with its unique
    `idempotency_key`, is committed before the provider is called (see campaigns/dispatch.py);
    skipped recipients get a row too, so holdouts and caps are tracked."""

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="messages")
    variant = models.ForeignKey(
        CampaignVariant,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="messages",
    )
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="messages")
    channel = models.CharField(max_length=16, choices=Channel.choices)
    address = models.CharField(max_length=512, blank=True)
    idempotency_key = models.CharField(max_length=100, unique=True)
    status = models.CharField(
        max_length=16, choices=MessageStatus.choices, default=MessageStatus.QUEUED
    )
    skip_reason = models.CharField(max_length=32, choices=SkipReason.choices, blank=True)
    provider_message_id = models.CharField(max_length=200, blank=True)
    error = models.TextField(blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    claimed_at = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(status__in=MessageStatus.values), name="message_status_valid"
            ),
            models.CheckConstraint(
                condition=Q(skip_reason="") | Q(skip_reason__in=SkipReason.values),
                name="message_skip_reason_valid",
            ),
        ]
        indexes = [
            # Frequency caps: a customer's sent messages in the last days, per channel.
            models.Index(fields=["customer", "channel", "sent_at"], name="message_cap"),
            models.Index(fields=["campaign", "status"], name="message_campaign_status"),
        ]

    def __str__(self) -> str:
        return self.idempotency_key
