"""Dispatch: one page of a launched campaign's audience through the providers, one message
row per (campaign, customer, channel, journey entry) and that row handed to the provider by
one worker at a time (the guarantee, and where it is weaker, is at the end). Launch, the
fan-out into pages, pause and resume are in campaigns/lifecycle.py.

    messages_send_batch(campaign=, customer_ids=)
                                          decide, render, record, claim, send
    message_send(message_id=)             one queued message again (the retry of a transient
                                          provider error)

The protocol for one message:
1. Decide: global control group, campaign holdout (deterministic hashes), consent and a
   reachable endpoint, frequency caps (sent messages in the last CAMPAIGN_FREQUENCY_DAYS, overall
   and on the channel). A recipient who fails any check gets a `skipped` row with the reason
   (tracked, never sent). A recipient inside the campaign's quiet hours (their timezone) gets
   no row yet: they are deferred to a batch of their own, enqueued to run when the quiet hours
   end (in steps of at most DEFER_MAX_SECONDS, below the broker's visibility timeout), which
   decides again from the start, caps included; a journey entry's batch first checks the
   exit event again (the customer may have done it while deferred).
   A recipient with a `queued` row (a retry, a resumed campaign) keeps its variant and key;
   consent, endpoint and quiet hours are checked again (not the caps: the row counts itself).
2. Render; a render error is that recipient's `failed` row, nothing is sent.
3. Frequency caps again, atomically, then INSERT: in one transaction, per-customer advisory
   locks (taken in pk order, so concurrent batches never deadlock) on the recipients about to
   get a `queued` row; under them the counts of the window's sent, `queued` and `sending`
   messages of every campaign; capped recipients get `skipped`; the rows go in with their
   unique idempotency key `campaign:variant:customer:channel` (ON CONFLICT DO NOTHING) and
   commit. Two campaigns deciding for the same customer at once are serialized, and the second
   sees the first's `queued` row, so a cap is never exceeded. The unique constraint
   `message_one_per_recipient` keeps a second row out whatever its key.
4. Claim, a chunk at a time, just before its provider calls: `queued` -> `sending` in one
   UPDATE (FOR UPDATE SKIP LOCKED), committed: only one worker ever holds a message, however
   often the task is redelivered, and a message not yet claimed is plain `queued`.
5. Call the provider for the chunk's messages concurrently (DISPATCH_SEND_THREADS threads;
   network I/O releases the GIL) with the key as its message id, then record the outcomes: one
   UPDATE ... FROM (VALUES ...) marks the chunk's accepted messages `sent` with the provider's
   ids. Transient errors the provider certainly did not take (refused connection, 408, 429)
   put the row back to `queued` and enqueue `message_send` with backoff (Retry-After when
   given) up to MAX_SEND_ATTEMPTS, then `failed`. Ambiguous ones (a timeout or dropped
   connection after the request went out, a 5xx) leave it `sending`, settled like a crash's
   claims (below), never resent blindly. Our own rate limiter's refusals put the row back
   without counting an attempt. Permanent errors are `failed`, and an unreachable endpoint is
   flagged bounced. `message_send` sends only for a sending or done campaign (a cancelled
   one's retry is `skipped`), and waits out the recipient's quiet hours.

What a crash (kill -9) can leave, and how it is settled:
- rows not inserted (the batch died before 3): the batch runs again (redelivery, or the sweeper
  in campaigns/recovery.py re-running the fan-out of a stalled campaign) and decides them;
- `queued` rows: sent by the next run of their batch or by `message_send`;
- `sending` rows: only the chunk in hand (at most DISPATCH_SEND_THREADS * SEND_CHUNK_PER_THREAD
  messages, or * SENDGRID_BATCH_SIZE with SendGrid's batched requests), whose fate is unknown.
  Once older than MESSAGE_SEND_LEASE_SECONDS (well above the provider timeout, so the dead
  worker's requests are over), `messages_resolve_stale` asks
  the provider where it can tell (SendGrid: the Email Activity API, by the `message_id` custom
  arg): accepted -> `sent`, unknown to the provider -> `queued` again and sent once. Earlier,
  a provider event naming the message (SendGrid's `processed` webhook, a Twilio status) settles
  it through `campaigns.outcomes.message_mark_accepted`. Where the provider cannot tell (Web
  Push; Twilio or SendGrid without Email Activity access, and no event came) we keep
  at-most-once: the row is `failed` with LOST_ERROR and never resent.

The guarantee: a message is handed to the provider again only when the provider certainly did
not take it (it refused or rate-limited the request, the connection was never made) or its
lookup says it does not have it; never while another worker holds it. So, at most once for
SMS and Web Push (an ambiguous error or a crash there ends `failed` with LOST_ERROR when no
status event came), and exactly once for email through SendGrid provided the activity feed
shows an accepted message within the lease (it is eventually consistent; the default lease is
5 minutes). A provider that drops a message it answered 2xx for, or the activity feed
lagging past the lease, are outside it.
"""

from __future__ import annotations

import logging
import threading
import zoneinfo
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import connection, transaction
from django.db.models import Count, F, Q
from django.utils import timezone

