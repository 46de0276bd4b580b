"""Local stand-ins for the providers' HTTP APIs: SendGrid v3 Mail Send, Twilio's Messages
resource, and a Web Push service. Each is a threaded HTTP/1.1 server on 127.0.0.1 that records
every request and answers in the provider's real response shape. Tests (and the throughput
benchmark) point the clients at them through settings, never by patching a client.

    stand_in.fail_next(2, 429, retry_after=7)   # the next two requests get 429
    stand_in.fail_for("bad@example.com", 400)   # every request for this recipient gets 400
    stand_in.delay = 2.0                        # answer late (client timeouts)
"""

from __future__ import annotations

import itertools
import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes

    def header(self, name: str) -> str | None:
        wanted = name.lower()
        return next((v for k, v in self.headers.items() if k.lower() == wanted), None)

    def json(self):
        return json.loads(self.body)

    def form(self) -> dict[str, list[str]]:
        return parse_qs(self.body.decode(), keep_blank_values=True)


@dataclass
class Failure:
    status: int
    code: int | None = None
    retry_after: float | None = None
    remaining: int | None = None  # None: every matching request


@dataclass
class Answer:
    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)


class StandIn:
    """The server and the recording; subclasses speak one provider's API."""

    def __init__(self) -> None:
        self.requests: list[RecordedRequest] = []
        self.delay = 0.0
        self.record = True
        self.count = 0
        self._failures: list[Failure] = []
        self._by_recipient: dict[str, Failure] = {}
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                parts = urlsplit(self.path)
                request = RecordedRequest(
                    method="POST",
                    path=parts.path,
                    query=parse_qs(parts.query),
                    headers=dict(self.headers.items()),
                    body=body,
                )
                answer = stand_in.handle(request)
                self.send_response(answer.status)
                for name, value in answer.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(answer.body)))
                self.end_headers()
                if answer.body:
                    self.wfile.write(answer.body)

            def log_message(self, format, *args) -> None:  # noqa: A002
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.server.request_queue_size = 512
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def reset(self) -> None:
        with self._lock:
            self.requests.clear()
            self._failures.clear()
            self._by_recipient.clear()
            self.delay = 0.0
            self.count = 0
            self._ids = itertools.count(1)

    def fail_next(
        self, n: int, status: int, *, code: int | None = None, retry_after: float | None = None
    ) -> None:
        with self._lock:
            self._failures.append(Failure(status, code, retry_after, remaining=n))

    def fail_for(self, recipient: str, status: int, *, code: int | None = None) -> None:
        with self._lock:
            self._by_recipient[recipient] = Failure(status, code)

    def handle(self, request: RecordedRequest) -> Answer:
        with self._lock:
            self.count += 1
            if self.record:
                self.requests.append(request)
            failure = self._by_recipient.get(self.recipient(request))
            if failure is None and self._failures:
                failure = self._failures[0]
                failure.remaining = (failure.remaining or 1) - 1
                if failure.remaining <= 0:
                    self._failures.pop(0)
            number = next(self._ids)
        if self.delay:
            time.sleep(self.delay)
        if failure is not None:
            answer = self.error(request, failure)
            if failure.retry_after is not None:
                answer.headers["Retry-After"] = f"{failure.retry_after:g}"
            return answer
        return self.success(request, number)

    def recipient(self, request: RecordedRequest) -> str:
        raise NotImplementedError

    def success(self, request: RecordedRequest, number: int) -> Answer:
        raise NotImplementedError

    def error(self, request: RecordedRequest, failure: Failure) -> Answer:
        raise NotImplementedError


def _json(status: int, payload, headers: dict[str, str] | None = None) -> Answer:
    return Answer(
        status,
        json.dumps(payload).encode(),
        {"Content-Type": "application/json", **(headers or {})},
    )


