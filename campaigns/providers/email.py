"""Email through SendGrid's v3 Mail Send API (`sendgrid` package, `SENDGRID_API_HOST`)."""

from __future__ import annotations

import http.client
import json
import logging
from urllib.error import URLError

from python_http_client.exceptions import HTTPError
from sendgrid import SendGridAPIClient

from campaigns.providers.base import (
    MESSAGE_ID_ARG,
    OutboundMessage,
    ProviderPermanentError,
    ProviderResult,
    ProviderTransientError,
    retry_after_seconds,
    status_is_transient,
)

logger = logging.getLogger(__name__)

MAX_CATEGORIES = 10


def sendgrid_mail_body(message: OutboundMessage, *, from_email: str) -> dict:
    """The v3 `mail/send` JSON for one recipient. `custom_args` always carry our message id:
    SendGrid returns them on every Event Webhook event of this message."""
    custom_args = {str(k): str(v) for k, v in message.custom_args.items()}
    custom_args[MESSAGE_ID_ARG] = message.message_id
    content = []
    if message.text:
        content.append({"type": "text/plain", "value": message.text})
    if message.html:
        content.append({"type": "text/html", "value": message.html})
    body: dict = {
        "personalizations": [{"to": [{"email": message.to}]}],
        "from": {"email": from_email},
        "subject": message.subject,
        "content": content,
        "custom_args": custom_args,
    }
    if message.headers:
        body["headers"] = dict(message.headers)
    if message.categories:
        body["categories"] = list(dict.fromkeys(message.categories))[:MAX_CATEGORIES]
    return body


def _errors(body: bytes | str | None) -> list[dict]:
    try:
        parsed = json.loads(body or b"{}")
    except ValueError:
        return []
    errors = parsed.get("errors") if isinstance(parsed, dict) else None
    return [e for e in errors or [] if isinstance(e, dict)]


def _recipient_invalid(errors: list[dict]) -> bool:
    """SendGrid names the offending field, e.g. `personalizations.0.to.0.email`."""
    return any(
        str(e.get("field") or "").startswith("personalizations") and ".to." in str(e.get("field"))
        for e in errors
    )


class SendGridEmailProvider:
    name = "sendgrid"

    def __init__(self, *, api_key: str, host: str, from_email: str, timeout: float):
        self.client = SendGridAPIClient(api_key=api_key, host=host)
        # The `mail/send` endpoint of the client, built once: each `client.mail.send` builds
        # two python_http_client.Client objects. The endpoint is shared by the sending
        # threads as the client's own endpoints already share one headers dict: a request
        # reads it, and only sets the same Content-Type default each time.
        self.mail_send = self.client.client.mail.send
        self.from_email = from_email
        self.timeout = timeout

    def send(self, message: OutboundMessage) -> ProviderResult:
        body = sendgrid_mail_body(message, from_email=self.from_email)
        try:
            response = self.mail_send.post(request_body=body, timeout=self.timeout)
        except HTTPError as exc:
            raise self._error(exc) from exc
        except (URLError, TimeoutError, OSError, http.client.HTTPException) as exc:
            raise ProviderTransientError(f"SendGrid unreachable: {exc}") from exc
        return ProviderResult(
            provider_message_id=response.headers.get("X-Message-Id", "") or "",
            accepted=response.status_code in (200, 202),
        )

    def lookup(self, message_id: str) -> ProviderResult | None:
        """Did SendGrid accept the message with our id? Asks the Email Activity API, filtered
        by the custom arg that carries the id: its result, or None when SendGrid has no such
        message. Raises a ProviderError when it cannot tell (no Email Activity access,
        unreachable): the caller then knows nothing. Dispatch asks only about claims older than
        its lease, by which time an accepted message is in the activity feed."""
        query = f"(unique_args['{MESSAGE_ID_ARG}']=\"{message_id}\")"
        try:
            response = self.client.client.messages.get(
                query_params={"query": query, "limit": 1}, timeout=self.timeout
            )
        except HTTPError as exc:
            raise self._error(exc) from exc
        except (URLError, TimeoutError, OSError, http.client.HTTPException) as exc:
            raise ProviderTransientError(f"SendGrid unreachable: {exc}") from exc
        try:
            found = json.loads(response.body or b"{}").get("messages") or []
        except (ValueError, AttributeError) as exc:
            raise ProviderTransientError("SendGrid activity: unreadable answer") from exc
        if not found:
            return None
        return ProviderResult(provider_message_id=str(found[0].get("msg_id") or ""))

    @staticmethod
    def _error(exc: HTTPError) -> Exception:
        status = int(exc.status_code)
        errors = _errors(exc.body)
        reason = "; ".join(str(e.get("message")) for e in errors) or f"HTTP {status}"
        if status_is_transient(status):
            headers = exc.headers or {}
            return ProviderTransientError(
                f"SendGrid {status}: {reason}",
                retry_after=retry_after_seconds(headers.get("Retry-After")),
                status=status,
            )
        return ProviderPermanentError(
            f"SendGrid {status}: {reason}",
            endpoint_unreachable=status == 400 and _recipient_invalid(errors),
            status=status,
            provider_code=str(status),
        )
