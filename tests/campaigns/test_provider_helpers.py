"""Pure helpers of the provider layer and the Redis token bucket."""

import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import pytest
import redis
from django.conf import settings as django_settings

from campaigns.providers import ProviderTransientError, rate_limiter_for
from campaigns.providers.base import (
    backoff_delay,
    push_topic,
    retry_after_seconds,
    url_with_message_id,
)
from campaigns.providers.ratelimit import KEY_PREFIX, Bucket, RedisTokenBucket, bucket_take

NOW = datetime(2026, 11, 23, 12, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("7", 7.0),
        (" 2.5 ", 2.5),
        ("-3", 0.0),
        ("Mon, 23 Nov 2026 12:00:30 GMT", 30.0),
        ("Mon, 23 Nov 2026 11:00:00 GMT", 0.0),
        ("soon", None),
        ("", None),
        (None, None),
    ],
)
def test_retry_after_seconds_reads_seconds_and_http_dates(value, expected):
    assert retry_after_seconds(value, now=NOW) == expected


def test_backoff_delay_honours_retry_after_then_grows_exponentially_with_jitter_and_cap():
    assert backoff_delay(3, retry_after=12.0) == 12.0
    assert backoff_delay(1, retry_after=9999.0, cap=600.0) == 600.0
    assert [backoff_delay(n, base=2.0, rand=lambda: 1.0) for n in (1, 2, 3, 4)] == [2, 4, 8, 16]
    assert backoff_delay(20, base=2.0, cap=300.0, rand=lambda: 0.5) == 150.0


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://m.example/cb", "https://m.example/cb?message_id=abc"),
        ("https://m.example/cb?v=1", "https://m.example/cb?v=1&message_id=abc"),
        ("https://m.example/cb?message_id=abc", "https://m.example/cb?message_id=abc"),
        ("", ""),
    ],
)
def test_url_with_message_id(url, expected):
    assert url_with_message_id(url, "abc") == expected


def test_push_topic_keeps_short_url_safe_ids_and_hashes_others():
    assert push_topic("c7-v1-c42") == "c7-v1-c42"
    hashed = push_topic("campaign:7/variant:1/customer:42")
    assert len(hashed) == 32
    assert hashed == push_topic("campaign:7/variant:1/customer:42")
    assert push_topic("x" * 33) != "x" * 33


# --- Token bucket core ------------------------------------------------------------------------


def test_bucket_take_starts_full_and_empties():
    bucket = None
    waits = []
    for _ in range(4):
        bucket, wait = bucket_take(bucket, now=100.0, rate=2.0, capacity=3.0)
        waits.append(wait)

    assert waits == [0.0, 0.0, 0.0, 0.5]
    assert bucket == Bucket(tokens=0.0, updated_at=100.0)


def test_bucket_take_refills_at_rate_up_to_capacity():
    bucket, wait = bucket_take(
        Bucket(tokens=0.0, updated_at=100.0), now=100.25, rate=2.0, capacity=3.0
    )
    assert (bucket, wait) == (Bucket(tokens=0.5, updated_at=100.25), 0.25)

    bucket, wait = bucket_take(bucket, now=200.0, rate=2.0, capacity=3.0)
    assert (bucket, wait) == (Bucket(tokens=2.0, updated_at=200.0), 0.0)


def test_bucket_take_ignores_a_clock_that_went_backwards():
    bucket, wait = bucket_take(
        Bucket(tokens=0.0, updated_at=100.0), now=90.0, rate=1.0, capacity=5.0
    )

    assert (bucket, wait) == (Bucket(tokens=0.0, updated_at=100.0), 1.0)


def test_bucket_take_with_cost_above_tokens_waits_for_the_difference():
    bucket, wait = bucket_take(
        Bucket(tokens=1.0, updated_at=0.0), now=0.0, rate=4.0, capacity=10.0, cost=3.0
    )

    assert (bucket, wait) == (Bucket(tokens=1.0, updated_at=0.0), 0.5)


# --- Redis ------------------------------------------------------------------------------------


@pytest.fixture
def redis_client():
    client = redis.Redis.from_url(django_settings.REDIS_URL)
    client.delete(KEY_PREFIX + "test")
    yield client
    client.delete(KEY_PREFIX + "test")


def test_redis_bucket_allows_a_burst_then_asks_to_wait(redis_client):
    bucket = RedisTokenBucket(name="test", rate=0.001, capacity=3, client=redis_client)

    waits = [bucket.try_take() for _ in range(4)]

    assert waits[:3] == [0.0, 0.0, 0.0]
    assert 999.0 < waits[3] <= 1000.0
    assert float(redis_client.hget(KEY_PREFIX + "test", "tokens")) < 0.01
    assert 0 < redis_client.ttl(KEY_PREFIX + "test") <= 3060


def test_redis_bucket_take_raises_transient_with_retry_after_instead_of_waiting_long(
    redis_client,
):
    bucket = RedisTokenBucket(name="test", rate=0.001, capacity=1, client=redis_client)
    slept = []
    bucket.take(sleep=slept.append)

    with pytest.raises(ProviderTransientError) as caught:
        bucket.take(max_wait=1.0, sleep=slept.append)

    assert slept == []
    assert caught.value.status == 429
    assert 999.0 < caught.value.retry_after <= 1000.0


def test_redis_bucket_take_sleeps_for_a_short_wait(redis_client):
    bucket = RedisTokenBucket(name="test", rate=10.0, capacity=1, client=redis_client)
    slept = []

    def sleep(seconds):
        slept.append(seconds)
        time.sleep(seconds)

    bucket.take(sleep=sleep)
    bucket.take(max_wait=1.0, sleep=sleep)

    assert len(slept) >= 1
    assert all(0 < s <= 0.1 for s in slept)


def test_rate_limiter_for_reads_the_provider_rate_setting(settings, redis_client):
    settings.TWILIO_RATE_PER_SECOND = 4.0

    limiter = rate_limiter_for("twilio")

    assert (limiter.name, limiter.rate, limiter.capacity) == ("twilio", 4.0, 4.0)
    assert rate_limiter_for("file").try_take() == 0.0
    assert redis_client.exists(KEY_PREFIX + "file") == 0


def test_redis_bucket_hands_out_exactly_its_capacity_to_concurrent_takers(redis_client):
    bucket = RedisTokenBucket(name="test", rate=0.001, capacity=20, client=redis_client)

    with ThreadPoolExecutor(max_workers=8) as pool:
        waits = list(pool.map(lambda _: bucket.try_take(), range(60)))

    assert waits.count(0.0) == 20
