"""Provider webhooks that change consent: SendGrid's Event Webhook and Twilio inbound SMS.

Consent itself is decided in `profiles.consent.consent_set` (source `webhook`, actor
`sendgrid` or `twilio`, the provider's event id in the note), so redelivered events add
nothing to the audit trail. An event older than the customer's current decision for that
purpose is skipped: providers retry for hours, and a late retry of an old unsubscribe must not
undo a newer resubscription (or the other way round).

The endpoint flags (`opted_out`, `attributes["bounced"]`) are written by profiles' services
(`endpoints_update`, `endpoints_mark_bounced`).
"""

from __future__ import annotations

import binascii
import json
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import F, Func, Q, QuerySet, Value
from sendgrid.helpers.eventwebhook import EventWebhook
from twilio.request_validator import RequestValidator

from campaigns.webhook_messages import sendgrid_event_time, sendgrid_message_events_apply
from marketing.common.errors import ApplicationError
from profiles.consent import consent_set
from profiles.models import (
    Channel,
    ChannelEndpoint,
    ConsentPurpose,
    ConsentSource,
    Customer,
)
from profiles.selectors import consent_list
from profiles.services import endpoints_mark_bounced, endpoints_update

logger = logging.getLogger(__name__)

SENDGRID_SIGNATURE_HEADER = "X-Twilio-Email-Event-Webhook-Signature"
SENDGRID_TIMESTAMP_HEADER = "X-Twilio-Email-Event-Webhook-Timestamp"
TWILIO_SIGNATURE_HEADER = "X-Twilio-Signature"
# A signed SendGrid request older than this is refused as a replay: SendGrid signs
# `timestamp + body`, so without an age limit a captured request (an unsubscribe) could be
# posted again forever. SendGrid's retries are signed afresh, so they are not affected.
SENDGRID_REPLAY_WINDOW = timedelta(minutes=10)

SENDGRID_WITHDRAW_EVENTS = frozenset({"unsubscribe", "group_unsubscribe", "spamreport"})
SENDGRID_GRANT_EVENTS = frozenset({"group_resubscribe"})
TWILIO_STOP_WORDS = frozenset({"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT"})
TWILIO_START_WORDS = frozenset({"START", "YES", "UNSTOP"})

# Separators people type in phone numbers; Twilio sends E.164 (`+4915112345678`).
PHONE_SEPARATORS = (" ", "-", "(", ")", ".")


class WebhookSignatureError(ApplicationError):
    code = "webhook_signature_invalid"
    http_status = 403


class WebhookReplayError(WebhookSignatureError):
    code = "webhook_timestamp_expired"


class WebhookNotConfiguredError(ApplicationError):
    """No verification secret is set and DEBUG is off: we refuse unsigned consent changes."""

    code = "webhook_not_configured"
    http_status = 403


class WebhookMisconfiguredError(ApplicationError):
    """The configured secret cannot be used (e.g. a public key that is not base64 DER)."""

    code = "webhook_misconfigured"
    http_status = 503


class WebhookPayloadError(ApplicationError):
    code = "invalid_payload"


@dataclass(frozen=True)
class WebhookResult:
    """What one delivery changed; `consents` counts consent changes actually recorded."""

    events: int = 0
    consents: int = 0
    endpoints: int = 0
    ignored: int = 0


# --- Signatures -------------------------------------------------------------------------------


def _unsigned_allowed(*, provider: str, setting: str) -> None:
    if not settings.DEBUG:
        raise WebhookNotConfiguredError(
            f"{setting} is not set: {provider} webhooks are refused unless DJANGO_DEBUG is on.",
            extra={"setting": setting},
        )
    logger.warning("accepting an unsigned webhook (DEBUG)", extra={"provider": provider})


def _sendgrid_public_key_text(raw: str) -> str:
    """SendGrid shows the key as base64 DER; accept a pasted PEM block as well."""
    lines = [
        line.strip() for line in raw.strip().splitlines() if line.strip() and "-----" not in line
    ]
    return "".join(lines)


