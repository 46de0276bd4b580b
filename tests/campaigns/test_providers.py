"""The channel providers over real HTTP against the local stand-ins (tests/stand_ins.py)."""

import base64
import json
import socket
from concurrent.futures import ThreadPoolExecutor

import http_ece
import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from django.core.exceptions import ImproperlyConfigured

from campaigns.providers import (
    OutboundMessage,
    ProviderPermanentError,
    ProviderResult,
    ProviderTransientError,
    backend_for,
    provider_for,
)
from campaigns.providers.local import ConsoleProvider, FileProvider, InAppProvider
from tests.campaigns.conftest import TWILIO_SID

UNSUBSCRIBE_HEADERS = {
    "List-Unsubscribe": "<https://shop.example/u/tok123>",
    "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
}


def email(to="ada@example.com", message_id="msg-1", **kwargs) -> OutboundMessage:
    return OutboundMessage(
        message_id=message_id,
        channel="email",
        to=to,
        subject="Your picks, Ada",
        html="<p>Hello Ada</p>",
        text="Hello Ada",
        headers=UNSUBSCRIBE_HEADERS,
        categories=("campaign-7", "variant-a"),
        custom_args={"campaign_id": "7"},
        **kwargs,
    )


def sms(to="+4915112345678", message_id="msg-2") -> OutboundMessage:
    return OutboundMessage(
        message_id=message_id,
        channel="sms",
        to=to,
        text="20% off today: https://shop.example/s",
        status_callback_url="https://marketing.example/webhooks/twilio/status?v=1",
    )


def push(to: str, message_id="msg-3") -> OutboundMessage:
    return OutboundMessage(
        message_id=message_id,
        channel="push",
        to=to,
        subject="Back in stock",
        text="The red shoes are back",
        custom_args={"url": "https://shop.example/p/9"},
    )


def _closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


# --- Every provider: transient errors --------------------------------------------------------


def _case(request, channel: str):
    """(stand-in, message) for a channel, with the provider pointed at the stand-in."""
    if channel == "email":
        return request.getfixturevalue("sendgrid_stand_in"), email()
    if channel == "sms":
        return request.getfixturevalue("twilio_stand_in"), sms()
    browser = request.getfixturevalue("browser")
    return request.getfixturevalue("push_stand_in"), push(browser.subscription_json())


CHANNELS = ["email", "sms", "push"]


@pytest.mark.parametrize("channel", CHANNELS)
def test_429_with_retry_after_is_transient_and_the_next_send_goes_through(request, channel):
    stand_in, message = _case(request, channel)
    stand_in.fail_next(1, 429, retry_after=7)

    with pytest.raises(ProviderTransientError) as caught:
        provider_for(channel).send(message)

    assert (caught.value.status, caught.value.retry_after) == (429, 7.0)
    assert caught.value.ambiguous is False  # the provider said it did not take it
    assert provider_for(channel).send(message).accepted is True
    assert stand_in.count == 2


@pytest.mark.parametrize("channel", CHANNELS)
@pytest.mark.parametrize("status", [408, 500, 503])
def test_408_and_5xx_are_transient_without_retry_after(request, channel, status):
    stand_in, message = _case(request, channel)
    stand_in.fail_next(1, status)

    with pytest.raises(ProviderTransientError) as caught:
        provider_for(channel).send(message)

    assert (caught.value.status, caught.value.retry_after) == (status, None)
    # A 5xx may come after the provider took the message: not to be sent again blindly.
    assert caught.value.ambiguous is (status >= 500)


@pytest.mark.parametrize("channel", CHANNELS)
def test_timeout_is_transient_and_ambiguous(request, settings, channel):
    stand_in, message = _case(request, channel)
    settings.PROVIDER_TIMEOUT_SECONDS = 0.2
    stand_in.delay = 1.0

    with pytest.raises(ProviderTransientError) as caught:
        provider_for(channel).send(message)

    assert "unreachable" in caught.value.reason
    assert (caught.value.status, caught.value.retry_after) == (0, None)
    # The request went out: the provider may have taken it, so the dispatch does not resend
    # it (tests/campaigns/test_dispatch.py, the ambiguous error), and the stand-in got it once.
    assert caught.value.ambiguous is True
    assert stand_in.count == 1


# --- SendGrid ---------------------------------------------------------------------------------


