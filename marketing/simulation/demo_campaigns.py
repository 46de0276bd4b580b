"""The demo's campaigns, sent for real: what a marketer opening the demo sees working.

"Weekly picks" (email, variants A and B, 10% holdout, goal: a purchase within 72 hours) is
launched and its audience dispatched eagerly, page by page, through
`campaigns.dispatch.messages_send_batch` and the configured provider (the file outbox in the
demo). Dispatch stamps its messages with the current time, so the recipients' reactions are
simulated after it, from the simulated store's hidden tastes, and recorded through the same
services the webhooks, the open pixel and the click redirect use:

- delivered or bounced, opened, clicked: `messages_outcomes_record` for all the messages in
  one statement, then `message_events_record` for the `email_open` / `email_click` profile
  events, as a provider's webhook delivery does (`message_open_record` and
  `message_click_record` are the same for one message);
- opens: variant A's subject is generic, B's names the first recommended item, so B opens
  more often the more the customer truly likes that item;
- clicks, on one of the recommended items, likelier for items the customer likes;
- purchases (profile events through `events_ingest`): some clickers buy the clicked item, and
  everyone (the holdout too) may buy something on their own at a lower baseline rate, so
  `conversions_attribute_new` credits conversions and the report shows the lift;
- some clickers who do not buy leave the clicked item in their cart (`add_to_cart` events),
  which the "Abandoned cart" journey, active before the send, picks up: its emails go out
  an hour after each cart unless the customer bought meanwhile (worker and beat running).

Every reaction happens within OUTCOME_HORIZON of the send: the event API accepts timestamps
at most a day ahead, and the report counts them at once. The draws are seeded by the store's
seed and the campaign name, over the messages in key order; event ids are derived from the
message keys; a campaign that has messages is not sent again: running the setup twice changes
nothing. (Which variant or holdout a customer falls in hashes their pk, so a store loaded
anew, with new pks, splits differently.)

Also: "Weekend deals" is a weekly recurring campaign scheduled from next Saturday.
"""

from __future__ import annotations

import hashlib
import logging
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np
from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from campaigns.conversions import conversions_attribute_new
from campaigns.dispatch import messages_send_batch
from campaigns.lifecycle import campaign_audience_page, campaign_finish, campaign_launch
from campaigns.models import (
    AudienceType,
    Campaign,
    CampaignStatus,
    Message,
    MessageStatus,
    MessageTemplate,
    Recurrence,
    ScheduleType,
    SkipReason,
)
from campaigns.outcomes import (
    MessageEvent,
    Outcome,
    message_events_record,
    messages_outcomes_record,
)
from campaigns.personalization import context_for_customers
from campaigns.services import VariantSpec, campaign_create, campaign_schedule, campaign_update
from marketing.simulation.store import StoreTruth
from profiles.ingest import EventRow
from profiles.models import Customer, EventType, Segment
from profiles.services import events_ingest

logger = logging.getLogger(__name__)

WEEKLY_PICKS = "Weekly picks"
ABANDONED_CART = "Abandoned cart"
WEEKEND_DEALS = "Weekend deals"
OUTCOME_HORIZON = timedelta(hours=20)
EVENT_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "marketing.simulation.demo-campaigns")
RECOMMENDED = 3  # what campaigns.personalization gives a template

_UNSUBSCRIBE = '<p><a href="{{ unsubscribe_url }}">Unsubscribe</a></p>'
_ITEM_LIST = """<ul>{% for item in recommendations %}
  <li><a href="{{ item.url }}">{{ item.title }}</a> {{ item.price | money }}</li>{% endfor %}
</ul>"""
TEMPLATES = {
    "Weekly picks A (email)": (
        "email",
        "{{ customer.first_name | first_name_or('Hello') }}, your picks of the week",
        """<p>Hi {{ customer.first_name | first_name_or('there') }},</p>
<p>We picked these for you:</p>
"""
        + _ITEM_LIST
        + _UNSUBSCRIBE,
    ),
    "Weekly picks B (email)": (
        "email",
        "{% if recommendations %}{{ recommendations.0.title }}: picked for you, "
        "{{ customer.first_name | first_name_or('friend') }}{% else %}"
        "Your picks of the week{% endif %}",
        """<p>{{ customer.first_name | first_name_or('Hi') }}, this one made us think of you:</p>
{% for item in recommendations %}<p><a href="{{ item.url }}"><img src="{{ item.image_url }}"
  alt="" width="{{ 240 if loop.first else 120 }}"><br>{{ item.title }}</a>
  {{ item.price | money }}</p>{% endfor %}"""
        + _UNSUBSCRIBE,
    ),
    "Abandoned cart (email)": (
        "email",
        "{{ customer.first_name | first_name_or('Hi') }}, you left something in your cart",
        """<p>Your cart is waiting. While you decide, you may like:</p>
"""
        + _ITEM_LIST
        + _UNSUBSCRIBE,
    ),
    "Weekend deals (email)": (
        "email",
        "This weekend only, {{ customer.first_name | first_name_or('friend') }}",
        """<p>Deals picked for you this weekend:</p>
"""
        + _ITEM_LIST
        + _UNSUBSCRIBE,
    ),
}