from campaigns.dispatch_rules import (
    cap_reached,
    in_global_control,
    in_holdout,
    local_send_wait_seconds,
    quiet_seconds_left,
    variant_index,
)
from campaigns.errors import (
    CampaignNotReadyError,
)
from campaigns.inbox_services import in_app_payload
from campaigns.journeys import journey_entry_exit_if_done, journey_entry_settle
from campaigns.models import (
    Campaign,
    CampaignStatus,
    CampaignVariant,
    Message,
    MessageStatus,
    MessageTemplate,
    ScheduleType,
    SkipReason,
)
from campaigns.personalization import context_for_customers
from campaigns.providers import (
    OutboundMessage,
    ProviderError,
    ProviderPermanentError,
    ProviderResult,
    ProviderTransientError,
    backoff_delay,
    provider_for,
    rate_limiter_for,
)
from campaigns.tasks import (
    message_send_task,
    messages_send_batch_task,
)
from campaigns.templating import (
    CompiledTemplate,
    MessageLinks,
    RenderedMessage,
    TemplateRenderError,
    render,
    template_compile,
)
from campaigns.tracking import message_links, message_track, status_callback_url
from experiments.serving import HOLDOUT, campaign_experiment, campaign_variant_assign
from profiles.consent import CHANNEL_PURPOSE, consent_filter
from profiles.models import Channel, ChannelEndpoint, Customer
from profiles.services import endpoints_mark_bounced

logger = logging.getLogger(__name__)

MAX_SEND_ATTEMPTS = 5
LOST_ERROR = "unknown after crash: the worker died after claiming it; not sent again"
# Messages claimed at once per sending thread: a crash leaves at most threads * this `sending`.
SEND_CHUNK_PER_THREAD = 4
# A stale claim the provider could not be asked about is given up after this many leases.
LOOKUP_GIVE_UP_LEASES = 12
CAP_LOCK_CLASS = 0x6361  # pg_advisory_xact_lock(class, customer): frequency caps
# Countdowns stay below the Redis visibility timeout (3600 s), or the task would be delivered
# twice; a longer quiet period is waited out in several steps.
DEFER_MAX_SECONDS = 3000


@dataclass(frozen=True)
class BatchResult:
    sent: int = 0
    skipped: int = 0
    failed: int = 0
    retrying: int = 0
    lost: int = 0
    deferred: int = 0
    # Left `sending` after an ambiguous provider error, for the settlement of claims.
    in_doubt: int = 0


@dataclass(frozen=True)
class StaleResult:
    """How stale `sending` claims were settled: the provider had them (`confirmed`), it had
    not (`requeued`, to be sent; `gave_up` when the message had used its attempts), or
    nobody can tell (`lost`)."""

    confirmed: int = 0
    requeued: int = 0
    lost: int = 0
    requeued_ids: tuple[int, ...] = ()
    gave_up: int = 0


# --- one batch ------------------------------------------------------------------------------


def message_key(
    *,
    campaign_id: int,
    variant_id: int | None,
    customer_id: int,
    channel: str,
    journey_entry_id: int | None = None,
) -> str:
    """A journey sends a customer one message per entry (campaigns/journeys.py), so the
    entry is part of its key."""
    key = f"{campaign_id}:{variant_id or 0}:{customer_id}:{channel}"
    return f"{key}:e{journey_entry_id}" if journey_entry_id else key


def _provider_verdict(message: Message) -> ProviderResult | None | str:
    """What the provider knows about a claimed message: its result, None (never got it),
    "unknown" (it cannot tell), or "later" (it could not be asked just now)."""
    try:
        lookup = getattr(provider_for(message.channel), "lookup", None)
        if lookup is None:
            return "unknown"
        return lookup(message.idempotency_key)
    except ProviderPermanentError:
        return "unknown"
    except (ProviderTransientError, ImproperlyConfigured):
        return "later"


def messages_resolve_stale(*, queryset: Any, now: Any = None) -> StaleResult:
    """Settle the `sending` rows claimed longer ago than the lease (a worker died holding
    them, or a provider answered 5xx or timed out): ask the provider, then `sent`, `queued`
    (never reached it: send it again; `failed` instead once it had MAX_SEND_ATTEMPTS, so a
    provider answering 500 forever is not called forever) or `failed` with LOST_ERROR
    (nobody can tell: at-most-once). Each row changes only if it is still the same claim, so
    two resolvers never both act on it."""
    now = now or timezone.now()
    lease = timedelta(seconds=settings.MESSAGE_SEND_LEASE_SECONDS)
    stale = list(
        queryset.filter(status=MessageStatus.SENDING, claimed_at__lt=now - lease)
        .order_by("pk")
        .only("pk", "channel", "idempotency_key", "claimed_at", "attempts", "error")
    )
    confirmed, requeued, lost, gave_up = 0, [], 0, 0
    for message in stale:
        same_claim = Message.objects.filter(
            pk=message.pk, status=MessageStatus.SENDING, claimed_at=message.claimed_at
        )
        verdict = _provider_verdict(message)
        if verdict == "later" and message.claimed_at < now - lease * LOOKUP_GIVE_UP_LEASES:
            verdict = "unknown"
        if isinstance(verdict, ProviderResult):
            confirmed += same_claim.update(
                status=MessageStatus.SENT,
                provider_message_id=verdict.provider_message_id[:200],
                sent_at=message.claimed_at,
                error="",
            )
        elif verdict is None and message.attempts >= MAX_SEND_ATTEMPTS:
            gave_up += same_claim.update(
                status=MessageStatus.FAILED,
                error=f"gave up after {message.attempts} attempts: {message.error}"[:2000],
            )
        elif verdict is None and same_claim.update(status=MessageStatus.QUEUED, claimed_at=None):
            requeued.append(message.pk)
        elif verdict == "unknown":
            lost += same_claim.update(status=MessageStatus.FAILED, error=LOST_ERROR)
    if stale:
        logger.warning(
            "stale claims settled",
            extra={
                "confirmed": confirmed,
                "requeued": len(requeued),
                "lost": lost,
                "gave_up": gave_up,
            },
        )
    return StaleResult(
        confirmed=confirmed,
        requeued=len(requeued),
        lost=lost,
        requeued_ids=tuple(requeued),
        gave_up=gave_up,
    )