def test_sendgrid_send_posts_v3_mail_with_auth_custom_args_and_unsubscribe_headers(
    sendgrid_stand_in,
):
    result = provider_for("email").send(email())

    assert result == ProviderResult(provider_message_id="sg-msg-1", accepted=True)
    [request] = sendgrid_stand_in.requests
    assert request.path == "/v3/mail/send"
    assert request.header("Authorization") == "Bearer SG.test-key"
    assert request.header("Content-Type") == "application/json"
    assert request.json() == {
        "personalizations": [{"to": [{"email": "ada@example.com"}]}],
        "from": {"email": "news@shop.example"},
        "subject": "Your picks, Ada",
        "content": [
            {"type": "text/plain", "value": "Hello Ada"},
            {"type": "text/html", "value": "<p>Hello Ada</p>"},
        ],
        "custom_args": {"campaign_id": "7", "message_id": "msg-1"},
        "headers": UNSUBSCRIBE_HEADERS,
        "categories": ["campaign-7", "variant-a"],
    }


def test_sendgrid_provider_is_shared_safely_by_sending_threads(sendgrid_stand_in):
    provider = provider_for("email")
    messages = [email(to=f"c{i}@example.com", message_id=f"m-{i}") for i in range(40)]

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(provider.send, messages))

    assert len({r.provider_message_id for r in results}) == 40
    received = sorted(
        (r.json()["custom_args"]["message_id"], r.json()["personalizations"][0]["to"][0]["email"])
        for r in sendgrid_stand_in.requests
    )
    assert received == sorted((f"m-{i}", f"c{i}@example.com") for i in range(40))


def test_sendgrid_invalid_address_is_permanent_and_marks_endpoint_unreachable(sendgrid_stand_in):
    sendgrid_stand_in.fail_for("not-an-address", 400)

    with pytest.raises(ProviderPermanentError) as caught:
        provider_for("email").send(email(to="not-an-address"))

    error = caught.value
    assert (error.status, error.endpoint_unreachable, error.provider_code) == (400, True, "400")
    assert error.reason == "SendGrid 400: Does not contain a valid address."


def test_sendgrid_unauthorized_is_permanent_but_endpoint_stays_reachable(sendgrid_stand_in):
    sendgrid_stand_in.fail_next(1, 401)

    with pytest.raises(ProviderPermanentError) as caught:
        provider_for("email").send(email())

    assert (caught.value.status, caught.value.endpoint_unreachable) == (401, False)


def test_sendgrid_connection_refused_is_transient(sendgrid_stand_in, settings):
    settings.SENDGRID_API_HOST = _closed_port_url()

    with pytest.raises(ProviderTransientError) as caught:
        provider_for("email").send(email())

    assert sendgrid_stand_in.requests == []
    assert caught.value.ambiguous is False  # never connected: safe to send again


def test_twilio_connection_refused_is_transient_and_safe_to_retry(twilio_stand_in, settings):
    settings.TWILIO_API_BASE = _closed_port_url()

    with pytest.raises(ProviderTransientError) as caught:
        provider_for("sms").send(sms())

    assert twilio_stand_in.requests == []
    assert caught.value.ambiguous is False


# --- Twilio -----------------------------------------------------------------------------------


def test_twilio_send_posts_message_with_status_callback_carrying_message_id(twilio_stand_in):
    result = provider_for("sms").send(sms())

    [request] = twilio_stand_in.requests
    assert result == ProviderResult(provider_message_id=f"SM{1:032x}", accepted=True)
    assert request.path == f"/2010-04-01/Accounts/{TWILIO_SID}/Messages.json"
    expected_auth = base64.b64encode(f"{TWILIO_SID}:twilio-test-token".encode()).decode()
    assert request.header("Authorization") == f"Basic {expected_auth}"
    assert request.header("I-Twilio-Idempotency-Token") == "msg-2"  # our message key
    assert request.form() == {
        "To": ["+4915112345678"],
        "From": ["+15005550006"],
        "Body": ["20% off today: https://shop.example/s"],
        "StatusCallback": ["https://marketing.example/webhooks/twilio/status?v=1&message_id=msg-2"],
    }


def test_twilio_from_a_messaging_service_sid_sends_messaging_service_sid(twilio_stand_in, settings):
    settings.TWILIO_FROM_NUMBER = "MG" + "a" * 32

    provider_for("sms").send(sms())

    [request] = twilio_stand_in.requests
    form = request.form()
    assert form["MessagingServiceSid"] == ["MG" + "a" * 32]
    assert "From" not in form