# Reaction model (logits over the true affinity, which is standardised per customer).
BOUNCE_RATE = 0.02
OPEN_BASE = -0.6  # variant A: the generic subject
OPEN_SUBJECT_AFFINITY = 0.9  # variant B: per unit of affinity for the item it names
OPEN_SUBJECT_BASE = -1.0
CLICK_BASE, CLICK_AFFINITY = -2.4, 0.8
BUY_AFTER_CLICK_BASE, BUY_AFTER_CLICK_AFFINITY = -2.0, 0.8
ORGANIC_BUY_RATE = 0.015  # anyone, in the horizon, without the message
CART_RATE = 0.4  # a clicker who does not buy puts the clicked item in the cart


@dataclass(frozen=True)
class Reactions:
    """Drawn reactions, aligned with the recipients given to `reactions_draw`; times are
    seconds after the send (NaN: did not happen), `clicked` is a slot into the shown items
    (-1: none), `bought` an item index (-1: none); `carted_after`: a clicker who did not
    buy the clicked item put it in the cart then (the abandoned-cart journey's trigger)."""

    bounced: np.ndarray
    opened_after: np.ndarray
    clicked_after: np.ndarray
    clicked: np.ndarray
    bought_after: np.ndarray
    bought: np.ndarray
    carted_after: np.ndarray


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def reactions_draw(
    *,
    affinity: np.ndarray,
    shown: np.ndarray,
    variant_b: np.ndarray,
    treated: np.ndarray,
    rng: np.random.Generator,
    horizon_seconds: float,
) -> Reactions:
    """The recipients' reactions (pure numpy). `affinity` (n, items) is each recipient's
    true affinity, `shown` (n, k) the recommended item indexes (-1 where fewer), `variant_b`
    whether they got variant B, `treated` whether they got a message at all (False: held
    out). Everyone may buy on their own (ORGANIC_BUY_RATE, an item drawn from their tastes);
    the treated may also open, click and buy the clicked item."""
    n = len(affinity)
    rows = np.arange(n)
    has = shown >= 0
    shown_aff = np.where(has, affinity[rows[:, None], np.maximum(shown, 0)], -np.inf)
    best = np.where(has.any(axis=1), shown_aff.max(axis=1), 0.0)
    first = np.where(has[:, 0], shown_aff[:, 0], 0.0)

    bounced = treated & (rng.random(n) < BOUNCE_RATE)
    delivered = treated & ~bounced
    p_open = np.where(
        variant_b,
        _sigmoid(OPEN_SUBJECT_BASE + OPEN_SUBJECT_AFFINITY * first),
        _sigmoid(np.full(n, OPEN_BASE)),
    )
    opened = delivered & (rng.random(n) < p_open)
    clicks = (
        opened & has.any(axis=1) & (rng.random(n) < _sigmoid(CLICK_BASE + CLICK_AFFINITY * best))
    )
    weights = np.where(has, np.exp(2.0 * np.where(has, shown_aff, 0.0)), 0.0)
    cdf = np.cumsum(weights, axis=1) / np.maximum(weights.sum(axis=1, keepdims=True), 1e-12)
    slot = np.minimum((rng.random((n, 1)) > cdf).sum(axis=1), shown.shape[1] - 1)
    clicked_aff = shown_aff[rows, slot]
    buys_clicked = clicks & (
        rng.random(n) < _sigmoid(BUY_AFTER_CLICK_BASE + BUY_AFTER_CLICK_AFFINITY * clicked_aff)
    )

    logits = 1.3 * affinity
    taste = np.exp(logits - logits.max(axis=1, keepdims=True))
    taste_cdf = np.cumsum(taste, axis=1) / taste.sum(axis=1, keepdims=True)
    organic_item = np.minimum((rng.random((n, 1)) > taste_cdf).sum(axis=1), affinity.shape[1] - 1)
    buys_organic = rng.random(n) < ORGANIC_BUY_RATE

    open_after = np.minimum(rng.exponential(90 * 60, n), horizon_seconds / 2)
    click_after = open_after + 20 + rng.exponential(180, n)
    buy_after_click = click_after + np.minimum(rng.exponential(2 * 3600, n), horizon_seconds / 3)
    organic_after = rng.random(n) * horizon_seconds
    nan = np.full(n, np.nan)
    carts = clicks & ~buys_clicked & (rng.random(n) < CART_RATE)
    cart_after = click_after + 60 + rng.random(n) * 540
    bought_after = np.where(
        buys_clicked, buy_after_click, np.where(buys_organic, organic_after, nan)
    )
    return Reactions(
        bounced=bounced,
        opened_after=np.where(opened, open_after, nan),
        clicked_after=np.where(clicks, click_after, nan),
        clicked=np.where(clicks, slot, -1),
        bought_after=bought_after,
        bought=np.where(
            buys_clicked,
            shown[rows, slot],
            np.where(buys_organic, organic_item, -1),
        ),
        carted_after=np.where(carts, cart_after, nan),
    )


