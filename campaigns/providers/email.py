"""Email through SendGrid's v3 Mail Send API (`sendgrid` package, `SENDGRID_API_HOST`).

`send` makes one request per message. `send_many` puts up to `batch_size` (at most 1,000,
SendGrid's limit of personalizations per request) rendered messages into one request: the
content is a substitution tag (`-mk-text-`, `-mk-html-`), and each personalization carries its
recipient, subject, headers, custom args (our message id among them) and its own rendered text
and HTML as the tags' substitutions. That is the same email each recipient would get alone, and
one request instead of hundreds: most of a request's cost on our side is the client's
per-request urllib opener, not the message."""

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
    ProviderError,
    ProviderPermanentError,
    ProviderResult,
    ProviderTransientError,
    retry_after_seconds,
    status_is_ambiguous,
    status_is_transient,
)

logger = logging.getLogger(__name__)

MAX_CATEGORIES = 10
MAX_PERSONALIZATIONS = 1000
# SendGrid: the substitutions of one personalization total at most 10,000 bytes (the Mail Send
# reference; the substitution-tags guide says 50,000, we keep to the stricter figure).
MAX_SUBSTITUTION_BYTES = 10_000
TAG_PREFIX = "-mk-"
TEXT_TAG = "-mk-text-"
HTML_TAG = "-mk-html-"


def sendgrid_mail_body(message: OutboundMessage, *, from_email: str) -> dict:
    """The v3 `mail/send` JSON for one recipient. `custom_args` always carry our message id:
    SendGrid returns them on every Event Webhook event of this message."""
    custom_args = _custom_args(message)
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
        body["categories"] = _categories(message)
    return body


def _custom_args(message: OutboundMessage) -> dict[str, str]:
    custom_args = {str(k): str(v) for k, v in message.custom_args.items()}
    custom_args[MESSAGE_ID_ARG] = message.message_id
    return custom_args


def _substitutions(message: OutboundMessage) -> dict[str, str] | None:
    """The message's text and HTML as substitutions of the content tags, or None when it must
    go alone: over SendGrid's size limit, or a tag-like string in what SendGrid substitutes
    (subject, content, headers, custom args), which a substitution would replace."""
    substitutions = {}
    if message.text:
        substitutions[TEXT_TAG] = message.text
    if message.html:
        substitutions[HTML_TAG] = message.html
    size = sum(len(k.encode()) + len(v.encode()) for k, v in substitutions.items())
    if size > MAX_SUBSTITUTION_BYTES or not substitutions:
        return None
    values = [message.subject, message.text, message.html]
    values += [*message.headers.values(), *map(str, message.custom_args.values())]
    if any(TAG_PREFIX in value for value in values):
        return None
    return substitutions


def _categories(message: OutboundMessage) -> list[str]:
    return list(dict.fromkeys(message.categories))[:MAX_CATEGORIES]


def sendgrid_batch_body(messages: list[OutboundMessage], *, from_email: str) -> dict:
    """One v3 `mail/send` JSON for several messages of the same shape (same content types and
    categories, distinct recipients, each with substitutions that fit): one personalization
    each, with the message's subject, headers, custom args and rendered content."""
    personalizations = []
    for message in messages:
        personalization: dict = {
            "to": [{"email": message.to}],
            "subject": message.subject,
            "substitutions": _substitutions(message),
            "custom_args": _custom_args(message),
        }
        if message.headers:
            personalization["headers"] = dict(message.headers)
        personalizations.append(personalization)
    first = messages[0]
    content = []
    if first.text:
        content.append({"type": "text/plain", "value": TEXT_TAG})
    if first.html:
        content.append({"type": "text/html", "value": HTML_TAG})
    body: dict = {
        "personalizations": personalizations,
        "from": {"email": from_email},
        "content": content,
    }
    if first.categories:
        body["categories"] = _categories(first)
    return body


