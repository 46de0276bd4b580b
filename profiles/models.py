import uuid

from django.conf import settings
from django.contrib.postgres.indexes import BrinIndex
from django.db import models
from django.db.models import Func, Q
from django.db.models.fields.json import KT
from django.db.models.functions import Cast

from marketing.common.models import TimeStampedModel


class Customer(TimeStampedModel):
    """A person as the storefront knows them: `external_id` is the storefront's own id."""

    external_id = models.CharField(max_length=128, unique=True)
    is_anonymous = models.BooleanField(default=False)
    email = models.EmailField(blank=True, db_index=True)
    phone = models.CharField(max_length=32, blank=True)
    first_name = models.CharField(max_length=100, blank=True)
    last_name = models.CharField(max_length=100, blank=True)
    country = models.CharField(max_length=2, blank=True)
    timezone = models.CharField(max_length=64, blank=True)
    language = models.CharField(max_length=16, blank=True)
    birth_date = models.DateField(null=True, blank=True)
    gender = models.CharField(max_length=16, blank=True)
    attributes = models.JSONField(default=dict, blank=True)
    erased_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-pk"]

    def __str__(self) -> str:
        return self.external_id

    @property
    def full_name(self) -> str:
        return f"{self.first_name} {self.last_name}".strip()


class Channel(models.TextChoices):
    EMAIL = "email", "Email"
    SMS = "sms", "SMS"
    PUSH = "push", "Push"
    IN_APP = "in_app", "In-app"


class ChannelEndpoint(TimeStampedModel):
    """An address a message can be delivered to: an email, a phone number, a push token."""

    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="endpoints")
    channel = models.CharField(max_length=16, choices=Channel.choices)
    address = models.CharField(max_length=512)
    opted_out = models.BooleanField(default=False)
    attributes = models.JSONField(default=dict, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["customer", "channel", "address"], name="endpoint_unique_per_customer"
            ),
            models.CheckConstraint(
                condition=Q(channel__in=Channel.values), name="endpoint_channel_valid"
            ),
        ]
        indexes = [
            # Webhooks and imports look endpoints up by address.
            models.Index(fields=["channel", "address"], name="endpoint_channel_address"),
        ]

    def __str__(self) -> str:
        return f"{self.channel}:{self.address}"


class EventType(models.TextChoices):
    VIEW = "view"
    CLICK = "click"
    ADD_TO_CART = "add_to_cart"
    PURCHASE = "purchase"
    OFFER_SHOWN = "offer_shown"
    OFFER_CLICK = "offer_click"
    EMAIL_OPEN = "email_open"
    EMAIL_CLICK = "email_click"
    SMS_CLICK = "sms_click"
    PUSH_OPEN = "push_open"
    UNSUBSCRIBE = "unsubscribe"
    CUSTOM = "custom"


class EventChannel(models.TextChoices):
    WEB = "web"
    APP = "app"
    EMAIL = "email"
    SMS = "sms"
    PUSH = "push"
    POS = "pos"


class Event(models.Model):
    """One thing a customer did. Append-only; `event_id` is the storefront's idempotency key.

    `item_external_id` and `campaign_id` are plain values, not foreign keys: events outlive
    the catalog rows and campaigns they mention, and the write path must not join.
    """

    event_id = models.UUIDField(default=uuid.uuid4, unique=True)
    # The (customer, occurred_at) index serves every lookup by customer.
    customer = models.ForeignKey(
        Customer, on_delete=models.CASCADE, related_name="events", db_index=False
    )
    type = models.CharField(max_length=32, choices=EventType.choices)
    item_external_id = models.CharField(max_length=128, blank=True, default="")
    value = models.DecimalField(max_digits=12, decimal_places=2, null=True, blank=True)
    channel = models.CharField(max_length=16, choices=EventChannel.choices, blank=True, default="")
    campaign_id = models.BigIntegerField(null=True, blank=True)
    occurred_at = models.DateTimeField()
    received_at = models.DateTimeField(auto_now_add=True)
    properties = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-occurred_at"]
        indexes = [
            models.Index(fields=["customer", "occurred_at"], name="event_customer_time"),
            BrinIndex(fields=["occurred_at"], name="event_time_brin"),
            # Segment rules ("did T since X, grouped by customer") read only this index.
            models.Index(
                fields=["type", "occurred_at"],
                include=["customer", "item_external_id", "value"],
                name="event_type_time",
            ),
        ]
        constraints = [
            models.CheckConstraint(condition=Q(type__in=EventType.values), name="event_type_valid"),
        ]

    def __str__(self) -> str:
        return f"{self.type} by {self.customer_id} at {self.occurred_at:%Y-%m-%d %H:%M}"