def _templates() -> dict[str, MessageTemplate]:
    return {
        name: MessageTemplate.objects.update_or_create(
            name=name, defaults={"channel": channel, "subject": subject, "html_body": html}
        )[0]
        for name, (channel, subject, html) in TEMPLATES.items()
    }


def _campaign_prepare(
    name: str, fields: dict, variants: list[tuple[str, MessageTemplate]]
) -> Campaign:
    """The named campaign as a draft with these fields and variants: created, or updated
    while a draft. Once scheduled, active or sent it is left as it is (a second setup must
    not move a recurring campaign's next occurrence)."""
    campaign = Campaign.objects.filter(name=name, parent=None).order_by("pk").first()
    if campaign is None:
        specs = [VariantSpec(name=n, template=t) for n, t in variants]
        return campaign_create(fields={"name": name, **fields}, variants=specs)
    if campaign.status != CampaignStatus.DRAFT:
        return campaign
    kept = dict(campaign.variants.values_list("name", "pk"))
    specs = [VariantSpec(name=n, template=t, pk=kept.get(n)) for n, t in variants]
    return campaign_update(campaign=campaign, fields=fields, variants=specs)


def _weekly_picks_send(templates: dict[str, MessageTemplate]) -> Campaign | None:
    """Launch Weekly picks and dispatch its whole audience now, in this process. None when
    it has messages already (sent by an earlier setup)."""
    campaign = Campaign.objects.filter(name=WEEKLY_PICKS, parent=None).order_by("pk").first()
    if campaign is not None and campaign.messages.exists():
        return None
    if campaign is not None and campaign.status != CampaignStatus.DRAFT:
        # Demo data from before dispatch existed ("sent" without messages), or a store
        # simulated anew under a sent campaign (its messages went with the customers).
        Campaign.objects.filter(pk=campaign.pk).update(status=CampaignStatus.DRAFT)
    campaign = _campaign_prepare(
        WEEKLY_PICKS,
        {
            "channel": "email",
            "audience_type": AudienceType.SEGMENT,
            "segment": Segment.objects.get(name="Email engaged"),
            "schedule_type": ScheduleType.NOW,
            "scheduled_at": None,
            "holdout_percent": 10,
            "goal_event_type": EventType.PURCHASE,
            "goal_window_hours": 72,
        },
        [("A", templates["Weekly picks A (email)"]), ("B", templates["Weekly picks B (email)"])],
    )
    campaign = campaign_launch(campaign=campaign)
    # The fan-out campaign_launch enqueued finds the campaign done and stops: eager here,
    # so the outcomes can be simulated before the demo starts.
    after = 0
    while pks := campaign_audience_page(
        campaign=campaign, after_pk=after, limit=settings.DISPATCH_BATCH_SIZE
    ):
        messages_send_batch(campaign=campaign, customer_ids=pks)
        after = pks[-1]
    campaign_finish(campaign_id=campaign.pk)
    return campaign


