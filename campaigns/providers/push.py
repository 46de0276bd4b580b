"""Web push through the Web Push protocol (RFC 8030/8291/8292) with `pywebpush` and VAPID.

The subscription's endpoint URL is the push service (FCM, Mozilla autopush, Apple); in tests
it is the local stand-in. The payload is encrypted (aes128gcm) for the browser's keys; the
service worker reads `message_id` from it to report clicks.
"""

from __future__ import annotations

import json
import logging

import requests
from py_vapid import Vapid
from pywebpush import WebPushException, webpush

from campaigns.providers.base import (
    MESSAGE_ID_ARG,
    OutboundMessage,
    ProviderPermanentError,
    ProviderResult,
    ProviderTransientError,
    push_topic,
    request_may_have_arrived,
    retry_after_seconds,
    status_is_ambiguous,
    status_is_transient,
)

logger = logging.getLogger(__name__)


def push_payload(message: OutboundMessage) -> str:
    """What the service worker receives (after decryption)."""
    return json.dumps(
        {
            MESSAGE_ID_ARG: message.message_id,
            "title": message.subject,
            "body": message.text,
            "data": {str(k): str(v) for k, v in message.custom_args.items()},
        },
        separators=(",", ":"),
    )


def push_subscription(to: str) -> dict:
    """A PushSubscription's JSON; anything without an http(s) endpoint and both keys is not
    a subscription we can ever deliver to."""
    try:
        subscription = json.loads(to)
    except ValueError:
        subscription = None
    if (
        not isinstance(subscription, dict)
        or not str(subscription.get("endpoint") or "").startswith(("https://", "http://"))
        or not isinstance(subscription.get("keys"), dict)
        or not subscription["keys"].get("p256dh")
        or not subscription["keys"].get("auth")
    ):
        raise ProviderPermanentError(
            "Not a push subscription (endpoint and keys.p256dh / keys.auth required).",
            endpoint_unreachable=True,
            provider_code="invalid_subscription",
        )
    return subscription


class WebPushProvider:
    name = "webpush"

    def __init__(self, *, vapid_private_key: str, claims_email: str, ttl: int, timeout: float):
        self.vapid = Vapid.from_string(private_key=vapid_private_key)
        self.claims_email = claims_email
        self.ttl = ttl
        self.timeout = timeout
        self.session = requests.Session()

    def send(self, message: OutboundMessage) -> ProviderResult:
        subscription = push_subscription(message.to)
        headers = {"Topic": push_topic(message.message_id), "Urgency": "normal"}
        try:
            response = webpush(
                subscription_info=subscription,
                data=push_payload(message),
                vapid_private_key=self.vapid,
                vapid_claims={"sub": self.claims_email},
                ttl=self.ttl,
                timeout=self.timeout,
                headers=dict(headers),
                requests_session=self.session,
            )
        except WebPushException as exc:
            raise self._error(exc) from exc
        except requests.RequestException as exc:
            raise ProviderTransientError(
                f"Push service unreachable: {exc}", ambiguous=request_may_have_arrived(exc)
            ) from exc
        location = getattr(response, "headers", {}).get("Location", "")
        return ProviderResult(provider_message_id=location or message.message_id, accepted=True)

    @staticmethod
    def _error(exc: WebPushException) -> Exception:
        response = exc.response
        status = int(response.status_code) if response is not None else 0
        reason = f"Push service {status}: {exc.message}" if status else str(exc)
        if status_is_transient(status):
            return ProviderTransientError(
                reason,
                retry_after=retry_after_seconds(response.headers.get("Retry-After")),
                status=status,
                ambiguous=status_is_ambiguous(status),
            )
        return ProviderPermanentError(
            reason,
            endpoint_unreachable=response is None or status in (404, 410),
            status=status,
            provider_code=str(status) if status else "invalid_subscription",
        )
