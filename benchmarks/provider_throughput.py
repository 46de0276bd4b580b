"""Benchmark: hand N personalized emails to SendGrid through `SendGridEmailProvider`, against the
local SendGrid stand-in (tests/stand_ins.py) running in its own process.

    .venv/bin/python benchmarks/provider_throughput.py [--emails 5000] [--threads 4]

Measures the hand-off part of the issue's target (>= 1,000 personalized emails/s rendered and
handed to the provider on 2 cores): building the v3 body and the HTTP call, with a few
threads, first one request per email (`send`), then as dispatch sends them, `send_many` with
SENDGRID_BATCH_SIZE (500) personalizations per request (`sendgrid_client_batched`, the figure
the target is checked on). Next to them, the same bodies posted over keep-alive connections,
with a `requests.Session` and with one `http.client` connection per thread, to show what the
`sendgrid` client's transport costs (python_http_client builds a urllib opener and opens a new
connection for every request). `client_cpu_us_per_email` is this process's CPU per email
(the stand-in's is not counted): what the hand-off costs a worker. Each unbatched run checks
that every email got its own X-Message-Id, the batched one that every email was accepted. No
database; Redis is not touched (the rate limit is off). The machine's other load makes the
throughput figures noisy; the CPU figures are steadier. JSON on the last line.
"""

import argparse
import http.client
import json
import multiprocessing
import os
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "marketing.settings")
os.environ.setdefault("DJANGO_DEBUG", "1")
os.environ.setdefault("LOG_LEVEL", "WARNING")


def _serve(conn) -> None:
    from tests.stand_ins import SendGridStandIn

    stand_in = SendGridStandIn()
    stand_in.record = False
    conn.send(stand_in.url)
    conn.recv()  # until the parent says stop
    conn.send(stand_in.count)
    stand_in.close()


def _messages(n: int, run: str):
    from campaigns.providers import OutboundMessage

    return [
        OutboundMessage(
            message_id=f"{run}-{i}",
            channel="email",
            to=f"customer{i}@example.com",
            subject=f"Customer {i}, your picks for this week",
            html=f"<p>Hello customer {i}</p><p>Item {i % 97}, item {i % 89}, item {i % 83}</p>",
            text=f"Hello customer {i}: item {i % 97}, item {i % 89}, item {i % 83}",
            headers={
                "List-Unsubscribe": f"<https://shop.example/u/{i}>",
                "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
            },
            categories=("campaign-1", "variant-a"),
            custom_args={"campaign_id": "1"},
        )
        for i in range(n)
    ]


def _timed_batched(provider, messages, threads: int) -> dict:
    """`provider.send_many` over groups of `provider.batch_size`, from `threads` threads."""
    groups = [
        messages[i : i + provider.batch_size] for i in range(0, len(messages), provider.batch_size)
    ]
    started, cpu_started = time.perf_counter(), time.process_time()
    with ThreadPoolExecutor(max_workers=threads) as pool:
        outcomes = [o for results in pool.map(provider.send_many, groups) for o in results]
    seconds = time.perf_counter() - started
    cpu = time.process_time() - cpu_started
    failed = [o for o in outcomes if not getattr(o, "provider_message_id", None)]
    if len(outcomes) != len(messages) or failed:
        raise RuntimeError(f"{len(failed)} of {len(messages)} emails were not accepted")
    return {
        "seconds": round(seconds, 3),
        "emails_per_s": round(len(messages) / seconds),
        "emails_per_request": provider.batch_size,
        "requests": len(groups),
        "client_cpu_us_per_email": round(cpu / len(messages) * 1e6),
    }


def _timed(send, messages, threads: int) -> dict:
    started, cpu_started = time.perf_counter(), time.process_time()
    with ThreadPoolExecutor(max_workers=threads) as pool:
        ids = list(pool.map(send, messages))
    seconds = time.perf_counter() - started
    cpu = time.process_time() - cpu_started
    if len(set(ids)) != len(messages) or not all(ids):
        raise RuntimeError("an email got no X-Message-Id or a repeated one")
    return {
        "seconds": round(seconds, 3),
        "emails_per_s": round(len(messages) / seconds),
        # CPU of this process (not the stand-in's) per email: what the hand-off costs a worker.
        "client_cpu_us_per_email": round(cpu / len(messages) * 1e6),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--emails", type=int, default=5000)
    parser.add_argument("--threads", type=int, default=4)
    args = parser.parse_args()

    import django

    django.setup()
    import requests
    from django.conf import settings

    from campaigns.providers.email import SendGridEmailProvider, sendgrid_mail_body

    parent, child = multiprocessing.Pipe()
    server = multiprocessing.Process(target=_serve, args=(child,), daemon=True)
    server.start()
    url = parent.recv()
    try:
        provider = SendGridEmailProvider(
            api_key="SG.bench", host=url, from_email="news@shop.example", timeout=10.0
        )
        provider.send(_messages(1, "warm")[0])
        sendgrid = _timed(
            lambda m: provider.send(m).provider_message_id,
            _messages(args.emails, "sg"),
            args.threads,
        )

        batching = SendGridEmailProvider(
            api_key="SG.bench",
            host=url,
            from_email="news@shop.example",
            timeout=10.0,
            batch_size=settings.SENDGRID_BATCH_SIZE,
        )
        batched = _timed_batched(batching, _messages(args.emails, "sgb"), args.threads)

        session = requests.Session()
        adapter = requests.adapters.HTTPAdapter(pool_maxsize=args.threads)
        session.mount("http://", adapter)
        headers = {"Authorization": "Bearer SG.bench", "Content-Type": "application/json"}

        def keep_alive(message):
            body = sendgrid_mail_body(message, from_email="news@shop.example")
            response = session.post(f"{url}/v3/mail/send", json=body, headers=headers, timeout=10)
            response.raise_for_status()
            return response.headers["X-Message-Id"]

        keep_alive(_messages(1, "warm2")[0])
        reused = _timed(keep_alive, _messages(args.emails, "ka"), args.threads)

        local = threading.local()
        netloc = urlsplit(url).netloc

        def raw(message):
            connection = getattr(local, "connection", None)
            if connection is None:
                connection = local.connection = http.client.HTTPConnection(netloc, timeout=10)
            body = json.dumps(sendgrid_mail_body(message, from_email="news@shop.example"))
            connection.request("POST", "/v3/mail/send", body=body.encode(), headers=headers)
            response = connection.getresponse()
            response.read()
            if response.status != 202:
                raise RuntimeError(f"stand-in answered {response.status}")
            return response.headers["X-Message-Id"]

        raw(_messages(1, "warm3")[0])
        http_client = _timed(raw, _messages(args.emails, "raw"), args.threads)
    finally:
        parent.send("stop")
        received = parent.recv()
        server.join(timeout=5)

    result = {
        "benchmark": "provider_throughput",
        "emails": args.emails,
        "threads": args.threads,
        "cpus": os.cpu_count(),
        "sendgrid_client": sendgrid,
        "sendgrid_client_batched": batched,
        "keep_alive_session": reused,
        "keep_alive_http_client": http_client,
        "stand_in_requests": received,
        "target_emails_per_s": 1000,
        "ok": batched["emails_per_s"] >= 1000,
    }
    print(json.dumps(result))  # noqa: T201


if __name__ == "__main__":
    main()