def sendgrid_batches(messages: list[OutboundMessage], *, size: int) -> list[list[int]]:
    """The messages' positions grouped into requests: at most `size` per group, one shape per
    group (which content types, which categories), an address at most once per group (SendGrid
    rejects a request naming one twice); a message that cannot be substituted is a group of
    its own."""
    size = max(1, min(size, MAX_PERSONALIZATIONS))
    groups: list[list[int]] = []
    open_groups: dict[tuple, list[tuple[list[int], set[str]]]] = {}
    for i, message in enumerate(messages):
        if size == 1 or _substitutions(message) is None:
            groups.append([i])
            continue
        shape = (bool(message.text), bool(message.html), tuple(_categories(message)))
        address = message.to.strip().lower()
        candidates = open_groups.setdefault(shape, [])
        group = next((g for g in candidates if len(g[0]) < size and address not in g[1]), None)
        if group is None:
            group = ([], set())
            candidates.append(group)
            groups.append(group[0])
        group[0].append(i)
        group[1].add(address)
    return groups


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

    def __init__(
        self, *, api_key: str, host: str, from_email: str, timeout: float, batch_size: int = 1
    ):
        self.client = SendGridAPIClient(api_key=api_key, host=host)
        # The `mail/send` endpoint of the client, built once: each `client.mail.send` builds
        # two python_http_client.Client objects. The endpoint is shared by the sending
        # threads as the client's own endpoints already share one headers dict: a request
        # reads it, and only sets the same Content-Type default each time.
        self.mail_send = self.client.client.mail.send
        self.from_email = from_email
        self.timeout = timeout
        self.batch_size = max(1, min(batch_size, MAX_PERSONALIZATIONS))

    def send(self, message: OutboundMessage) -> ProviderResult:
        return self._post(sendgrid_mail_body(message, from_email=self.from_email))

    def send_many(self, messages: list[OutboundMessage]) -> list[ProviderResult | ProviderError]:
        """Each message's result or error, in order, sent `batch_size` to a request. An error
        of a batched request is every member's error, as if each had been sent alone, except a
        400 or 413 (one bad address or an oversized request fails the whole request, and
        nothing of it was sent): then the members go one by one, so only the bad one fails."""
        outcomes: dict[int, ProviderResult | ProviderError] = {}
        for group in sendgrid_batches(messages, size=self.batch_size):
            members = [messages[i] for i in group]
            outcomes.update(zip(group, self._send_group(members), strict=True))
        return [outcomes[i] for i in range(len(messages))]

    def _send_group(self, members: list[OutboundMessage]) -> list[ProviderResult | ProviderError]:
        if len(members) == 1:
            return [self._send_one(members[0])]
        try:
            result = self._post(sendgrid_batch_body(members, from_email=self.from_email))
        except ProviderPermanentError as exc:
            if exc.status in (400, 413):
                return [self._send_one(m) for m in members]
            return [exc] * len(members)
        except ProviderError as exc:
            return [exc] * len(members)
        return [result] * len(members)

    def _send_one(self, message: OutboundMessage) -> ProviderResult | ProviderError:
        try:
            return self.send(message)
        except ProviderError as exc:
            return exc

    def _post(self, body: dict) -> ProviderResult:
        try:
            response = self.mail_send.post(request_body=body, timeout=self.timeout)
        except HTTPError as exc:
            raise self._error(exc) from exc
        except URLError as exc:
            # urllib wraps what fails while connecting and writing the request: SendGrid
            # did not get all of it, so it is safe to send again.
            raise ProviderTransientError(f"SendGrid unreachable: {exc}") from exc
        except (TimeoutError, OSError, http.client.HTTPException) as exc:
            # Raised unwrapped while waiting for the answer: the request was sent whole.
            raise ProviderTransientError(f"SendGrid unreachable: {exc}", ambiguous=True) from exc
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
                ambiguous=status_is_ambiguous(status),
            )
        return ProviderPermanentError(
            f"SendGrid {status}: {reason}",
            endpoint_unreachable=status == 400 and _recipient_invalid(errors),
            status=status,
            provider_code=str(status),
        )
