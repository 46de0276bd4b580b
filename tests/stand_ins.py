"""Local stand-ins for the providers' HTTP APIs: SendGrid v3 Mail Send, Twilio's Messages
resource, and a Web Push service. Each is a threaded HTTP/1.1 server on 127.0.0.1 that records
every request and answers in the provider's real response shape. Tests (and the throughput
benchmark) point the clients at them through settings, never by patching a client.

    stand_in.fail_next(2, 429, retry_after=7)   # the next two requests get 429
    stand_in.fail_for("bad@example.com", 400)   # every request for this recipient gets 400
    stand_in.delay = 2.0                        # answer late (client timeouts)

The SendGrid stand-ins also answer the Email Activity API's `GET /v3/messages?query=
(unique_args['message_id']="<id>")` from the messages they accepted, which is how dispatch
settles the sends of a crashed worker. `python -m tests.stand_ins sendgrid --port N` runs a
lean asyncio SendGrid stand-in in a process of its own for the benchmarks: it keeps only counts
per message id and of requests (`GET /stand-in/stats`), so that it costs little CPU next to the
workers. A mail/send request with several personalizations (campaigns/providers/email.py
`send_many`) counts, and is recorded in `requests`, as one message per personalization, with its
substitutions applied; `http_requests` records the HTTP requests themselves.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import re
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote_plus, urlsplit


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
        self.http_requests: list[RecordedRequest] = []
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
                self._answer(stand_in.handle(self._request("POST", body)))

            def do_GET(self) -> None:
                self._answer(stand_in.query(self._request("GET", b"")))

            def _request(self, method: str, body: bytes) -> RecordedRequest:
                parts = urlsplit(self.path)
                return RecordedRequest(
                    method=method,
                    path=parts.path,
                    query=parse_qs(parts.query),
                    headers=dict(self.headers.items()),
                    body=body,
                )

            def _answer(self, answer: Answer) -> None:
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
            self.http_requests.clear()
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
        messages = self.messages(request)
        with self._lock:
            self.count += 1
            if self.record:
                self.requests.extend(messages)
                self.http_requests.append(request)
            failure = next(
                (f for m in messages if (f := self._by_recipient.get(self.recipient(m)))), None
            )
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

    def query(self, request: RecordedRequest) -> Answer:
        """A GET (not recorded in `requests`); only the SendGrid stand-in answers one."""
        return _json(404, {"errors": [{"field": None, "message": "not found"}]})

    def messages(self, request: RecordedRequest) -> list[RecordedRequest]:
        """What `requests` records of one HTTP request: the request (one message)."""
        return [request]

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


ACTIVITY_QUERY = re.compile(r"unique_args\['message_id'\]=\"([^\"]*)\"")


def _substituted(value, substitutions: dict) -> str:
    for tag, replacement in substitutions.items():
        value = str(value).replace(tag, str(replacement))
    return value


def sendgrid_expand(payload: dict) -> list[dict]:
    """A v3 mail/send JSON as the messages SendGrid makes of it, each in the shape of a
    one-recipient body: per personalization its recipient, its subject (else the request's),
    the request's headers and custom args updated with its own, and its substitutions applied
    to subject and content. A one-personalization body without substitutions is returned as it
    is."""
    personalizations = payload.get("personalizations") or []
    if len(personalizations) == 1 and not personalizations[0].get("substitutions"):
        return [payload]
    messages = []
    for personalization in personalizations:
        substitutions = personalization.get("substitutions") or {}
        message = {k: v for k, v in payload.items() if k != "personalizations"}
        message["personalizations"] = [{"to": personalization.get("to")}]
        message["subject"] = _substituted(
            personalization.get("subject", payload.get("subject", "")), substitutions
        )
        message["content"] = [
            {**part, "value": _substituted(part.get("value", ""), substitutions)}
            for part in payload.get("content") or []
        ]
        headers = {**payload.get("headers", {}), **personalization.get("headers", {})}
        if headers:
            message["headers"] = headers
        message["custom_args"] = {
            **payload.get("custom_args", {}),
            **personalization.get("custom_args", {}),
        }
        messages.append(message)
    return messages


def sendgrid_message_ids(body: bytes) -> list[str]:
    """Our message ids in a v3 mail/send body (the `message_id` custom arg of each
    personalization, else of the request)."""
    try:
        payload = json.loads(body)
        default = (payload.get("custom_args") or {}).get("message_id", "")
        return [
            str((p.get("custom_args") or {}).get("message_id", default))
            for p in payload["personalizations"]
        ]
    except (ValueError, KeyError, TypeError, AttributeError):
        return [""]


def sendgrid_activity(query: str, accepted: dict[str, str]) -> Answer:
    """The Email Activity API's answer to `query` (only our `unique_args['message_id']`
    filter is understood) from {message id: X-Message-Id} of the accepted messages."""
    match = ACTIVITY_QUERY.search(query)
    found = accepted.get(match.group(1)) if match else None
    messages = [{"msg_id": f"{found}.filter0001", "status": "processed"}] if found else []
    return _json(200, {"messages": messages})


class SendGridStandIn(StandIn):
    """POST /v3/mail/send: 202 with an empty body and X-Message-Id; errors as
    `{"errors": [{"message", "field", "help"}]}`. GET /v3/messages: the Email Activity API."""

    def __init__(self) -> None:
        self.accepted: dict[str, str] = {}
        super().__init__()

    def reset(self) -> None:
        super().reset()
        with self._lock:
            self.accepted.clear()

    def query(self, request: RecordedRequest) -> Answer:
        if request.path != "/v3/messages":
            return super().query(request)
        with self._lock:
            return sendgrid_activity((request.query.get("query") or [""])[0], self.accepted)

    def messages(self, request: RecordedRequest) -> list[RecordedRequest]:
        """One recorded request per personalization, in the shape of a one-message body (see
        `sendgrid_expand`), so that tests read every message the same way, batched or not."""
        try:
            payload = request.json()
            expanded = sendgrid_expand(payload)
        except (ValueError, TypeError, AttributeError):
            return [request]
        if expanded == [payload]:
            return [request]
        return [
            RecordedRequest(
                method=request.method,
                path=request.path,
                query=request.query,
                headers=request.headers,
                body=json.dumps(message).encode(),
            )
            for message in expanded
        ]

    def recipient(self, request: RecordedRequest) -> str:
        try:
            return request.json()["personalizations"][0]["to"][0]["email"]
        except (ValueError, KeyError, IndexError, TypeError):
            return ""

    def success(self, request: RecordedRequest, number: int) -> Answer:
        if request.path != "/v3/mail/send":
            return _json(404, {"errors": [{"field": None, "message": "not found"}]})
        with self._lock:
            for message_id in sendgrid_message_ids(request.body):
                self.accepted[message_id] = f"sg-msg-{number}"
        return Answer(202, b"", {"X-Message-Id": f"sg-msg-{number}"})

    def _failing_index(self, request: RecordedRequest) -> int:
        """The position of the first personalization whose recipient is set to fail."""
        recipients = [self.recipient(m) for m in self.messages(request)]
        return next((i for i, r in enumerate(recipients) if r in self._by_recipient), 0)

    def error(self, request: RecordedRequest, failure: Failure) -> Answer:
        error: dict[str, str | None]
        if failure.status == 400:
            error = {
                "message": "Does not contain a valid address.",
                "field": f"personalizations.{self._failing_index(request)}.to.0.email",
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


class LeanSendGrid(asyncio.Protocol):
    """One connection to the lean SendGrid stand-in (HTTP/1.1, Content-Length bodies only):
    POST /v3/mail/send, GET /v3/messages, GET /stand-in/stats, POST /stand-in/reset."""

    received: Counter = Counter()  # message id -> requests (shared by all connections)
    accepted: dict[str, str] = {}
    http_requests = 0  # mail/send requests (one carries several messages when batched)
    numbers = itertools.count(1)

    def connection_made(self, transport) -> None:
        self.transport = transport
        self.buffer = b""

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while True:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            lines = self.buffer[:end].decode("latin-1").split("\r\n")
            headers = {
                k.strip().lower(): v.strip()
                for k, _, v in (line.partition(":") for line in lines[1:])
            }
            length = int(headers.get("content-length") or 0)
            if len(self.buffer) < end + 4 + length:
                return
            body = self.buffer[end + 4 : end + 4 + length]
            self.buffer = self.buffer[end + 4 + length :]
            method, target = lines[0].split(" ")[:2]
            self._reply(self.answer(method, target, body))
            if headers.get("connection", "").lower() == "close":
                self.transport.close()
                return

    def answer(self, method: str, target: str, body: bytes) -> Answer:
        path, _, query = target.partition("?")
        cls = type(self)
        if method == "POST" and path == "/v3/mail/send":
            number = f"sg-msg-{next(cls.numbers)}"
            cls.http_requests += 1
            for message_id in sendgrid_message_ids(body):
                cls.received[message_id] += 1
                cls.accepted.setdefault(message_id, number)
            return Answer(202, b"", {"X-Message-Id": number})
        if method == "GET" and path == "/v3/messages":
            return sendgrid_activity(unquote_plus(query), cls.accepted)
        if path == "/stand-in/stats":
            return _json(200, {**lean_stats(cls.received), "http_requests": cls.http_requests})
        if method == "POST" and path == "/stand-in/reset":
            cls.received.clear()
            cls.accepted.clear()
            cls.http_requests = 0
            return _json(200, {})
        return _json(404, {"errors": [{"field": None, "message": "not found"}]})

    def _reply(self, answer: Answer) -> None:
        head = [f"HTTP/1.1 {answer.status} X", f"Content-Length: {len(answer.body)}"]
        head += [f"{k}: {v}" for k, v in answer.headers.items()]
        self.transport.write(("\r\n".join(head) + "\r\n\r\n").encode() + answer.body)


def lean_stats(received: Counter) -> dict:
    return {
        "requests": sum(received.values()),
        "unique": len(received),
        "duplicates": sum(n - 1 for n in received.values()),
    }


def lean_sendgrid_serve(port: int) -> None:
    async def serve() -> None:
        server = await asyncio.get_running_loop().create_server(
            LeanSendGrid, "127.0.0.1", port, backlog=1024
        )
        async with server:
            await server.serve_forever()

    asyncio.run(serve())


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="A provider stand-in in its own process.")
    parser.add_argument("provider", choices=["sendgrid"])
    parser.add_argument("--port", type=int, required=True)
    lean_sendgrid_serve(parser.parse_args().port)
