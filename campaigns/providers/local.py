"""Backends that deliver nowhere: for the demo and development without provider keys, and
the in-app channel (its inbox is our own table, read by storefronts through the API)."""

from __future__ import annotations

import fcntl
import json
import logging
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path

from campaigns.providers.base import OutboundMessage, ProviderResult

logger = logging.getLogger(__name__)


def message_record(message: OutboundMessage) -> dict:
    record = asdict(message)
    record["headers"] = dict(message.headers)
    record["custom_args"] = dict(message.custom_args)
    record["categories"] = list(message.categories)
    record["sent_at"] = datetime.now(tz=UTC).isoformat()
    return record


def address_masked(address: str) -> str:
    """The first character and the domain (or the last two digits) of an address: enough to
    tell test recipients apart, too little to identify a customer in shipped logs."""
    if not address:
        return ""
    local, at, domain = address.partition("@")
    if at:
        return f"{local[:1]}***@{domain}"
    if len(address) <= 4:
        return "***"
    return f"{address[:1]}***{address[-2:]}"


class ConsoleProvider:
    """Logs each message (channel, message key, masked recipient) at INFO. The address is
    masked and the subject left out: both are personal data (a subject is personalized), and
    INFO logs go to log shipping with a longer retention than the customer profile."""

    name = "console"

    def send(self, message: OutboundMessage) -> ProviderResult:
        logger.info(
            "message sent to the console backend",
            extra={
                "message_id": message.message_id,
                "channel": message.channel,
                "to": address_masked(message.to),
            },
        )
        return ProviderResult(provider_message_id=f"console-{message.message_id}")


class FileProvider:
    """Appends each message as one JSON line to `<directory>/<channel>.jsonl` (the demo's
    outbox). Lines are written under an exclusive lock so that several workers can share the
    file."""

    name = "file"

    def __init__(self, *, directory: str | Path):
        self.directory = Path(directory)

    def path_for(self, channel: str) -> Path:
        return self.directory / f"{channel}.jsonl"

    def send(self, message: OutboundMessage) -> ProviderResult:
        self.directory.mkdir(parents=True, exist_ok=True)
        line = json.dumps(message_record(message), ensure_ascii=False) + "\n"
        with self.path_for(message.channel).open("a", encoding="utf-8") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                handle.write(line)
                handle.flush()
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)
        return ProviderResult(provider_message_id=f"file-{message.message_id}")


class InAppProvider:
    """In-app messages are not sent anywhere: the delivery row the dispatch stored is the
    inbox that `GET /api/v1/customers/{id}/messages` reads. Accepting here keeps the dispatch
    loop the same for every channel."""

    name = "in_app"

    def send(self, message: OutboundMessage) -> ProviderResult:
        return ProviderResult(provider_message_id=message.message_id)