class SegmentKind(models.TextChoices):
    RULES = "rules", "Rule-based"
    IMPORTED = "imported", "Imported list"
    MODEL = "model", "Machine-learned"


class Segment(TimeStampedModel):
    """Who a campaign or experiment reaches.

    A rule segment (`rules`, see profiles/segments/rules.py) is evaluated by one SQL query and
    its membership materialized by a Celery task; imported and machine-learned segments are a
    fixed list of members, with `definition` saying how the list was made.
    """

    name = models.CharField(max_length=200, unique=True)
    description = models.TextField(blank=True)
    kind = models.CharField(max_length=16, choices=SegmentKind.choices, default=SegmentKind.RULES)
    rules = models.JSONField(default=dict, blank=True)
    definition = models.JSONField(default=dict, blank=True)
    member_count = models.PositiveIntegerField(default=0)
    # When the membership was last materialized (rule segments) or set (the others).
    counted_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )

    class Meta:
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(
                condition=Q(kind__in=SegmentKind.values), name="segment_kind_valid"
            ),
        ]

    def __str__(self) -> str:
        return self.name


class SegmentMembership(models.Model):
    """The materialized members of a segment; written only by the segment services."""

    segment = models.ForeignKey(Segment, on_delete=models.CASCADE, related_name="memberships")
    customer = models.ForeignKey(
        Customer, on_delete=models.CASCADE, related_name="segment_memberships"
    )
    # A model score (affinity, distance to the cluster centre) where the segment has one.
    score = models.FloatField(null=True, blank=True)
    added_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["segment", "customer"], name="segment_member_unique"),
        ]
        indexes = [models.Index(fields=["customer"], name="segment_member_customer")]

    def __str__(self) -> str:
        return f"{self.customer_id} in {self.segment_id}"


class SegmentSnapshot(models.Model):
    """The size of a segment each time its membership was refreshed (the history chart)."""

    segment = models.ForeignKey(Segment, on_delete=models.CASCADE, related_name="snapshots")
    taken_at = models.DateTimeField()
    size = models.PositiveIntegerField()
    entered = models.PositiveIntegerField(default=0)
    left = models.PositiveIntegerField(default=0)
    duration_ms = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["-taken_at"]
        indexes = [models.Index(fields=["segment", "taken_at"], name="segment_snapshot_time")]

    def __str__(self) -> str:
        return f"{self.segment_id}: {self.size} at {self.taken_at:%Y-%m-%d %H:%M}"


class CustomerAlias(models.Model):
    """Another id the storefront used for a customer (e.g. an anonymous cookie id).

    Events sent with the alias land on the customer it points to.
    """

    alias = models.CharField(max_length=128, unique=True)
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="aliases")
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.alias} → {self.customer_id}"


def _epoch_to_time(value) -> Func:
    return Func(
        Cast(value, models.FloatField()),
        function="to_timestamp",
        output_field=models.DateTimeField(),
    )