def _variants(campaign: Campaign) -> list[tuple[CampaignVariant | None, MessageTemplate]]:
    variants = list(campaign.variants.select_related("template").order_by("pk"))
    if variants:
        return [(v, v.template) for v in variants]
    if campaign.template is None:
        raise CampaignNotReadyError("The campaign has no template.")
    return [(None, campaign.template)]


def _zone(tz_name: str) -> zoneinfo.ZoneInfo:
    """The recipient's timezone, else CAMPAIGN_DEFAULT_TIMEZONE."""
    try:
        return zoneinfo.ZoneInfo(tz_name or settings.CAMPAIGN_DEFAULT_TIMEZONE)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return zoneinfo.ZoneInfo(settings.CAMPAIGN_DEFAULT_TIMEZONE)


def _local_time_wait(campaign: Campaign, tz_name: str, now: Any) -> int:
    """Seconds until a same-local-time campaign's send time in the recipient's timezone, on
    the date of `scheduled_at` (the launch date when unset); 0 once it has passed, so a
    recipient whose send time was already over at launch gets the message at once."""
    if campaign.schedule_type != ScheduleType.LOCAL_TIME or campaign.send_local_time is None:
        return 0
    day = timezone.localtime(campaign.scheduled_at or campaign.started_at or now).date()
    return local_send_wait_seconds(now, on=day, at=campaign.send_local_time, zone=_zone(tz_name))


def _quiet_for(campaign: Campaign, tz_name: str, now: Any) -> int:
    """Seconds the recipient waits: until their local send time (a same-local-time
    campaign), else until their quiet hours end (0: send now)."""
    if wait := _local_time_wait(campaign, tz_name, now):
        return wait
    local = now.astimezone(_zone(tz_name))
    return quiet_seconds_left(
        local.hour * 3600 + local.minute * 60 + local.second,
        start=campaign.quiet_hours_start,
        end=campaign.quiet_hours_end,
    )


def _addresses(customer_ids: list[int], channel: str) -> tuple[dict[int, str], set[int]]:
    """({customer: first usable address}, customers whose only addresses are opted out).
    Bounced endpoints are not addresses."""
    usable: dict[int, str] = {}
    opted_out: set[int] = set()
    rows = (
        ChannelEndpoint.objects.filter(customer_id__in=customer_ids, channel=channel)
        .order_by("customer_id", "pk")
        .values_list("customer_id", "address", "opted_out", "attributes")
    )
    for customer_id, address, is_opted_out, attributes in rows:
        if (attributes or {}).get("bounced") is True:
            continue
        if is_opted_out:
            opted_out.add(customer_id)
        elif customer_id not in usable:
            usable[customer_id] = address
    return usable, opted_out - set(usable)


def _cap_counts(customer_ids: list[int], channel: str, now: Any) -> tuple[dict, dict]:
    """({customer: messages of the window}, {customer: those on `channel}`): sent in the
    last CAMPAIGN_FREQUENCY_DAYS, and `queued` or `sending` ones created in it (they are about
    to be sent, so they count against the cap too)."""
    since = now - timedelta(days=settings.CAMPAIGN_FREQUENCY_DAYS)
    overall: dict[int, int] = defaultdict(int)
    on_channel: dict[int, int] = defaultdict(int)
    rows = (
        Message.objects.filter(customer_id__in=customer_ids)
        .filter(
            Q(status=MessageStatus.SENT, sent_at__gte=since)
            | Q(status__in=(MessageStatus.QUEUED, MessageStatus.SENDING), created_at__gte=since)
        )
        .values("customer_id", "channel")
        .annotate(n=Count("pk"))
        .order_by()
    )
    for row in rows:
        overall[row["customer_id"]] += row["n"]
        if row["channel"] == channel:
            on_channel[row["customer_id"]] += row["n"]
    return overall, on_channel


def _capped(customer_id: int, overall: dict, on_channel: dict) -> bool:
    return cap_reached(
        overall=overall.get(customer_id, 0),
        on_channel=on_channel.get(customer_id, 0),
        cap=settings.CAMPAIGN_FREQUENCY_CAP,
        cap_per_channel=settings.CAMPAIGN_FREQUENCY_CAP_PER_CHANNEL,
    )


