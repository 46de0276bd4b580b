"""The provider interface: one outbound message in, the provider's id out, or a typed error.

Pure Python (no Django): the dispatch decides what to do with a `ProviderTransientError`
(retry later, honouring `retry_after`) and a `ProviderPermanentError` (record the failure; when
`endpoint_unreachable`, flag the endpoint so nothing is sent to it again).
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Protocol
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import requests
from urllib3.exceptions import ConnectTimeoutError, NewConnectionError

MESSAGE_ID_ARG = "message_id"


@dataclass(frozen=True)
class OutboundMessage:
    """A message rendered for one recipient.

    `message_id` is our idempotency key (the delivery row's key); every provider gets it in a
    field that comes back in its webhooks. `to` is an email address, an E.164 phone number, or
    a push subscription as JSON (`{"endpoint", "keys": {"p256dh", "auth"}}`).
    """

    message_id: str
    channel: str
    to: str
    subject: str = ""
    html: str = ""
    text: str = ""
    headers: Mapping[str, str] = field(default_factory=dict)
    categories: tuple[str, ...] = ()
    custom_args: Mapping[str, str] = field(default_factory=dict)
    status_callback_url: str = ""


@dataclass(frozen=True)
class ProviderResult:
    provider_message_id: str
    accepted: bool = True


class ProviderError(Exception):
    code = "provider_error"

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


class ProviderTransientError(ProviderError):
    """Try again later: 429, 5xx, timeouts, refused connections. `retry_after` in seconds
    when the provider said (Retry-After), else None (use `backoff_delay`).

    `ambiguous`: the request may have been accepted all the same (a timeout or a dropped
    connection after the request went out, a 5xx, which a provider can answer after queueing
    the message), so sending it again could deliver it twice; the dispatch leaves such a
    message to the settlement of claims (the provider lookup, its webhooks) instead of
    resending it. Not ambiguous: refused or unresolvable connections, timeouts while
    connecting, 408 and 429 (the provider says it did not take the request)."""

    code = "provider_transient"

    def __init__(
        self,
        reason: str,
        *,
        retry_after: float | None = None,
        status: int = 0,
        ambiguous: bool = False,
    ):
        super().__init__(reason)
        self.retry_after = retry_after
        self.status = status
        self.ambiguous = ambiguous


class ProviderPermanentError(ProviderError):
    """Sending this message again will fail the same way. `endpoint_unreachable`: the address
    itself is bad (invalid address or number, unsubscribed at the carrier, push subscription
    gone); `provider_code` is the provider's own code (e.g. Twilio 21211) or the HTTP status."""

    code = "provider_permanent"

    def __init__(
        self,
        reason: str,
        *,
        endpoint_unreachable: bool = False,
        status: int = 0,
        provider_code: str = "",
    ):
        super().__init__(reason)
        self.endpoint_unreachable = endpoint_unreachable
        self.status = status
        self.provider_code = provider_code


class Provider(Protocol):
    name: str

    def send(self, message: OutboundMessage) -> ProviderResult: ...


class LookupProvider(Provider, Protocol):
    """A provider that can be asked afterwards whether it accepted a message with our id
    (`None`: it did not); it raises a ProviderError when it cannot tell. Dispatch uses it to
    settle the sends a crashed worker left in flight (campaigns/dispatch.py)."""

    def lookup(self, message_id: str) -> ProviderResult | None: ...


def retry_after_seconds(value: str | None, *, now: datetime | None = None) -> float | None:
    """Retry-After is either delta-seconds or an HTTP date; anything else is None."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        at = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    return max(0.0, (at - (now or datetime.now(tz=UTC))).total_seconds())


def backoff_delay(
    attempt: int,
    *,
    retry_after: float | None = None,
    base: float = 2.0,
    cap: float = 600.0,
    rand=random.random,
) -> float:
    """Seconds to wait before retry number `attempt` (1-based): the provider's Retry-After when
    given, else exponential backoff with full jitter, never more than `cap`."""
    if retry_after is not None:
        return min(cap, retry_after)
    return min(cap, base * 2 ** max(0, attempt - 1)) * rand()


def status_is_transient(status: int) -> bool:
    """429 Too Many Requests, 408 Request Timeout and every 5xx are worth another try."""
    return status in (408, 429) or status >= 500


def status_is_ambiguous(status: int) -> bool:
    """A 5xx may come after the provider took the message (see ProviderTransientError)."""
    return status >= 500


def request_may_have_arrived(exc: requests.RequestException) -> bool:
    """Whether a failed `requests` call may have reached the provider: not when the
    connection was never made (refused, name not resolved, timed out while connecting),
    else yes (a read timeout, a connection dropped while waiting for the answer)."""
    if isinstance(exc, requests.ConnectTimeout):
        return False
    if isinstance(exc, requests.ConnectionError):
        reason = getattr(exc.args[0] if exc.args else None, "reason", None)
        return not isinstance(reason, NewConnectionError | ConnectTimeoutError)
    return isinstance(exc, requests.Timeout | requests.exceptions.ChunkedEncodingError)


def url_with_message_id(url: str, message_id: str) -> str:
    """The callback URL with `message_id=<id>` in its query (kept if already there)."""
    if not url:
        return ""
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True)]
    if not any(k == MESSAGE_ID_ARG for k, _ in query):
        query.append((MESSAGE_ID_ARG, message_id))
    return urlunsplit(parts._replace(query=urlencode(query)))


def push_topic(message_id: str) -> str:
    """A Web Push `Topic` (at most 32 URL-safe base64 characters) derived from the message
    id: a push service replaces an undelivered message with the same topic, so a resend of
    the same message never shows twice."""
    alphabet = set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
    if 0 < len(message_id) <= 32 and set(message_id) <= alphabet:
        return message_id
    return hashlib.sha256(message_id.encode()).hexdigest()[:32]
