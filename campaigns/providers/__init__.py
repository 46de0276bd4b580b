"""Channel providers: how one rendered message leaves the building.

    provider = provider_for(Channel.EMAIL)        # by settings, cached per configuration
    rate_limiter_for(provider.name).take()        # the provider's shared rate limit
    result = provider.send(OutboundMessage(...))  # ProviderResult, or one of the errors

`CAMPAIGN_<CHANNEL>_BACKEND` chooses the backend; empty means the real provider when its keys
are set, else the file backend (JSON lines under CAMPAIGN_OUTBOX_DIR), so the demo runs with
no keys at all.
"""

from __future__ import annotations

import threading

import redis
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from campaigns.providers.base import (
    LookupProvider,
    OutboundMessage,
    Provider,
    ProviderError,
    ProviderPermanentError,
    ProviderResult,
    ProviderTransientError,
    backoff_delay,
)
from campaigns.providers.email import SendGridEmailProvider
from campaigns.providers.local import ConsoleProvider, FileProvider, InAppProvider
from campaigns.providers.push import WebPushProvider
from campaigns.providers.ratelimit import RedisTokenBucket
from campaigns.providers.sms import TwilioSmsProvider
from profiles.models import Channel

__all__ = [
    "LookupProvider",
    "OutboundMessage",
    "Provider",
    "ProviderError",
    "ProviderPermanentError",
    "ProviderResult",
    "ProviderTransientError",
    "backoff_delay",
    "provider_for",
    "rate_limiter_for",
]

REAL_BACKENDS: dict[str, str] = {
    Channel.EMAIL: "sendgrid",
    Channel.SMS: "twilio",
    Channel.PUSH: "webpush",
}
BACKEND_SETTINGS: dict[str, str] = {
    Channel.EMAIL: "CAMPAIGN_EMAIL_BACKEND",
    Channel.SMS: "CAMPAIGN_SMS_BACKEND",
    Channel.PUSH: "CAMPAIGN_PUSH_BACKEND",
}
RATE_SETTINGS = {
    "sendgrid": "SENDGRID_RATE_PER_SECOND",
    "twilio": "TWILIO_RATE_PER_SECOND",
    "webpush": "WEBPUSH_RATE_PER_SECOND",
}
REDIS_TIMEOUT_SECONDS = 2.0

_lock = threading.Lock()
_providers: dict[tuple, Provider] = {}
_redis_clients: dict[str, redis.Redis] = {}


def _keys_set(backend: str) -> bool:
    if backend == "sendgrid":
        return bool(settings.SENDGRID_API_KEY)
    if backend == "twilio":
        return bool(
            settings.TWILIO_ACCOUNT_SID
            and settings.TWILIO_AUTH_TOKEN
            and settings.TWILIO_FROM_NUMBER
        )
    if backend == "webpush":
        return bool(settings.VAPID_PRIVATE_KEY)
    return True


def backend_for(channel: str) -> str:
    """The backend name that `provider_for(channel)` uses."""
    if channel == Channel.IN_APP:
        return "in_app"
    if channel not in BACKEND_SETTINGS:
        raise ValueError(f"Unknown channel {channel!r}.")
    chosen = getattr(settings, BACKEND_SETTINGS[channel]).strip().lower()
    real = REAL_BACKENDS[channel]
    if not chosen:
        return real if _keys_set(real) else "file"
    if chosen not in (real, "file", "console"):
        raise ImproperlyConfigured(
            f"{BACKEND_SETTINGS[channel]}={chosen!r}: use {real}, file or console."
        )
    if not _keys_set(chosen):
        raise ImproperlyConfigured(
            f"{BACKEND_SETTINGS[channel]}={chosen} but its keys are not set."
        )
    return chosen


def _config(backend: str) -> tuple:
    timeout = settings.PROVIDER_TIMEOUT_SECONDS
    if backend == "sendgrid":
        return (
            settings.SENDGRID_API_KEY,
            settings.SENDGRID_API_HOST,
            settings.SENDGRID_FROM_EMAIL,
            timeout,
            settings.SENDGRID_BATCH_SIZE,
        )
    if backend == "twilio":
        return (
            settings.TWILIO_ACCOUNT_SID,
            settings.TWILIO_AUTH_TOKEN,
            settings.TWILIO_FROM_NUMBER,
            settings.TWILIO_API_BASE,
            timeout,
        )
    if backend == "webpush":
        return (
            settings.VAPID_PRIVATE_KEY,
            settings.VAPID_CLAIMS_EMAIL,
            settings.WEBPUSH_TTL_SECONDS,
            timeout,
        )
    if backend == "file":
        return (settings.CAMPAIGN_OUTBOX_DIR,)
    return ()


def _build(backend: str, config: tuple) -> Provider:
    if backend == "sendgrid":
        api_key, host, from_email, timeout, batch_size = config
        return SendGridEmailProvider(
            api_key=api_key,
            host=host,
            from_email=from_email,
            timeout=timeout,
            batch_size=batch_size,
        )
    if backend == "twilio":
        sid, token, from_number, api_base, timeout = config
        return TwilioSmsProvider(
            account_sid=sid,
            auth_token=token,
            from_number=from_number,
            api_base=api_base,
            timeout=timeout,
        )
    if backend == "webpush":
        key, email, ttl, timeout = config
        return WebPushProvider(vapid_private_key=key, claims_email=email, ttl=ttl, timeout=timeout)
    if backend == "file":
        return FileProvider(directory=config[0])
    if backend == "in_app":
        return InAppProvider()
    return ConsoleProvider()


def provider_for(channel: str) -> Provider:
    """The provider for a channel, built once per configuration (its HTTP client and
    connection pool are reused by every send in the process; safe to share across threads)."""
    backend = backend_for(channel)
    key = (backend, _config(backend))
    with _lock:
        provider = _providers.get(key)
        if provider is None:
            provider = _providers[key] = _build(backend, key[1])
    return provider


def rate_limiter_for(provider_name: str) -> RedisTokenBucket:
    """The shared token bucket of a provider (bursts up to one second's worth); backends
    without a rate setting (file, console, in_app) get an unlimited one."""
    setting = RATE_SETTINGS.get(provider_name)
    rate = float(getattr(settings, setting)) if setting else 0.0
    with _lock:
        client = _redis_clients.get(settings.REDIS_URL)
        if client is None:
            client = _redis_clients[settings.REDIS_URL] = redis.Redis.from_url(
                settings.REDIS_URL,
                socket_timeout=REDIS_TIMEOUT_SECONDS,
                socket_connect_timeout=REDIS_TIMEOUT_SECONDS,
            )
    return RedisTokenBucket(name=provider_name, rate=rate, capacity=max(1.0, rate), client=client)