def _caps_apply_locked(rows: list[Message], *, channel: str, now: Any) -> set[str]:
    """Inside the inserting transaction: lock the customers of the new `queued` rows (advisory
    locks held until commit, taken in pk order) and check the caps again under them; capped
    rows become `skipped`. Returns their keys."""
    customer_ids = sorted({row.customer_id for row in rows})
    if not customer_ids:
        return set()
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_advisory_xact_lock(%s, (c %% 2147483648)::int) "
            "FROM (SELECT unnest(%s::bigint[]) AS c ORDER BY 1) AS customers",
            [CAP_LOCK_CLASS, customer_ids],
        )
    overall, on_channel = _cap_counts(customer_ids, channel, now)
    capped = set()
    for row in rows:
        if _capped(row.customer_id, overall, on_channel):
            row.status, row.skip_reason = MessageStatus.SKIPPED, SkipReason.FREQUENCY_CAP
            capped.add(row.idempotency_key)
        else:  # later rows of the same customer (none today) see this one
            overall[row.customer_id] += 1
            on_channel[row.customer_id] += 1
    return capped


# (attribute, SQL array type) of what a new row sets; the other columns are constants (below)
# or the nullable outcome times, left NULL.
_INSERT_COLUMNS = (
    *(("campaign_id", "bigint"), ("variant_id", "bigint"), ("customer_id", "bigint")),
    *(("channel", "text"), ("address", "text"), ("idempotency_key", "text")),
    *(("status", "text"), ("skip_reason", "text"), ("error", "text")),
    ("journey_entry_id", "bigint"),
)


def _messages_insert(rows: list[Message]) -> None:
    """INSERT the batch's new rows, those whose key exists already left out (ON CONFLICT DO
    NOTHING, as `bulk_create(ignore_conflicts=True)`). One array per column and `unnest`:
    `bulk_create` prepared 24 values per row through the model fields and sent 12,000
    parameters per batch, about 0.1 ms of CPU per email."""
    if not rows:
        return
    column = {f.attname: f.column for f in Message._meta.concrete_fields}
    columns = ", ".join(str(column[name]) for name, _ in _INSERT_COLUMNS)
    arrays = ", ".join(f"%s::{sql_type}[]" for _, sql_type in _INSERT_COLUMNS)
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {Message._meta.db_table} ({columns}, provider_message_id, attempts, "  # noqa: S608
            f"created_at, payload) SELECT *, '', 0, %s, '{{}}'::jsonb FROM unnest({arrays}) "
            "ON CONFLICT DO NOTHING",
            [
                timezone.now(),
                *([getattr(row, name) for row in rows] for name, _ in _INSERT_COLUMNS),
            ],
        )


def _skip_reason(
    campaign: Campaign,
    customer_id: int,
    *,
    external_id: str,
    consented: set[int],
    addresses: dict[int, str],
    opted_out: set[int],
    overall: dict,
    on_channel: dict,
    caps: bool = True,
) -> str:
    """Why the recipient gets no message ("" when they get one). Without `caps` for a
    `queued` row decided before: it counts against the caps itself."""
    if in_global_control(external_id=external_id, percent=settings.CAMPAIGN_GLOBAL_CONTROL_PERCENT):
        return SkipReason.GLOBAL_CONTROL
    if in_holdout(
        campaign_id=campaign.pk, customer_id=customer_id, percent=campaign.holdout_percent
    ):
        return SkipReason.HOLDOUT
    if customer_id not in consented or customer_id in opted_out:
        return SkipReason.CONSENT
    if customer_id not in addresses:
        return SkipReason.NO_ENDPOINT
    if caps and _capped(customer_id, overall, on_channel):  # again atomically before the insert
        return SkipReason.FREQUENCY_CAP
    return ""


def _render_for(
    compiled: CompiledTemplate, context: dict | None, key: str
) -> tuple[RenderedMessage, MessageLinks]:
    """The message as sent, with click tracking and the open pixel (campaigns/tracking.py),
    and its links (the provider call needs the per-message unsubscribe link again)."""
    if context is None:
        raise TemplateRenderError("the customer was erased")
    links = message_links(key)
    return message_track(render(compiled, context, links=links), key), links