class SendGridStandIn(StandIn):
    """POST /v3/mail/send: 202 with an empty body and X-Message-Id; errors as
    `{"errors": [{"message", "field", "help"}]}`."""

    def recipient(self, request: RecordedRequest) -> str:
        try:
            return request.json()["personalizations"][0]["to"][0]["email"]
        except (ValueError, KeyError, IndexError, TypeError):
            return ""

    def success(self, request: RecordedRequest, number: int) -> Answer:
        if request.path != "/v3/mail/send":
            return _json(404, {"errors": [{"field": None, "message": "not found"}]})
        return Answer(202, b"", {"X-Message-Id": f"sg-msg-{number}"})

    def error(self, request: RecordedRequest, failure: Failure) -> Answer:
        if failure.status == 400:
            error = {
                "message": "Does not contain a valid address.",
                "field": "personalizations.0.to.0.email",
                "help": "http://sendgrid.com/docs/API_Reference/Web_API_v3/Mail/errors.html",
            }
        elif failure.status == 429:
            error = {"field": None, "message": "too many requests"}
        else:
            error = {"field": None, "message": "internal error"}
        return _json(failure.status, {"errors": [error]})


TWILIO_DEFAULT_CODES = {400: 21211, 401: 20003, 404: 20404, 429: 20429, 500: 20500, 503: 20503}


class TwilioStandIn(StandIn):
    """POST /2010-04-01/Accounts/{sid}/Messages.json (form body): 201 with the Message resource
    JSON; errors as `{"code", "message", "more_info", "status"}`."""

    def recipient(self, request: RecordedRequest) -> str:
        return (request.form().get("To") or [""])[0]

    def success(self, request: RecordedRequest, number: int) -> Answer:
        form = {k: v[0] for k, v in request.form().items()}
        account = request.path.split("/")[3] if request.path.count("/") >= 4 else ""
        sid = f"SM{number:032x}"
        return _json(
            201,
            {
                "account_sid": account,
                "api_version": "2010-04-01",
                "body": form.get("Body", ""),
                "date_created": "Mon, 23 Nov 2026 12:00:00 +0000",
                "date_sent": None,
                "date_updated": "Mon, 23 Nov 2026 12:00:00 +0000",
                "direction": "outbound-api",
                "error_code": None,
                "error_message": None,
                "from": form.get("From"),
                "messaging_service_sid": None,
                "num_media": "0",
                "num_segments": "1",
                "price": None,
                "price_unit": "USD",
                "sid": sid,
                "status": "queued",
                "subresource_uris": {"media": f"{request.path[:-5]}/{sid}/Media.json"},
                "to": form.get("To"),
                "uri": f"{request.path[:-5]}/{sid}.json",
            },
        )

    def error(self, request: RecordedRequest, failure: Failure) -> Answer:
        code = failure.code or TWILIO_DEFAULT_CODES.get(failure.status, 20500)
        messages = {
            21211: f"The 'To' number {self.recipient(request)} is not a valid phone number.",
            21610: "Attempt to send to unsubscribed recipient",
            20429: "Too Many Requests",
        }
        return _json(
            failure.status,
            {
                "code": code,
                "message": messages.get(code, "Internal error"),
                "more_info": f"https://www.twilio.com/docs/errors/{code}",
                "status": failure.status,
            },
        )


class PushStandIn(StandIn):
    """A push service: POST <subscription endpoint path>, 201 Created with a Location; 410
    Gone for expired subscriptions. A subscription's endpoint is `stand_in.endpoint(name)`."""

    def endpoint(self, name: str) -> str:
        return f"{self.url}/push/{name}"

    def recipient(self, request: RecordedRequest) -> str:
        return request.path.rsplit("/", 1)[-1]

    def success(self, request: RecordedRequest, number: int) -> Answer:
        return Answer(201, b"", {"Location": f"{self.url}/m/{number}"})

    def error(self, request: RecordedRequest, failure: Failure) -> Answer:
        return _json(failure.status, {"code": failure.status, "errno": 0, "message": "failed"})