def _seed(seed: int, key: str) -> int:
    return int.from_bytes(hashlib.blake2b(f"{seed}|{key}".encode(), digest_size=8).digest())


def _event_id(key: str, kind: str) -> uuid.UUID:
    return uuid.uuid5(EVENT_NAMESPACE, f"{key}|{kind}")


def _store_event(
    m: Message, customer: str, kind: str, item: str, value: float | None, at: datetime
) -> EventRow:
    """A storefront event caused by message `m` (its id derived from the message key)."""
    return EventRow(
        event_id=_event_id(m.idempotency_key, kind),
        customer_id=customer,
        type=kind,
        item_id=item,
        value=value,
        channel="web",
        campaign_id=None,
        occurred_at=at,
        properties={},
    )


def _outcomes_simulate(campaign: Campaign, truth: StoreTruth) -> dict[str, int]:
    """Draw and record the reactions to the campaign's sent messages and its holdout."""
    rows = list(
        Message.objects.filter(campaign=campaign)
        .filter(
            Q(status=MessageStatus.SENT)
            | Q(status=MessageStatus.SKIPPED, skip_reason=SkipReason.HOLDOUT)
        )
        .order_by("idempotency_key")
    )
    if not rows:
        return {}
    customers = dict(
        Customer.objects.filter(pk__in={m.customer_id for m in rows}).values_list(
            "pk", "external_id"
        )
    )
    index_of = {e: i for i, e in enumerate(truth.customer_external_ids)}
    item_index = {e: i for i, e in enumerate(truth.item_external_ids)}
    rows = [m for m in rows if customers.get(m.customer_id) in index_of]
    treated = np.array([m.status == MessageStatus.SENT for m in rows])
    recs = context_for_customers([m.customer_id for m in rows if m.status == MessageStatus.SENT])
    shown = np.full((len(rows), RECOMMENDED), -1, dtype=np.int64)
    urls: dict[tuple[int, int], str] = {}
    for r, m in enumerate(rows):
        for k, item in enumerate(
            recs.get(m.customer_id, {}).get("recommendations", [])[:RECOMMENDED]
        ):
            if item["id"] in item_index:
                shown[r, k] = item_index[item["id"]]
                urls[(r, k)] = item["url"] or item["id"]
    variant_names: dict[int | None, str] = dict(campaign.variants.values_list("pk", "name"))
    reactions = reactions_draw(
        affinity=truth.true_affinity_block(
            np.array([index_of[customers[m.customer_id]] for m in rows])
        ),
        shown=shown,
        variant_b=np.array([variant_names.get(m.variant_id) == "B" for m in rows]),
        treated=treated,
        rng=np.random.default_rng(_seed(truth.config.seed, campaign.name)),
        horizon_seconds=OUTCOME_HORIZON.total_seconds(),
    )

    def at(m: Message, seconds: float) -> datetime:
        return (m.sent_at or m.created_at) + timedelta(seconds=float(seconds))

    # Like a provider's webhook delivery: all outcomes in one statement, then the profile
    # events of first opens and of clicks in one batch (per message, message_open_record and
    # message_click_record do the same; one by one they cost the demo 15-30 s).
    outcomes: dict[str, Outcome] = {}
    clicks: dict[str, str] = {}
    for r, m in enumerate(rows):
        if not treated[r]:
            continue
        outcome = outcomes[m.idempotency_key] = Outcome()
        outcome.note("bounced_at" if reactions.bounced[r] else "delivered_at", at(m, 5))
        if not np.isnan(reactions.opened_after[r]):
            outcome.note("opened_at", at(m, reactions.opened_after[r]))
        if reactions.clicked[r] >= 0:
            outcome.note("clicked_at", at(m, reactions.clicked_after[r]))
            clicks[m.idempotency_key] = urls[(r, int(reactions.clicked[r]))]
    recorded = messages_outcomes_record(outcomes=outcomes)
    engagement = [
        MessageEvent(rec, EventType.EMAIL_OPEN, opened_at)
        for rec in recorded
        if rec.first_open and (opened_at := outcomes[rec.key].opened_at) is not None
    ]
    engagement += [
        MessageEvent(
            rec, EventType.EMAIL_CLICK, clicked_at, clicks[rec.key], {"url": clicks[rec.key]}
        )
        for rec in recorded
        if rec.first_click and (clicked_at := outcomes[rec.key].clicked_at) is not None
    ]
    message_events_record(events=engagement)
    opened = sum(rec.first_open for rec in recorded)
    clicked = sum(rec.first_click for rec in recorded)
    store_events: list[EventRow] = []
    for r, m in enumerate(rows):
        slot = int(reactions.clicked[r])
        if not np.isnan(reactions.carted_after[r]):
            item = int(shown[r, slot])
            store_events.append(
                _store_event(
                    m,
                    customers[m.customer_id],
                    EventType.ADD_TO_CART,
                    truth.item_external_ids[item],
                    None,
                    at(m, reactions.carted_after[r]),
                )
            )
        item = int(reactions.bought[r])
        if item >= 0:
            store_events.append(
                _store_event(
                    m,
                    customers[m.customer_id],
                    EventType.PURCHASE,
                    truth.item_external_ids[item],
                    round(float(truth.item_price[item]), 2),
                    at(m, reactions.bought_after[r]),
                )
            )
    ingested = events_ingest(rows=store_events).accepted if store_events else 0
    converted = 0
    while True:
        result = conversions_attribute_new()
        converted += result.converted
        if not result.more:
            break
    return {
        "sent": int(treated.sum()),
        "held_out": int((~treated).sum()),
        "bounced": int(reactions.bounced.sum()),
        "opened": opened,
        "clicked": clicked,
        "purchases": sum(e.type == EventType.PURCHASE for e in store_events),
        "carts": sum(e.type == EventType.ADD_TO_CART for e in store_events),
        "store_events_new": ingested,
        "converted": converted,
    }