def messages_send_batch(
    *, campaign: Campaign | int, customer_ids: list[int], journey_entry_id: int | None = None
) -> BatchResult:
    """Decide, render, record and send the messages of `customer_ids` (one page of the
    audience, or the customer of one journey entry). Safe to run again with the same ids:
    nothing already recorded is resent.

    A done campaign still sends the batches deferred by quiet hours or local send times (its
    fan-out is over, its recipients are not); a paused or cancelled one sends nothing."""
    if not isinstance(campaign, Campaign):
        campaign = Campaign.objects.select_related("template").get(pk=campaign)
    else:
        campaign.refresh_from_db(fields=["status"])  # paused since the caller read it?
    if campaign.status not in (CampaignStatus.SENDING, CampaignStatus.DONE) or not customer_ids:
        return BatchResult()
    if journey_entry_id and journey_entry_exit_if_done(entry_id=journey_entry_id):
        return BatchResult()  # did the exit event while deferred
    now = timezone.now()
    channel = campaign.channel
    ids = sorted(set(customer_ids))
    mine = Message.objects.filter(campaign=campaign, customer_id__in=ids, channel=channel)
    if journey_entry_id:
        mine = mine.filter(journey_entry_id=journey_entry_id)
    lost = messages_resolve_stale(queryset=mine, now=now).lost
    existing = {
        row[0]: row[1:]
        for row in mine.values_list(
            "customer_id", "status", "address", "pk", "variant_id", "idempotency_key"
        )
    }

    variants = _variants(campaign)
    by_variant = {v.pk if v is not None else None: (v, t) for v, t in variants}
    weights = [v.weight if v is not None else 1 for v, _ in variants]
    # A campaign run as an experiment: assignment picks the variant (sticky, exposure logged).
    linked = campaign_experiment(campaign_id=campaign.pk)
    positions = {v.pk: i for i, (v, _) in enumerate(variants) if v is not None}
    compiled: dict[int, CompiledTemplate] = {}
    profiles = Customer.objects.filter(pk__in=ids, erased_at=None).values_list(
        "pk", "timezone", "external_id"
    )
    customers = {pk: tz for pk, tz, _ in profiles}
    external_ids = {pk: external_id for pk, _, external_id in profiles}  # same rows, no query
    consented = consent_filter(customer_ids=ids, purpose=CHANNEL_PURPOSE[channel])
    addresses, opted_out = _addresses(ids, channel)
    overall, on_channel = _cap_counts(ids, channel, now)

    rows: list[Message] = []
    to_render: list[tuple[Message, MessageTemplate]] = []
    rendered: dict[str, tuple[RenderedMessage, MessageLinks]] = {}
    deferred: dict[int, list[int]] = defaultdict(list)
    now_skipped: dict[str, list[int]] = defaultdict(list)  # queued rows, by reason
    for customer_id in ids:
        if customer_id not in customers:
            continue
        stored = existing.get(customer_id)
        if stored is not None and stored[0] != MessageStatus.QUEUED:
            continue
        picked = None
        if stored is None:
            if linked is not None:
                picked = campaign_variant_assign(linked, customer_id=external_ids[customer_id])
            variant, template = variants[
                positions[picked]
                if picked in positions
                else variant_index(
                    campaign_id=campaign.pk, customer_id=customer_id, weights=weights
                )
            ]
            row = Message(
                campaign=campaign,
                variant=variant,
                customer_id=customer_id,
                channel=channel,
                idempotency_key=message_key(
                    campaign_id=campaign.pk,
                    variant_id=variant.pk if variant else None,
                    customer_id=customer_id,
                    channel=channel,
                    journey_entry_id=journey_entry_id,
                ),
                address=addresses.get(customer_id, ""),
                journey_entry_id=journey_entry_id,
            )
        else:
            # A `queued` row keeps its variant and key: picking again (weights or an
            # experiment changed since) would make another key, so another message.
            _, address, pk, variant_id, key = stored
            variant, template = by_variant.get(variant_id, variants[0])
            row = Message(
                pk=pk,
                campaign=campaign,
                variant_id=variant_id,
                customer_id=customer_id,
                channel=channel,
                idempotency_key=key,
                address=address,
                journey_entry_id=journey_entry_id,
            )
        # Consent, endpoint and quiet hours again for a `queued` row too (a retry, or a
        # resumed campaign): they may have changed since it was decided.
        reason = (
            SkipReason.HOLDOUT
            if picked == HOLDOUT
            else _skip_reason(
                campaign,
                customer_id,
                external_id=external_ids[customer_id],
                consented=consented,
                addresses=addresses,
                opted_out=opted_out,
                overall=overall,
                on_channel=on_channel,
                caps=stored is None,
            )
        )
        if reason:
            row.status, row.skip_reason = MessageStatus.SKIPPED, reason
            rows.append(row)
            if stored is not None:
                now_skipped[reason].append(row.pk)
            continue
        quiet = _quiet_for(campaign, customers[customer_id], now)
        if quiet:
            deferred[min(quiet, DEFER_MAX_SECONDS)].append(customer_id)
            continue
        to_render.append((row, template))
        rows.append(row)

    # Contexts (and their recommendation queries) only for the messages that are rendered.
    contexts = context_for_customers(
        [row.customer_id for row, _ in to_render], campaign_name=campaign.name
    )
    for row, template in to_render:
        if template.pk not in compiled:
            compiled[template.pk] = template_compile(template)
        try:
            rendered[row.idempotency_key] = _render_for(
                compiled[template.pk], contexts.get(row.customer_id), row.idempotency_key
            )
        except TemplateRenderError as exc:
            row.status, row.skip_reason, row.error = (
                MessageStatus.FAILED,
                SkipReason.RENDER_ERROR,
                str(exc),
            )

    new = [r for r in rows if r.status == MessageStatus.QUEUED and r.customer_id not in existing]
    with transaction.atomic(durable=True):
        for key in _caps_apply_locked(new, channel=channel, now=now):
            del rendered[key]
        _messages_insert(rows)
        for reason, skipped_ids in now_skipped.items():
            Message.objects.filter(pk__in=skipped_ids, status=MessageStatus.QUEUED).update(
                status=MessageStatus.SKIPPED, skip_reason=reason
            )
    for countdown, deferred_ids in sorted(deferred.items()):
        messages_send_batch_task.apply_async(
            (campaign.pk, deferred_ids, journey_entry_id), countdown=countdown
        )
    counts: dict[str, int] = defaultdict(int)
    for row in rows:
        if row.status != MessageStatus.QUEUED:
            counts[row.status] += 1
    if rendered:
        provider = provider_for(channel)  # before any claim: a bad configuration claims nothing
        # The rows as stored (ids, attempts, the address of a row that existed already), set
        # on the batch's own Message objects: no model instances built from the rows again.
        by_key = {row.idempotency_key: row for row in rows if row.idempotency_key in rendered}
        queued = []
        for pk, key, address, attempts in (
            Message.objects.filter(idempotency_key__in=list(rendered), status=MessageStatus.QUEUED)
            .order_by("pk")
            .values_list("pk", "idempotency_key", "address", "attempts")
        ):
            row = by_key[key]
            row.pk, row.address, row.attempts = pk, address, attempts
            queued.append(row)
        for status in _send_in_chunks(queued, rendered, provider=provider):
            counts[status] += 1
    result = BatchResult(
        sent=counts[MessageStatus.SENT],
        skipped=counts[MessageStatus.SKIPPED],
        failed=counts[MessageStatus.FAILED],
        retrying=counts[MessageStatus.QUEUED],
        lost=lost,
        deferred=sum(len(v) for v in deferred.values()),
        in_doubt=counts[MessageStatus.SENDING],
    )
    if journey_entry_id and not deferred:
        journey_entry_settle(entry_id=journey_entry_id)
    logger.info(
        "campaign batch sent",
        extra={"campaign": campaign.pk, "size": len(ids), **result.__dict__},
    )
    return result