@pytest.mark.parametrize("code", [21211, 21610, 21614])
def test_twilio_unreachable_number_is_permanent_and_marks_endpoint_unreachable(
    twilio_stand_in, code
):
    twilio_stand_in.fail_for("+10000000000", 400, code=code)

    with pytest.raises(ProviderPermanentError) as caught:
        provider_for("sms").send(sms(to="+10000000000"))

    error = caught.value
    assert (error.status, error.endpoint_unreachable, error.provider_code) == (
        400,
        True,
        str(code),
    )


def test_twilio_other_400_is_permanent_but_endpoint_stays_reachable(twilio_stand_in):
    twilio_stand_in.fail_next(1, 400, code=21408)  # region not enabled on the account

    with pytest.raises(ProviderPermanentError) as caught:
        provider_for("sms").send(sms())

    assert (caught.value.endpoint_unreachable, caught.value.provider_code) == (False, "21408")


# --- Web push ---------------------------------------------------------------------------------


def _b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _vapid_claims(authorization: str) -> tuple[dict, bytes]:
    """Check the VAPID JWT's ES256 signature with the key in `k=`; return claims and key."""
    scheme, params = authorization.split(" ", 1)
    assert scheme == "vapid"
    fields = dict(part.strip().split("=", 1) for part in params.split(","))
    public_raw = _b64url_decode(fields["k"])
    signing_input, signature = fields["t"].rsplit(".", 1)
    raw = _b64url_decode(signature)
    public_key = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), public_raw)
    public_key.verify(
        encode_dss_signature(int.from_bytes(raw[:32]), int.from_bytes(raw[32:])),
        signing_input.encode(),
        ec.ECDSA(hashes.SHA256()),
    )
    claims = json.loads(_b64url_decode(signing_input.split(".")[1]))
    return claims, public_raw


def test_push_send_signs_with_vapid_and_encrypts_the_payload(push_stand_in, browser, settings):
    result = provider_for("push").send(push(browser.subscription_json()))

    [request] = push_stand_in.requests
    assert result == ProviderResult(provider_message_id=f"{push_stand_in.url}/m/1")
    assert request.path == "/push/browser-1"
    claims, public_raw = _vapid_claims(request.header("Authorization"))
    assert claims["aud"] == push_stand_in.url
    assert claims["sub"] == "mailto:push@shop.example"
    assert _b64url_decode(settings.VAPID_PUBLIC_KEY) == public_raw
    assert request.header("Content-Encoding") == "aes128gcm"
    assert request.header("TTL") == "86400"
    assert request.header("Topic") == "msg-3"
    assert request.header("Urgency") == "normal"
    plain = http_ece.decrypt(
        request.body,
        private_key=browser.private_key,
        auth_secret=browser.auth_secret,
        version="aes128gcm",
    )
    assert json.loads(plain) == {
        "message_id": "msg-3",
        "title": "Back in stock",
        "body": "The red shoes are back",
        "data": {"url": "https://shop.example/p/9"},
    }


@pytest.mark.parametrize("status", [404, 410])
def test_push_subscription_gone_is_permanent_and_marks_endpoint_unreachable(
    push_stand_in, browser, status
):
    push_stand_in.fail_for("browser-1", status)

    with pytest.raises(ProviderPermanentError) as caught:
        provider_for("push").send(push(browser.subscription_json()))

    assert (caught.value.status, caught.value.endpoint_unreachable) == (status, True)


def test_push_413_is_permanent_but_endpoint_stays_reachable(push_stand_in, browser):
    push_stand_in.fail_next(1, 413)

    with pytest.raises(ProviderPermanentError) as caught:
        provider_for("push").send(push(browser.subscription_json()))

    assert (caught.value.status, caught.value.endpoint_unreachable) == (413, False)


@pytest.mark.parametrize(
    "to",
    [
        "not json",
        '{"endpoint": "https://push.example/x"}',
        '{"endpoint": "ftp://x", "keys": {"p256dh": "a", "auth": "b"}}',
    ],
)
def test_push_malformed_subscription_is_permanent_and_sends_nothing(push_stand_in, to):
    with pytest.raises(ProviderPermanentError) as caught:
        provider_for("push").send(push(to))

    assert caught.value.endpoint_unreachable is True
    assert push_stand_in.requests == []


# --- Local backends and choosing -----------------------------------------------------------