class CustomerFeatures(models.Model):
    """The incrementally maintained features of one customer (see profiles/features.py)."""

    customer = models.OneToOneField(
        Customer, on_delete=models.CASCADE, primary_key=True, related_name="features"
    )
    state = models.JSONField(default=dict)
    events_applied = models.PositiveBigIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)
    # Typed copies of the values segments filter on, computed by PostgreSQL from `state` on
    # every write, so whichever service writes the state they cannot drift from it.
    orders = models.GeneratedField(
        expression=Cast(KT("state__orders"), models.IntegerField()),
        output_field=models.IntegerField(null=True),
        db_persist=True,
    )
    revenue = models.GeneratedField(
        expression=Cast(KT("state__revenue"), models.FloatField()),
        output_field=models.FloatField(null=True),
        db_persist=True,
    )
    sessions = models.GeneratedField(
        expression=Cast(KT("state__sessions"), models.IntegerField()),
        output_field=models.IntegerField(null=True),
        db_persist=True,
    )
    first_seen = models.GeneratedField(
        expression=_epoch_to_time(KT("state__first_seen")),
        output_field=models.DateTimeField(null=True),
        db_persist=True,
    )
    last_seen = models.GeneratedField(
        expression=_epoch_to_time(KT("state__last_seen")),
        output_field=models.DateTimeField(null=True),
        db_persist=True,
    )
    last_purchase = models.GeneratedField(
        expression=_epoch_to_time(KT("state__last_at__purchase")),
        output_field=models.DateTimeField(null=True),
        db_persist=True,
    )

    def __str__(self) -> str:
        return f"features of {self.customer_id}"


class FeatureBacklog(models.Model):
    """Events stored but not yet folded into their customer's features (an outbox).

    Ingestion adds rows in the transaction that stores the events; the features consumer
    deletes them in the transaction that updates the features, so each event counts once.
    """

    event_pk = models.BigIntegerField(primary_key=True)

    def __str__(self) -> str:
        return str(self.event_pk)


class ConsentPurpose(models.TextChoices):
    MARKETING_EMAIL = "marketing_email", "Marketing email"
    SMS = "sms", "SMS"
    PUSH = "push", "Push notifications"
    PERSONALIZATION = "personalization", "Personalization"


class ConsentSource(models.TextChoices):
    API = "api", "API"
    UNSUBSCRIBE_LINK = "unsubscribe_link", "Unsubscribe link"
    WEBHOOK = "webhook", "Provider webhook"
    UI = "ui", "Marketer UI"
    IMPORT = "import", "Import"
    SIMULATION = "simulation", "Simulated store"


class Consent(models.Model):
    """The current consent of one customer for one purpose. Missing means not given."""

    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="consents")
    purpose = models.CharField(max_length=32, choices=ConsentPurpose.choices)
    granted = models.BooleanField()
    source = models.CharField(max_length=32, choices=ConsentSource.choices)
    changed_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["customer", "purpose"], name="consent_one_per_purpose"),
            models.CheckConstraint(
                condition=Q(purpose__in=ConsentPurpose.values), name="consent_purpose_valid"
            ),
            models.CheckConstraint(
                condition=Q(source__in=ConsentSource.values), name="consent_source_valid"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.purpose}={'yes' if self.granted else 'no'}"


class ConsentChange(models.Model):
    """The audit trail: every change of consent, who made it and how. Never updated."""

    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="consent_changes")
    purpose = models.CharField(max_length=32, choices=ConsentPurpose.choices)
    granted = models.BooleanField()
    source = models.CharField(max_length=32, choices=ConsentSource.choices)
    actor = models.CharField(max_length=200, blank=True)
    note = models.CharField(max_length=500, blank=True)
    changed_at = models.DateTimeField(db_index=True)

    class Meta:
        ordering = ["-changed_at", "-pk"]
        indexes = [models.Index(fields=["customer", "changed_at"], name="consentchange_customer")]

    def __str__(self) -> str:
        return f"{self.purpose}={'yes' if self.granted else 'no'} by {self.source}"


class Erasure(models.Model):
    """A log of erasures. It holds the pseudonym, never the person's data."""

    pseudonym = models.CharField(max_length=64, unique=True)
    source = models.CharField(max_length=32)
    actor = models.CharField(max_length=200, blank=True)
    removed = models.JSONField(default=dict)
    erased_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-erased_at"]

    def __str__(self) -> str:
        return f"erasure of {self.pseudonym}"


from profiles.models_clusters import ClusterAssignment, ClusterRun  # noqa: E402, F401
