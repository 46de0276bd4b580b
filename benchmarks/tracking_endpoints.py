"""Tracking and webhook costs: open pixel (first and repeated), click redirect, a SendGrid
webhook delivery of 1,000 events, and one conversion-attribution batch.

Builds a scratch database with one campaign sent to N customers (sent messages, email
endpoints, purchases after the send for some), then measures through Django's test client
(no network, one process; the full view and middleware stack and PostgreSQL). Prints JSON on
its last line: milliseconds per request (median and p95), per webhook delivery and per
attribution batch, and their query counts.

    .venv/bin/python benchmarks/tracking_endpoints.py [--customers 5000]
"""

import argparse
import base64
import json
import statistics
import time

from _scratch import bench_env, database_reset, django_setup
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

DB = "marketing_bench_tracking"
_KEY = ec.generate_private_key(ec.SECP256R1())
_PUBLIC = _KEY.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
_ENV = bench_env(DB, redis_db=14, SENDGRID_WEBHOOK_PUBLIC_KEY=base64.b64encode(_PUBLIC).decode())


def _signed(payload: str, timestamp: str) -> dict:
    signature = _KEY.sign((timestamp + payload).encode(), ec.ECDSA(hashes.SHA256()))
    return {
        "X-Twilio-Email-Event-Webhook-Signature": base64.b64encode(signature).decode(),
        "X-Twilio-Email-Event-Webhook-Timestamp": timestamp,
    }


def _prepare(customers: int) -> list[str]:
    from django.utils import timezone

    from campaigns.models import Campaign, Message
    from profiles.models import Customer, Event

    now = timezone.now()
    campaign = Campaign.objects.create(name="Bench", channel="email", status="sending")
    people = Customer.objects.bulk_create(
        Customer(external_id=f"b-{i}", email=f"b-{i}@example.com") for i in range(customers)
    )
    Message.objects.bulk_create(
        Message(
            campaign=campaign,
            customer=c,
            channel="email",
            address=c.email,
            idempotency_key=f"{campaign.pk}:0:{c.pk}:email",
            status="sent",
            sent_at=now - timezone.timedelta(hours=2),
        )
        for c in people
    )
    Event.objects.bulk_create(
        Event(customer=c, type="purchase", value=10, occurred_at=now - timezone.timedelta(hours=1))
        for c in people[::3]
    )
    return [f"{campaign.pk}:0:{c.pk}:email" for c in people]


def _timed(fn, calls) -> tuple[float, float]:
    times = []
    for call in calls:
        started = time.perf_counter()
        fn(call)
        times.append((time.perf_counter() - started) * 1000)
    times.sort()
    return round(statistics.median(times), 2), round(times[int(len(times) * 0.95)], 2)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--customers", type=int, default=5000)
    parser.add_argument("--requests", type=int, default=500)
    args = parser.parse_args()
    database_reset(DB, _ENV)
    django_setup(_ENV)
    from django.core.cache import cache
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from campaigns import tracking
    from campaigns.conversions import WATERMARK_KEY, conversions_attribute_new

    keys = _prepare(args.customers)
    client = Client(SERVER_NAME="localhost")
    sample = keys[: args.requests]
    strip = len(_ENV.get("PUBLIC_BASE_URL", "http://localhost:8000"))

    def get(url):
        if client.get(url[strip:]).status_code not in (200, 302):
            raise RuntimeError(url)

    first_open = _timed(get, [tracking.open_url(k) for k in sample])
    repeat_open = _timed(get, [tracking.open_url(k) for k in sample])
    click = _timed(get, [tracking.click_url(k, "https://shop.example/p/1") for k in sample])

    events = [
        {"event": name, "email": "x@example.com", "timestamp": int(time.time()),
         "sg_event_id": f"{name}-{i}", "message_id": key}
        for i, key in enumerate(keys[1000:1250])
        for name in ("processed", "delivered", "open", "click")
    ]  # fmt: skip
    with CaptureQueriesContext(connection) as webhook_queries:
        started = time.perf_counter()
        payload = json.dumps(events)
        response = client.post(
            "/webhooks/sendgrid/events",
            data=payload,
            content_type="application/json",
            headers=_signed(payload, str(int(time.time()))),
        )
        webhook_ms = (time.perf_counter() - started) * 1000
    if response.status_code != 200:
        raise RuntimeError(response.content)

    cache.delete(WATERMARK_KEY)
    with CaptureQueriesContext(connection) as attribution_queries:
        started = time.perf_counter()
        result = conversions_attribute_new()
        attribution_ms = (time.perf_counter() - started) * 1000
    print(
        json.dumps(
            {
                "customers": args.customers,
                "open_first_ms_median_p95": first_open,
                "open_repeat_ms_median_p95": repeat_open,
                "click_ms_median_p95": click,
                "webhook_1000_events_ms": round(webhook_ms, 1),
                "webhook_queries": len(webhook_queries),
                "attribution_events": result.events,
                "attribution_converted": result.converted,
                "attribution_ms": round(attribution_ms, 1),
                "attribution_queries": len(attribution_queries),
            }
        )
    )


if __name__ == "__main__":
    main()