# --- one message ----------------------------------------------------------------------------


def _outbound(message: Message, rendered: RenderedMessage, links: MessageLinks) -> OutboundMessage:
    headers: dict[str, str] = {}
    if message.channel == "email":
        headers = {
            "List-Unsubscribe": f"<{links.unsubscribe_url}>",
            "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
        }
    custom_args = {"campaign_id": str(message.campaign_id)}
    if rendered.url:
        custom_args["url"] = rendered.url
    # Twilio posts delivery statuses here; the provider adds `message_id=<key>` to the query.
    callback = status_callback_url() if message.channel == "sms" else ""
    return OutboundMessage(
        message_id=message.idempotency_key,
        channel=message.channel,
        to=message.address,
        subject=rendered.subject or rendered.title,
        html=rendered.html,
        text=rendered.text,
        headers=headers,
        categories=(f"campaign-{message.campaign_id}",),
        custom_args=custom_args,
        status_callback_url=callback,
    )


_Outcome = ProviderResult | ProviderError

_pool_lock = threading.Lock()
_pools: dict[int, ThreadPoolExecutor] = {}


def _send_pool() -> ThreadPoolExecutor:
    """The threads that make the provider calls (one pool per process and size)."""
    size = max(1, settings.DISPATCH_SEND_THREADS)
    with _pool_lock:
        pool = _pools.get(size)
        if pool is None:
            pool = _pools[size] = ThreadPoolExecutor(size, thread_name_prefix="send")
    return pool


def _claim(messages: list[Message], now: Any) -> list[Message]:
    """`queued` -> `sending` for those of `messages` nobody else holds (one committed
    statement); returns them, their attempts counted."""
    table = Message._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} SET status = %s, claimed_at = %s, attempts = attempts + 1 "  # noqa: S608
            f"WHERE id IN (SELECT id FROM {table} WHERE id = ANY(%s) AND status = %s "
            "ORDER BY id FOR UPDATE SKIP LOCKED) RETURNING id",
            [MessageStatus.SENDING, now, [m.pk for m in messages], MessageStatus.QUEUED],
        )
        won = {row[0] for row in cursor.fetchall()}
    claimed = [m for m in messages if m.pk in won]
    for message in claimed:
        message.attempts += 1
    return claimed


def _call(provider: Any, message: Message, rendered: RenderedMessage, links: MessageLinks):
    """One provider call (in a sending thread; no database): its result or its error."""
    try:
        return provider.send(_outbound(message, rendered, links))
    except ProviderError as exc:
        return exc


def _call_many(provider: Any, messages: list[Message], rendered: dict) -> list[_Outcome]:
    """One `send_many` (in a sending thread; no database): each message's result or error."""
    return provider.send_many([_outbound(m, *rendered[m.idempotency_key]) for m in messages])


