"""Logging setup: every record's message is masked for email addresses, phone numbers and
credentials.

Our code logs ids, never contact details; this catches what others log on our behalf, such as
Django's "Not Found: /api/v1/customers/ada@example.com/" when a storefront sends an email
address as a customer id. Masking happens when the record is made, so every handler (the
console, Sentry, pytest's caplog) sees the masked text.
"""

import logging
import logging.config
import re

EMAIL = re.compile(r"[\w.+-]+(?:@|%40)[\w-]+(?:\.[\w-]+)+", re.IGNORECASE)
# Phone numbers as we store and send them (E.164, "+4915112345678"), separators allowed; a
# plain run of digits stays (ids, timestamps).
PHONE = re.compile(r"(?<![\w+])(?:\+|%2B)\d(?:[\s().-]?\d){7,14}(?!\d)", re.IGNORECASE)


# Credentials in headers that HTTP clients log at DEBUG (SendGrid's client logs its headers).
CREDENTIAL = re.compile(r"\b(Bearer|Basic|Api-Key)\s+[\w.+/=-]+")


def pii_mask(text: str) -> str:
    text = CREDENTIAL.sub(r"\1 [secret]", text)
    return PHONE.sub("[phone]", EMAIL.sub("[email]", text))


_base_factory = logging.getLogRecordFactory()


def _masking_record_factory(*args, **kwargs) -> logging.LogRecord:
    record = _base_factory(*args, **kwargs)
    try:
        message = record.getMessage()
    except Exception:  # noqa: BLE001 - a bad format string is logging's to report, not ours
        return record
    masked = pii_mask(message)
    if masked != message:
        record.msg, record.args = masked, None
    return record


def configure(config: dict) -> None:
    """settings.LOGGING_CONFIG: dictConfig plus the masking record factory."""
    logging.config.dictConfig(config)
    logging.setLogRecordFactory(_masking_record_factory)