def test_file_backend_appends_one_json_line_per_message(settings, tmp_path):
    settings.CAMPAIGN_EMAIL_BACKEND = "file"
    settings.CAMPAIGN_OUTBOX_DIR = str(tmp_path / "outbox")

    provider = provider_for("email")
    first = provider.send(email(message_id="m-1"))
    provider.send(email(to="bob@example.com", message_id="m-2"))

    assert first == ProviderResult(provider_message_id="file-m-1")
    lines = (tmp_path / "outbox" / "email.jsonl").read_text().splitlines()
    records = [json.loads(line) for line in lines]
    assert [(r["message_id"], r["to"]) for r in records] == [
        ("m-1", "ada@example.com"),
        ("m-2", "bob@example.com"),
    ]
    assert records[0]["headers"] == UNSUBSCRIBE_HEADERS
    assert records[0]["categories"] == ["campaign-7", "variant-a"]
    assert records[0]["custom_args"] == {"campaign_id": "7"}
    assert records[0]["subject"] == "Your picks, Ada"


def test_console_backend_logs_the_message(settings, caplog):
    settings.CAMPAIGN_SMS_BACKEND = "console"
    caplog.set_level("INFO", logger="campaigns.providers.local")

    result = provider_for("sms").send(sms())

    assert result == ProviderResult(provider_message_id="console-msg-2")
    [record] = caplog.records
    assert (record.message_id, record.channel, record.to) == ("msg-2", "sms", "+***78")
    assert "4915112345678" not in record.getMessage() + repr(record.__dict__)


def test_console_backend_masks_email_addresses_and_leaves_out_the_subject(settings, caplog):
    settings.CAMPAIGN_EMAIL_BACKEND = "console"
    caplog.set_level("INFO", logger="campaigns.providers.local")

    provider_for("email").send(email(to="ada.lovelace@example.com"))

    [record] = caplog.records
    assert (record.message_id, record.to) == ("msg-1", "a***@example.com")
    assert not hasattr(record, "subject")
    assert "lovelace" not in repr(record.__dict__)


def _no_keys(settings) -> None:
    settings.SENDGRID_API_KEY = ""
    settings.TWILIO_ACCOUNT_SID = settings.TWILIO_AUTH_TOKEN = settings.TWILIO_FROM_NUMBER = ""
    settings.VAPID_PRIVATE_KEY = ""
    settings.CAMPAIGN_EMAIL_BACKEND = settings.CAMPAIGN_SMS_BACKEND = ""
    settings.CAMPAIGN_PUSH_BACKEND = ""


@pytest.mark.parametrize("channel", ["email", "sms", "push"])
def test_provider_for_without_keys_uses_the_file_backend(settings, channel):
    _no_keys(settings)

    assert backend_for(channel) == "file"
    assert isinstance(provider_for(channel), FileProvider)


def test_provider_for_with_keys_and_no_backend_setting_uses_the_provider(settings):
    _no_keys(settings)
    settings.SENDGRID_API_KEY = "SG.key"

    assert provider_for("email").name == "sendgrid"
    assert provider_for("sms").name == "file"


def test_provider_for_in_app_and_console(settings):
    _no_keys(settings)
    settings.CAMPAIGN_PUSH_BACKEND = "console"

    assert isinstance(provider_for("in_app"), InAppProvider)
    assert isinstance(provider_for("push"), ConsoleProvider)
    assert provider_for("in_app").send(push("{}", message_id="m-9")).provider_message_id == "m-9"


@pytest.mark.parametrize(
    ("backend", "message"),
    [
        ("sendgrid", "CAMPAIGN_EMAIL_BACKEND=sendgrid but its keys are not set."),
        ("smtp", "CAMPAIGN_EMAIL_BACKEND='smtp': use sendgrid, file or console."),
    ],
)
def test_provider_for_refuses_a_backend_it_cannot_build(settings, backend, message):
    _no_keys(settings)
    settings.CAMPAIGN_EMAIL_BACKEND = backend

    with pytest.raises(ImproperlyConfigured) as caught:
        provider_for("email")

    assert str(caught.value) == message


def test_provider_for_reuses_the_client_while_settings_stay_the_same(sendgrid_stand_in, settings):
    first = provider_for("email")

    assert provider_for("email") is first
    settings.SENDGRID_FROM_EMAIL = "other@shop.example"
    assert provider_for("email") is not first