def _send_in_chunks(
    queued: list[Message], rendered: dict[str, tuple[RenderedMessage, MessageLinks]], *, provider
) -> list[str]:
    """Claim, call and record `queued` a chunk at a time; returns the statuses they end in.
    A provider with `send_many` (SendGrid) gets requests of `provider.batch_size` messages,
    as many at once as there are sending threads; a crash then leaves that many `sending`,
    settled by the provider lookup per message id like any other claim."""
    limiter = rate_limiter_for(provider.name)
    per_call = getattr(provider, "batch_size", 1) if hasattr(provider, "send_many") else 1
    per_thread = per_call if per_call > 1 else SEND_CHUNK_PER_THREAD
    size = max(1, settings.DISPATCH_SEND_THREADS) * per_thread
    statuses: list[str] = []
    for start in range(0, len(queued), size):
        claimed = _claim(queued[start : start + size], timezone.now())
        if not claimed:
            continue
        granted, refusal = _tokens_take(limiter, len(claimed))
        if refusal is not None:
            # The rest waits for tokens too: retried by `message_send`, not claimed now.
            statuses += _requeue_throttled(claimed[granted:], refusal)
            for message in queued[start + size :]:
                message_send_task.apply_async((message.pk,), countdown=refusal.retry_after)
                statuses.append(MessageStatus.QUEUED)
            claimed = claimed[:granted]
        outcomes: list[_Outcome]
        if claimed:
            if per_call > 1:
                batches = [claimed[i : i + per_call] for i in range(0, len(claimed), per_call)]
                results = _send_pool().map(lambda b: _call_many(provider, b, rendered), batches)
                outcomes = [outcome for batch in results for outcome in batch]
            else:
                outcomes = list(
                    _send_pool().map(
                        lambda m: _call(provider, m, *rendered[m.idempotency_key]), claimed
                    )
                )
            statuses += _record(claimed, outcomes, rendered)
        if refusal is not None:
            break
    return statuses


def _tokens_take(limiter: Any, count: int) -> tuple[int, ProviderTransientError | None]:
    """Take one token per message, at most the bucket's capacity at a time (a larger cost
    could never be taken): how many of `count` may go now, and the refusal when not all."""
    granted = 0
    while granted < count:
        cost = int(min(count - granted, limiter.capacity))
        try:
            limiter.take(cost=cost)
        except ProviderTransientError as exc:
            return granted, exc
        granted += cost
    return granted, None


def _requeue_throttled(messages: list[Message], refusal: ProviderTransientError) -> list[str]:
    """Claimed messages our own rate limit held back: `queued` again without counting the
    attempt (nothing was sent, so throttling alone never makes a message give up), retried
    when the bucket has tokens again."""
    if not messages:
        return []
    Message.objects.filter(pk__in=[m.pk for m in messages], status=MessageStatus.SENDING).update(
        status=MessageStatus.QUEUED, claimed_at=None, attempts=F("attempts") - 1
    )
    for message in messages:
        message.attempts -= 1
        message_send_task.apply_async((message.pk,), countdown=refusal.retry_after)
    return [MessageStatus.QUEUED] * len(messages)


def _sent_fields(message: Message, rendered: RenderedMessage, result: ProviderResult) -> dict:
    return dict(
        status=MessageStatus.SENT,
        provider_message_id=result.provider_message_id[:200],
        sent_at=timezone.now(),
        error="",
        # The in-app inbox shows what was sent (campaigns/inbox_services.py).
        **({"payload": in_app_payload(rendered)} if message.channel == Channel.IN_APP else {}),
    )


def _record(
    claimed: list[Message],
    outcomes: list[_Outcome],
    rendered: dict[str, tuple[RenderedMessage, MessageLinks]],
) -> list[str]:
    """Store the outcomes of claimed (`sending`) messages: the accepted ones in one UPDATE
    (in-app ones one by one, with what they showed), errors one by one. Returns statuses."""
    statuses: list[str] = []
    accepted: list[tuple[int, str]] = []
    for message, outcome in zip(claimed, outcomes, strict=True):
        if isinstance(outcome, ProviderError):
            statuses.append(_record_error(message, outcome))
        elif message.channel == Channel.IN_APP:
            fields = _sent_fields(message, rendered[message.idempotency_key][0], outcome)
            Message.objects.filter(pk=message.pk, status=MessageStatus.SENDING).update(**fields)
            statuses.append(MessageStatus.SENT)
        else:
            accepted.append((message.pk, outcome.provider_message_id[:200]))
            statuses.append(MessageStatus.SENT)
    if accepted:
        table = Message._meta.db_table
        values = ", ".join(["(%s::bigint, %s)"] * len(accepted))
        with connection.cursor() as cursor:
            cursor.execute(
                f"UPDATE {table} AS m SET status = %s, provider_message_id = v.provider_id, "  # noqa: S608
                f"sent_at = %s, error = '' FROM (VALUES {values}) AS v(id, provider_id) "
                "WHERE m.id = v.id AND m.status = %s",
                [
                    MessageStatus.SENT,
                    timezone.now(),
                    *(x for pair in accepted for x in pair),
                    MessageStatus.SENDING,
                ],
            )
    return statuses