def _journey_activate(templates: dict[str, MessageTemplate]) -> Campaign:
    campaign = _campaign_prepare(
        ABANDONED_CART,
        {
            "channel": "email",
            "audience_type": AudienceType.TRIGGER,
            "trigger_event_type": EventType.ADD_TO_CART,
            "trigger_exit_event_type": EventType.PURCHASE,
            "trigger_delay_minutes": 60,
            "trigger_reentry_days": 7,
            "goal_event_type": EventType.PURCHASE,
            "goal_window_hours": 72,
        },
        [("A", templates["Abandoned cart (email)"])],
    )
    if campaign.status == CampaignStatus.DRAFT:
        campaign = campaign_launch(campaign=campaign)
    return campaign


def _recurring_schedule(templates: dict[str, MessageTemplate], now: datetime) -> Campaign:
    """Weekend deals, weekly on Saturdays at 09:00 from the next one, for eight weeks."""
    today = timezone.localtime(now).replace(hour=9, minute=0, second=0, microsecond=0)
    first = today + timedelta(days=(5 - today.weekday()) % 7 or 7)
    campaign = _campaign_prepare(
        WEEKEND_DEALS,
        {
            "channel": "email",
            "audience_type": AudienceType.SEGMENT,
            "segment": Segment.objects.get(name="Big spenders"),
            "schedule_type": ScheduleType.RECURRING,
            "scheduled_at": first,
            "recurrence": Recurrence.WEEKLY,
            "recurrence_until": first + timedelta(weeks=8),
            "goal_event_type": EventType.PURCHASE,
            "goal_window_hours": 48,
        },
        [("A", templates["Weekend deals (email)"])],
    )
    if campaign.status == CampaignStatus.DRAFT:
        campaign = campaign_schedule(campaign=campaign, now=now)
    return campaign


def demo_campaigns_create(*, truth: StoreTruth) -> dict[str, int]:
    """Send Weekly picks and simulate its outcomes (once), activate the cart journey and
    schedule the recurring campaign. The store must be the one `truth` describes (loaded
    by `store_simulate`, with its demo segments). Returns what was done."""
    templates = _templates()
    counts: dict[str, int] = {}
    # First: the carts the Weekly picks clickers leave behind enter it.
    _journey_activate(templates)
    weekly = _weekly_picks_send(templates)
    if weekly is not None:
        counts.update(_outcomes_simulate(weekly, truth))
    _recurring_schedule(templates, timezone.now())
    logger.info("demo campaigns", extra=counts)
    return counts
