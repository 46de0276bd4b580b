from django.conf import settings
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


class AudienceType(models.TextChoices):
    SEGMENT = "segment", "Segment"
    TRIGGER = "trigger", "Trigger event (journey)"


class ScheduleType(models.TextChoices):
    NOW = "now", "Now"
    AT = "at", "At a time"
    RECURRING = "recurring", "Recurring"
    LOCAL_TIME = "local_time", "Same local time for each recipient"


class Recurrence(models.TextChoices):
    NONE = "", "Once"
    DAILY = "daily", "Daily"
    WEEKLY = "weekly", "Weekly"


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
    # Audience: a segment (evaluated at launch), or a trigger (a journey): a customer who does
    # `trigger_event_type` and not `trigger_exit_event_type` within `trigger_delay_minutes`
    # gets the message then; `trigger_reentry_days` null means once per customer.
    audience_type = models.CharField(
        max_length=16, choices=AudienceType.choices, default=AudienceType.SEGMENT
    )
    trigger_event_type = models.CharField(max_length=32, blank=True)
    trigger_exit_event_type = models.CharField(max_length=32, blank=True)
    trigger_delay_minutes = models.PositiveIntegerField(default=60)
    trigger_reentry_days = models.PositiveIntegerField(null=True, blank=True)
    # Schedule: now, at `scheduled_at`, recurring from `scheduled_at` (each occurrence is a
    # child campaign with `parent` set, so its messages and report are its own), or on the
    # date of `scheduled_at` at `send_local_time` in each recipient's timezone.
    schedule_type = models.CharField(
        max_length=16, choices=ScheduleType.choices, default=ScheduleType.NOW
    )
    recurrence = models.CharField(
        max_length=16, choices=Recurrence.choices, default=Recurrence.NONE, blank=True
    )
    recurrence_until = models.DateTimeField(null=True, blank=True)
    send_local_time = models.TimeField(null=True, blank=True)
    parent = models.ForeignKey(
        "self", on_delete=models.SET_NULL, null=True, blank=True, related_name="occurrences"
    )
    # What the campaign cost (for ROI in reports and attribution); blank when unknown.
    cost = models.DecimalField(max_digits=12, decimal_places=2, null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )

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
            models.CheckConstraint(
                condition=Q(audience_type__in=AudienceType.values),
                name="campaign_audience_type_valid",
            ),
            models.CheckConstraint(
                condition=Q(schedule_type__in=ScheduleType.values),
                name="campaign_schedule_type_valid",
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
    RENDER_ERROR = "render_error", "Template did not render"
    NO_ENDPOINT = "no_endpoint", "No reachable address"
    # Queued rows of a cancelled campaign (campaign_cancel). Quiet hours defer a message
    # (it stays queued), they never skip it, so there is no quiet-hours reason.
    CANCELLED = "cancelled", "Campaign cancelled"


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
    # What happened after the send (first time of each; provider webhooks, the open pixel,
    # click redirects, the unsubscribe link, goal events within the campaign's window).
    delivered_at = models.DateTimeField(null=True, blank=True)
    bounced_at = models.DateTimeField(null=True, blank=True)
    opened_at = models.DateTimeField(null=True, blank=True)
    clicked_at = models.DateTimeField(null=True, blank=True)
    unsubscribed_at = models.DateTimeField(null=True, blank=True)
    converted_at = models.DateTimeField(null=True, blank=True)
    conversion_value = models.DecimalField(max_digits=12, decimal_places=2, null=True, blank=True)
    dismissed_at = models.DateTimeField(null=True, blank=True)  # in-app inbox
    # In-app only: the rendered title, body, url and icon as sent (campaigns/inbox_services.py).
    # The inbox shows what was sent; rendering again at read time would show today's
    # recommendations instead.
    payload = models.JSONField(default=dict, blank=True)
    journey_entry = models.ForeignKey(
        "JourneyEntry", on_delete=models.SET_NULL, null=True, blank=True, related_name="messages"
    )

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(status__in=MessageStatus.values), name="message_status_valid"
            ),
            models.CheckConstraint(
                condition=Q(skip_reason="") | Q(skip_reason__in=SkipReason.values),
                name="message_skip_reason_valid",
            ),
            # One delivery per recipient of a campaign (per journey entry for triggered
            # campaigns): a second dispatch reuses the row (and its key and variant) instead
            # of adding one with another key, which the provider would send again.
            models.UniqueConstraint(
                fields=["campaign", "customer", "channel", "journey_entry"],
                nulls_distinct=False,
                name="message_one_per_recipient",
            ),
        ]
        indexes = [
            # Frequency caps: a customer's sent messages in the last days, per channel.
            models.Index(fields=["customer", "channel", "sent_at"], name="message_cap"),
            models.Index(fields=["campaign", "status"], name="message_campaign_status"),
            # Conversion attribution and the in-app inbox: a customer's recent messages.
            models.Index(fields=["customer", "sent_at"], name="message_customer_sent"),
            # Stale claims (campaigns/recovery.py): rows left `sending` past the lease.
            models.Index(
                fields=["claimed_at"],
                condition=Q(status="sending"),
                name="message_claimed_sending",
            ),
            # Rollups by time of each outcome (marketing/rollups.py): most rows have no
            # outcome yet, so the indexes hold only the rows that have one.
            *(
                models.Index(
                    fields=[column],
                    condition=Q(**{f"{column}__isnull": False}),
                    name=f"message_{column}_partial",
                )
                for column in ("sent_at", "delivered_at", "opened_at", "clicked_at", "converted_at")
            ),
        ]

    def __str__(self) -> str:
        return self.idempotency_key


class JourneyStatus(models.TextChoices):
    WAITING = "waiting", "Waiting"
    SENT = "sent", "Message sent"
    EXITED = "exited", "Exited (did the exit event)"
    SKIPPED = "skipped", "Not sent (see the message)"


class JourneyEntry(models.Model):
    """A customer entering a triggered campaign: they did the trigger event at
    `triggered_at`; at `due_at` the exit event is checked and the message sent or not."""

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="entries")
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="+")
    trigger_event_id = models.BigIntegerField(null=True, blank=True)
    triggered_at = models.DateTimeField()
    due_at = models.DateTimeField()
    status = models.CharField(
        max_length=16, choices=JourneyStatus.choices, default=JourneyStatus.WAITING
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["campaign", "customer", "triggered_at"], name="journey_entry_unique"
            ),
            models.CheckConstraint(
                condition=Q(status__in=JourneyStatus.values), name="journey_status_valid"
            ),
        ]
        indexes = [
            models.Index(
                fields=["due_at"],
                condition=Q(status="waiting"),
                name="journey_entry_due",
            ),
            models.Index(fields=["campaign", "customer"], name="journey_entry_customer"),
        ]

    def __str__(self) -> str:
        return f"{self.campaign_id}:{self.customer_id}@{self.triggered_at:%Y-%m-%d %H:%M}"