def _record_error(message: Message, exc: ProviderError) -> str:
    claimed = Message.objects.filter(pk=message.pk, status=MessageStatus.SENDING)
    if isinstance(exc, ProviderTransientError) and exc.ambiguous:
        # The provider may have the message: sending it again could deliver it twice. The
        # claim stays, to be settled like a crashed worker's (messages_resolve_stale after
        # the lease, or a provider event through message_mark_accepted).
        claimed.update(error=f"in doubt: {exc}")
        return MessageStatus.SENDING
    if isinstance(exc, ProviderTransientError):
        if message.attempts >= MAX_SEND_ATTEMPTS:
            claimed.update(status=MessageStatus.FAILED, error=f"gave up: {exc}")
            return MessageStatus.FAILED
        claimed.update(status=MessageStatus.QUEUED, error=str(exc))
        delay = backoff_delay(message.attempts, retry_after=exc.retry_after)
        message_send_task.apply_async((message.pk,), countdown=delay)
        return MessageStatus.QUEUED
    claimed.update(status=MessageStatus.FAILED, error=str(exc))
    if isinstance(exc, ProviderPermanentError) and exc.endpoint_unreachable:
        endpoints_mark_bounced(channel=message.channel, address=message.address)
    return MessageStatus.FAILED


def _deliver(
    message: Message, rendered: RenderedMessage, links: MessageLinks, *, provider: Any
) -> str:
    """Send one claimed (`sending`) message; returns the status it ends in."""
    try:
        rate_limiter_for(provider.name).take()
    except ProviderTransientError as exc:
        return _requeue_throttled([message], exc)[0]
    outcome = _call(provider, message, rendered, links)
    return _record([message], [outcome], {message.idempotency_key: (rendered, links)})[0]


def _reachable_now(message: Message) -> str:
    """Consent and the address checked again before a retry: "" or the skip reason."""
    customer_id, channel = message.customer_id, message.channel
    consented = consent_filter(customer_ids=[customer_id], purpose=CHANNEL_PURPOSE[channel])
    addresses, opted_out = _addresses([customer_id], channel)
    if customer_id not in consented or customer_id in opted_out:
        return SkipReason.CONSENT
    if customer_id not in addresses:
        return SkipReason.NO_ENDPOINT
    return ""


def message_send(*, message_id: int) -> str:
    """Send one `queued` message again (a retry); anything else is left as it is. Returns
    the status the message ends in."""
    now = timezone.now()
    messages_resolve_stale(queryset=Message.objects.filter(pk=message_id), now=now)
    with transaction.atomic(durable=True):
        message = (
            Message.objects.select_for_update(of=("self",), skip_locked=True)
            .select_related("campaign__template", "variant__template")
            .filter(pk=message_id, status=MessageStatus.QUEUED)
            .first()
        )
        if message is None:
            status = Message.objects.filter(pk=message_id).values_list("status", flat=True)
            return status.first() or ""
        if message.campaign.status == CampaignStatus.PAUSED:
            return MessageStatus.QUEUED  # resuming runs the batches again, which send it
        if message.campaign.status not in (CampaignStatus.SENDING, CampaignStatus.DONE):
            message.status, message.skip_reason = MessageStatus.SKIPPED, SkipReason.CANCELLED
            message.save(update_fields=["status", "skip_reason"])
            return MessageStatus.SKIPPED
        reason = _reachable_now(message)
        if reason:
            message.status, message.skip_reason = MessageStatus.SKIPPED, reason
            message.save(update_fields=["status", "skip_reason"])
            return MessageStatus.SKIPPED
        tz_name = Customer.objects.filter(pk=message.customer_id).values_list("timezone", flat=True)
        quiet = _quiet_for(message.campaign, tz_name.first() or "", now)
        if quiet:  # a retry that fell into the recipient's quiet hours waits them out
            transaction.on_commit(
                lambda: message_send_task.apply_async(
                    (message_id,), countdown=min(quiet, DEFER_MAX_SECONDS)
                )
            )
            return MessageStatus.QUEUED
        message.status, message.claimed_at = MessageStatus.SENDING, now
        message.attempts += 1
        message.save(update_fields=["status", "claimed_at", "attempts"])
    campaign = message.campaign
    template = message.variant.template if message.variant else campaign.template
    contexts = context_for_customers([message.customer_id], campaign_name=campaign.name)
    try:
        if template is None:
            raise TemplateRenderError("the campaign has no template")
        rendered, links = _render_for(
            template_compile(template),
            contexts.get(message.customer_id),
            message.idempotency_key,
        )
    except TemplateRenderError as exc:
        Message.objects.filter(pk=message.pk).update(
            status=MessageStatus.FAILED, skip_reason=SkipReason.RENDER_ERROR, error=str(exc)
        )
        return MessageStatus.FAILED
    try:
        provider = provider_for(message.channel)
    except BaseException:
        Message.objects.filter(pk=message.pk).update(
            status=MessageStatus.QUEUED, attempts=F("attempts") - 1, claimed_at=None
        )
        raise
    return _deliver(message, rendered, links, provider=provider)


def campaign_message_counts(*, campaign: Campaign) -> dict[str, int]:
    """{status: count} of a campaign's messages, plus `lost` (failed after a crash)."""
    counts = dict(
        Message.objects.filter(campaign=campaign)
        .values_list("status")
        .annotate(n=Count("pk"))
        .order_by()
    )
    counts["lost"] = Message.objects.filter(
        Q(campaign=campaign) & Q(status=MessageStatus.FAILED, error=LOST_ERROR)
    ).count()
    return counts