def sendgrid_signature_verify(
    *, payload: str, signature: str, timestamp: str, now: datetime | None = None
) -> None:
    """Check SendGrid's ECDSA signature over `timestamp + payload` (the raw request body), and
    that the signed timestamp is recent (replay protection)."""
    raw_key = settings.SENDGRID_WEBHOOK_PUBLIC_KEY
    if not raw_key:
        _unsigned_allowed(provider="sendgrid", setting="SENDGRID_WEBHOOK_PUBLIC_KEY")
        return
    try:
        verifier = EventWebhook(public_key=_sendgrid_public_key_text(raw_key))
    except ValueError as exc:
        logger.error("SENDGRID_WEBHOOK_PUBLIC_KEY is not a valid public key")
        raise WebhookMisconfiguredError(
            "The SendGrid webhook verification key is not usable."
        ) from exc
    if not signature or not timestamp:
        raise WebhookSignatureError("The SendGrid signature headers are missing.")
    try:
        valid = verifier.verify_signature(payload, signature, timestamp)
    except (binascii.Error, ValueError):
        valid = False
    if not valid:
        raise WebhookSignatureError("The SendGrid signature does not match.")
    _sendgrid_timestamp_check(timestamp, now=now or datetime.now(tz=UTC))


def _sendgrid_timestamp_check(timestamp: str, *, now: datetime) -> None:
    """Refuse a signed request outside SENDGRID_REPLAY_WINDOW (a small clock skew ahead is
    tolerated the same way)."""
    try:
        signed_at = datetime.fromtimestamp(int(timestamp), tz=UTC)
    except (ValueError, OverflowError, OSError) as exc:
        raise WebhookSignatureError("The SendGrid timestamp is not a Unix time.") from exc
    if abs(now - signed_at) > SENDGRID_REPLAY_WINDOW:
        raise WebhookReplayError(
            "The SendGrid request is older than the replay window.",
            extra={
                "timestamp": timestamp,
                "window_seconds": int(SENDGRID_REPLAY_WINDOW.total_seconds()),
            },
        )


def twilio_signature_verify(*, url: str, params: Mapping, signature: str) -> None:
    """Check X-Twilio-Signature (HMAC of the full URL and sorted POST params, auth token)."""
    token = settings.TWILIO_AUTH_TOKEN
    if not token:
        _unsigned_allowed(provider="twilio", setting="TWILIO_AUTH_TOKEN")
        return
    if not signature or not RequestValidator(token).validate(url, params, signature):
        raise WebhookSignatureError("The Twilio signature does not match.")


# --- Matching customers -----------------------------------------------------------------------


def _live_customers() -> QuerySet[Customer]:
    return Customer.objects.filter(erased_at=None)


def _customers_by_email(email: str) -> list[Customer]:
    has_endpoint = ChannelEndpoint.objects.filter(
        channel=Channel.EMAIL, address__iexact=email
    ).values("customer_id")
    return list(
        _live_customers().filter(Q(pk__in=has_endpoint) | Q(email__iexact=email)).order_by("pk")
    )


def _phone_normalized(expression):
    for separator in PHONE_SEPARATORS:
        expression = Func(expression, Value(separator), Value(""), function="REPLACE")
    return expression


def phone_normalize(phone: str) -> str:
    return "".join(ch for ch in phone.strip() if ch not in PHONE_SEPARATORS)


def _customers_by_phone(phone: str) -> list[Customer]:
    has_endpoint = (
        ChannelEndpoint.objects.filter(channel=Channel.SMS)
        .alias(normalized=_phone_normalized(F("address")))
        .filter(normalized=phone)
        .values("customer_id")
    )
    return list(
        _live_customers()
        .alias(normalized_phone=_phone_normalized(F("phone")))
        .filter(Q(pk__in=has_endpoint) | Q(normalized_phone=phone))
        .order_by("pk")
    )


# --- Applying a decision ----------------------------------------------------------------------


def _current_consent(*, customer: Customer, purpose: str):
    return next((c for c in consent_list(customer=customer) if c.purpose == purpose), None)


def _email_endpoints(customer: Customer, email: str) -> QuerySet[ChannelEndpoint]:
    return ChannelEndpoint.objects.filter(
        customer=customer, channel=Channel.EMAIL, address__iexact=email
    )


def _sms_endpoints(customer: Customer, phone: str) -> QuerySet[ChannelEndpoint]:
    return (
        ChannelEndpoint.objects.filter(customer=customer, channel=Channel.SMS)
        .alias(normalized=_phone_normalized(F("address")))
        .filter(normalized=phone)
    )


