"""Stand-in provider servers (tests/stand_ins.py), one per session, reset for each test, and
the settings that point the providers at them."""

import base64
import json
import os

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from tests.stand_ins import PushStandIn, SendGridStandIn, TwilioStandIn

TWILIO_SID = "AC" + "0" * 31 + "1"


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _raw_public(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )


@pytest.fixture(scope="session")
def _sendgrid_server():
    server = SendGridStandIn()
    yield server
    server.close()


@pytest.fixture(scope="session")
def _twilio_server():
    server = TwilioStandIn()
    yield server
    server.close()


@pytest.fixture(scope="session")
def _push_server():
    server = PushStandIn()
    yield server
    server.close()


@pytest.fixture
def sendgrid_stand_in(_sendgrid_server, settings):
    _sendgrid_server.reset()
    settings.SENDGRID_API_KEY = "SG.test-key"
    settings.SENDGRID_API_HOST = _sendgrid_server.url
    settings.SENDGRID_FROM_EMAIL = "news@shop.example"
    settings.CAMPAIGN_EMAIL_BACKEND = "sendgrid"
    settings.PROVIDER_TIMEOUT_SECONDS = 5.0
    yield _sendgrid_server
    _sendgrid_server.reset()


@pytest.fixture
def twilio_stand_in(_twilio_server, settings):
    _twilio_server.reset()
    settings.TWILIO_ACCOUNT_SID = TWILIO_SID
    settings.TWILIO_AUTH_TOKEN = "twilio-test-token"
    settings.TWILIO_FROM_NUMBER = "+15005550006"
    settings.TWILIO_API_BASE = _twilio_server.url
    settings.CAMPAIGN_SMS_BACKEND = "twilio"
    settings.PROVIDER_TIMEOUT_SECONDS = 5.0
    yield _twilio_server
    _twilio_server.reset()


@pytest.fixture(scope="session")
def vapid_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


@pytest.fixture
def push_stand_in(_push_server, settings, vapid_key):
    _push_server.reset()
    settings.VAPID_PRIVATE_KEY = b64url(vapid_key.private_numbers().private_value.to_bytes(32))
    settings.VAPID_PUBLIC_KEY = b64url(_raw_public(vapid_key))
    settings.VAPID_CLAIMS_EMAIL = "mailto:push@shop.example"
    settings.CAMPAIGN_PUSH_BACKEND = "webpush"
    settings.PROVIDER_TIMEOUT_SECONDS = 5.0
    yield _push_server
    _push_server.reset()


class Browser:
    """A browser's push subscription: its ECDH key pair and auth secret."""

    def __init__(self, endpoint: str):
        self.private_key = ec.generate_private_key(ec.SECP256R1())
        self.auth_secret = os.urandom(16)
        self.endpoint = endpoint

    def subscription_json(self) -> str:
        return json.dumps(
            {
                "endpoint": self.endpoint,
                "keys": {
                    "p256dh": b64url(_raw_public(self.private_key)),
                    "auth": b64url(self.auth_secret),
                },
            }
        )


@pytest.fixture
def browser(push_stand_in) -> Browser:
    return Browser(push_stand_in.endpoint("browser-1"))
