"""SMS through Twilio's Messages API (`twilio` package).

`TWILIO_API_BASE` (e.g. a local stand-in in tests) is applied through the library's supported
extension point, a custom `http_client` (Twilio's "custom HTTP client" guide): it swaps the
scheme and host of every request URL and keeps the rest, so the library still builds the
path, form body and Basic auth itself. It also keeps the last response's headers per thread,
because `TwilioRestException` carries no headers and a 429's Retry-After lives there.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from urllib.parse import urlsplit, urlunsplit

import requests
from twilio.base.exceptions import TwilioException
from twilio.http.http_client import TwilioHttpClient
from twilio.http.response import Response
from twilio.rest import Client

from campaigns.providers.base import (
    OutboundMessage,
    ProviderPermanentError,
    ProviderResult,
    ProviderTransientError,
    request_may_have_arrived,
    retry_after_seconds,
    status_is_ambiguous,
    status_is_transient,
    url_with_message_id,
)

logger = logging.getLogger(__name__)

# Twilio error codes that say the number itself cannot receive our messages.
# 21211 invalid 'To', 21214 not reachable, 21217 not a valid phone number, 21401 invalid phone
# number, 21610 recipient replied STOP, 21612 cannot route to it, 21614 not a mobile number.
TWILIO_UNREACHABLE_CODES = frozenset({21211, 21214, 21217, 21401, 21610, 21612, 21614})
# TWILIO_FROM_NUMBER may name a Messaging Service (its SID) instead of a number.
MESSAGING_SERVICE_PREFIX = "MG"
IDEMPOTENCY_HEADER = "I-Twilio-Idempotency-Token"


class BaseUrlHttpClient(TwilioHttpClient):
    """TwilioHttpClient with a fixed timeout that sends to `base_url` instead of *.twilio.com
    when one is set."""

    def __init__(self, *, base_url: str = "", timeout: float):
        super().__init__(pool_connections=True, timeout=timeout)
        self.base = urlsplit(base_url) if base_url else None
        self._local = threading.local()
        if self.session is not None:
            # The pool also serves the plain-http stand-in and several sending threads.
            adapter = requests.adapters.HTTPAdapter(pool_maxsize=32)
            self.session.mount("https://", adapter)
            self.session.mount("http://", adapter)

    def request(self, method, url, *args, **kwargs) -> Response:
        if self.base is not None:
            parts = urlsplit(url)
            url = urlunsplit(
                parts._replace(
                    scheme=self.base.scheme,
                    netloc=self.base.netloc,
                    path=self.base.path.rstrip("/") + parts.path,
                )
            )
        extra = getattr(self._local, "extra_headers", None)
        if extra:
            kwargs["headers"] = {**(kwargs.get("headers") or {}), **extra}
        self._local.headers = {}
        response = super().request(method, url, *args, **kwargs)
        self._local.headers = response.headers or {}
        return response

    @contextmanager
    def extra_headers(self, headers: Mapping[str, str]) -> Iterator[None]:
        """Send `headers` with this thread's requests inside the block (`messages.create`
        takes no headers of its own)."""
        self._local.extra_headers = dict(headers)
        try:
            yield
        finally:
            self._local.extra_headers = None

    @property
    def last_headers(self) -> Mapping[str, str]:
        return getattr(self._local, "headers", {})


class TwilioSmsProvider:
    name = "twilio"

    def __init__(
        self,
        *,
        account_sid: str,
        auth_token: str,
        from_number: str,
        api_base: str,
        timeout: float,
    ):
        self.http_client = BaseUrlHttpClient(base_url=api_base, timeout=timeout)
        self.client = Client(account_sid, auth_token, http_client=self.http_client)
        self.from_number = from_number

    def send(self, message: OutboundMessage) -> ProviderResult:
        """`status_callback` carries `message_id=<our id>` in its query, so the status
        webhook finds the message without a lookup by Twilio's sid."""
        callback = url_with_message_id(message.status_callback_url, message.message_id)
        kwargs = {"to": message.to, "body": message.text}
        if self.from_number.startswith(MESSAGING_SERVICE_PREFIX):
            kwargs["messaging_service_sid"] = self.from_number
        else:
            kwargs["from_"] = self.from_number
        if callback:
            kwargs["status_callback"] = callback
        try:
            # Our key as Twilio's idempotency token, so that Twilio can recognize a resend
            # (dispatch resends only what Twilio certainly did not take; see
            # ProviderTransientError.ambiguous).
            with self.http_client.extra_headers({IDEMPOTENCY_HEADER: message.message_id}):
                created = self.client.messages.create(**kwargs)
        except TwilioException as exc:
            raise self._error(exc) from exc
        except requests.RequestException as exc:
            raise ProviderTransientError(
                f"Twilio unreachable: {exc}", ambiguous=request_may_have_arrived(exc)
            ) from exc
        return ProviderResult(provider_message_id=created.sid or "", accepted=True)

    def _error(self, exc: TwilioException) -> Exception:
        status = int(getattr(exc, "status", 0) or 0)
        code = getattr(exc, "code", None)
        reason = f"Twilio {status} ({code}): {getattr(exc, 'msg', '') or exc}"
        if status_is_transient(status):
            return ProviderTransientError(
                reason,
                retry_after=retry_after_seconds(self.http_client.last_headers.get("Retry-After")),
                status=status,
                ambiguous=status_is_ambiguous(status),
            )
        return ProviderPermanentError(
            reason,
            endpoint_unreachable=code in TWILIO_UNREACHABLE_CODES,
            status=status,
            provider_code=str(code or status),
        )