def _decision_apply(
    *,
    customers: Iterable[Customer],
    purpose: str,
    granted: bool,
    endpoints_of,
    actor: str,
    note: str,
    at: datetime | None,
) -> tuple[int, int]:
    """Record `granted` for every customer and flag their matching endpoints opted out (or
    back in). Returns (consent changes recorded, endpoints changed)."""
    consents = endpoints = 0
    for customer in customers:
        with transaction.atomic():
            current = _current_consent(customer=customer, purpose=purpose)
            if current is not None and at is not None and current.changed_at > at:
                logger.info(
                    "stale webhook event skipped",
                    extra={"customer": customer.pk, "purpose": purpose, "actor": actor},
                )
                continue
            consent_set(
                customer=customer,
                purpose=purpose,
                granted=granted,
                source=ConsentSource.WEBHOOK,
                actor=actor,
                note=note,
                at=at,
            )
            consents += int(current is None or current.granted != granted)
            endpoints += endpoints_update(endpoints=endpoints_of(customer), opted_out=not granted)
    return consents, endpoints


# --- SendGrid ---------------------------------------------------------------------------------


def sendgrid_events_parse(payload: str) -> list:
    """The Event Webhook body: a JSON array of event objects."""
    try:
        events = json.loads(payload)
    except ValueError as exc:
        raise WebhookPayloadError(
            "The body is not valid JSON.", code="invalid_json", extra={"error": str(exc)}
        ) from exc
    if not isinstance(events, list):
        raise WebhookPayloadError("Expected a JSON array of events.")
    return events


def _is_hard_bounce(event: Mapping) -> bool:
    kind = str(event.get("type") or "").lower()
    if event.get("event") == "bounce":
        # `blocked` is SendGrid's soft bounce; old payloads without `type` are hard bounces.
        return kind in ("", "bounce")
    return kind == "bounce" or "bounced address" in str(event.get("reason") or "").lower()


def _sendgrid_note(event: Mapping) -> str:
    note = f"sendgrid {event.get('event')} {event.get('sg_event_id') or ''}".strip()
    if event.get("asm_group_id") is not None:
        note += f" (asm group {event['asm_group_id']})"
    return note


def sendgrid_events_apply(*, events: list) -> WebhookResult:
    """Unsubscribes and spam reports withdraw `marketing_email` and opt the address out;
    group resubscribes grant it back; hard bounces flag the endpoint. Events naming one of
    our messages update it (campaigns/webhook_messages.py). The rest is ignored."""
    consents = endpoints = ignored = 0
    linked = sendgrid_message_events_apply(events=events)
    for index, event in enumerate(events):
        if not isinstance(event, dict):
            ignored += 1
            continue
        name = event.get("event")
        email = str(event.get("email") or "").strip()
        if not email:
            ignored += 1
            continue
        if name in SENDGRID_WITHDRAW_EVENTS or name in SENDGRID_GRANT_EVENTS:
            changed = _decision_apply(
                customers=_customers_by_email(email),
                purpose=ConsentPurpose.MARKETING_EMAIL,
                granted=name in SENDGRID_GRANT_EVENTS,
                endpoints_of=lambda customer, email=email: _email_endpoints(customer, email),
                actor="sendgrid",
                note=_sendgrid_note(event),
                at=sendgrid_event_time(event.get("timestamp")),
            )
            consents += changed[0]
            endpoints += changed[1]
        elif name in ("bounce", "dropped") and _is_hard_bounce(event):
            endpoints += endpoints_mark_bounced(channel=Channel.EMAIL, address=email)
        elif index not in linked:
            ignored += 1
    result = WebhookResult(
        events=len(events), consents=consents, endpoints=endpoints, ignored=ignored
    )
    logger.info("sendgrid webhook applied", extra=result.__dict__)
    return result


# --- Twilio -----------------------------------------------------------------------------------


def twilio_inbound_apply(*, from_number: str, body: str, message_sid: str) -> WebhookResult:
    """STOP-type keywords withdraw `sms` consent of whoever owns the sending number and opt
    that number out; START-type keywords grant it back. Other messages change nothing."""
    word = body.strip().upper()
    phone = phone_normalize(from_number)
    if not phone or word not in TWILIO_STOP_WORDS | TWILIO_START_WORDS:
        return WebhookResult(events=1, ignored=1)
    consents, endpoints = _decision_apply(
        customers=_customers_by_phone(phone),
        purpose=ConsentPurpose.SMS,
        granted=word in TWILIO_START_WORDS,
        endpoints_of=lambda customer: _sms_endpoints(customer, phone),
        actor="twilio",
        note=f"twilio {word} {message_sid}".strip(),
        at=None,
    )
    result = WebhookResult(events=1, consents=consents, endpoints=endpoints)
    logger.info("twilio inbound applied", extra=result.__dict__)
    return result
