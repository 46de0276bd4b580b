import base64
import datetime as dt
import json

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from django.test import Client
from django.utils import timezone
from twilio.request_validator import RequestValidator

from profiles.consent import consent_set
from profiles.models import ChannelEndpoint, Consent, ConsentChange, Customer

SENDGRID_URL = "/webhooks/sendgrid/events"
TWILIO_URL = "/webhooks/twilio/inbound"
TWILIO_TOKEN = "twilio-test-auth-token-0042"
EMAIL = "mira.okonkwo-4417@example.org"
PHONE = "+4915550007788"
EVENT_TS = 1_767_225_600  # 2026-01-01T00:00:00Z
LONG_AGO = dt.datetime(2025, 6, 1, tzinfo=dt.UTC)


@pytest.fixture
def signing_key(settings):
    """A P-256 key pair; the public half is configured as SendGrid shows it (base64 DER)."""
    private_key = ec.generate_private_key(ec.SECP256R1())
    der = private_key.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    settings.SENDGRID_WEBHOOK_PUBLIC_KEY = base64.b64encode(der).decode()
    return private_key


@pytest.fixture
def twilio_token(settings):
    settings.TWILIO_AUTH_TOKEN = TWILIO_TOKEN
    return TWILIO_TOKEN


@pytest.fixture
def person(db):
    customer = Customer.objects.create(external_id="w-1", email=EMAIL, phone="+49 1555 0007788")
    ChannelEndpoint.objects.create(customer=customer, channel="email", address=EMAIL)
    ChannelEndpoint.objects.create(customer=customer, channel="sms", address="+49 155 5000 7788")
    for purpose in ("marketing_email", "sms"):
        consent_set(customer=customer, purpose=purpose, granted=True, source="api", at=LONG_AGO)
    return customer


def _sign(private_key, payload: str, timestamp: str) -> str:
    signature = private_key.sign((timestamp + payload).encode(), ec.ECDSA(hashes.SHA256()))
    return base64.b64encode(signature).decode()


def _now_ts() -> str:
    return str(int(timezone.now().timestamp()))


def _post_sendgrid(client, events, private_key=None, *, body=None, timestamp=None):
    payload = body if body is not None else json.dumps(events)
    timestamp = timestamp or _now_ts()
    headers = {}
    if private_key is not None:
        headers = {
            "X-Twilio-Email-Event-Webhook-Signature": _sign(private_key, payload, timestamp),
            "X-Twilio-Email-Event-Webhook-Timestamp": timestamp,
        }
    return client.post(SENDGRID_URL, data=payload, content_type="application/json", headers=headers)


def _event(name, email=EMAIL, event_id="sg-evt-1", **extra):
    return {"email": email, "event": name, "timestamp": EVENT_TS, "sg_event_id": event_id, **extra}


def _post_twilio(client, params, *, token=TWILIO_TOKEN, url=f"http://testserver{TWILIO_URL}"):
    signature = RequestValidator(token).compute_signature(url, params)
    return client.post(TWILIO_URL, data=params, headers={"X-Twilio-Signature": signature})


def _sms(body, sender=PHONE, sid="SM0001"):
    return {"From": sender, "To": "+4930555000", "Body": body, "MessageSid": sid}


def _granted(customer, purpose):
    return Consent.objects.get(customer=customer, purpose=purpose).granted


def _trail(customer, purpose):
    return list(
        ConsentChange.objects.filter(customer=customer, purpose=purpose)
        .order_by("pk")
        .values_list("granted", "source", "actor", "note")
    )


def _opted_out(customer, channel):
    return ChannelEndpoint.objects.get(customer=customer, channel=channel).opted_out


@pytest.mark.parametrize("name", ["unsubscribe", "group_unsubscribe", "spamreport"])
def test_sendgrid_unsubscribe_withdraws_consent_and_opts_out(client, signing_key, person, name):
    response = _post_sendgrid(client, [_event(name, asm_group_id=7)], signing_key)

    assert response.status_code == 200
    assert response.json() == {"events": 1, "consents": 1, "endpoints": 1, "ignored": 0}
    assert _granted(person, "marketing_email") is False
    assert _opted_out(person, "email") is True
    assert _granted(person, "sms") is True
    assert _trail(person, "marketing_email") == [
        (True, "api", "", ""),
        (False, "webhook", "sendgrid", f"sendgrid {name} sg-evt-1 (asm group 7)"),
    ]
    change = ConsentChange.objects.filter(customer=person, source="webhook").get()
    assert change.changed_at == dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def test_sendgrid_redelivered_event_adds_no_audit_entry(client, signing_key, person):
    first = _post_sendgrid(client, [_event("unsubscribe")], signing_key)
    again = _post_sendgrid(client, [_event("unsubscribe")], signing_key)

    assert first.json()["consents"] == 1
    assert again.status_code == 200
    assert again.json() == {"events": 1, "consents": 0, "endpoints": 0, "ignored": 0}
    assert ConsentChange.objects.filter(customer=person, source="webhook").count() == 1
    assert _granted(person, "marketing_email") is False


def test_sendgrid_group_resubscribe_grants_back(client, signing_key, person):
    _post_sendgrid(client, [_event("group_unsubscribe", event_id="sg-a")], signing_key)
    later = _event("group_resubscribe", event_id="sg-b", asm_group_id=3)
    later["timestamp"] = EVENT_TS + 60
    response = _post_sendgrid(client, [later], signing_key)

    assert response.status_code == 200
    assert _granted(person, "marketing_email") is True
    assert _opted_out(person, "email") is False
    assert _trail(person, "marketing_email")[1:] == [
        (False, "webhook", "sendgrid", "sendgrid group_unsubscribe sg-a"),
        (True, "webhook", "sendgrid", "sendgrid group_resubscribe sg-b (asm group 3)"),
    ]


def test_sendgrid_late_retry_of_older_event_does_not_undo_newer_decision(
    client, signing_key, person
):
    """The unsubscribe happened on Jan 1; the customer opted back in on Jan 2."""
    for granted, at in (
        (False, dt.datetime(2025, 12, 30, tzinfo=dt.UTC)),
        (True, dt.datetime(2026, 1, 2, tzinfo=dt.UTC)),
    ):
        consent_set(customer=person, purpose="marketing_email", granted=granted, source="ui", at=at)
    response = _post_sendgrid(client, [_event("unsubscribe")], signing_key)

    assert response.status_code == 200
    assert response.json()["consents"] == 0
    assert _granted(person, "marketing_email") is True
    assert _opted_out(person, "email") is False


def test_sendgrid_matches_customer_email_without_endpoint(client, signing_key, db):
    customer = Customer.objects.create(external_id="w-2", email=EMAIL)
    other = Customer.objects.create(external_id="w-3", email="")
    for each in (customer, other):
        consent_set(
            customer=each, purpose="marketing_email", granted=True, source="api", at=LONG_AGO
        )

    response = _post_sendgrid(client, [_event("spamreport", email=EMAIL.upper())], signing_key)

    assert response.json() == {"events": 1, "consents": 1, "endpoints": 0, "ignored": 0}
    assert _granted(customer, "marketing_email") is False
    assert _granted(other, "marketing_email") is True


def test_sendgrid_hard_bounce_flags_endpoint_without_consent_change(client, signing_key, person):
    events = [
        _event("bounce", event_id="sg-1", type="bounce"),
        _event("bounce", event_id="sg-2", type="blocked"),
        _event("delivered", event_id="sg-3"),
        _event("open", event_id="sg-4"),
    ]
    response = _post_sendgrid(client, events, signing_key)

    assert response.json() == {"events": 4, "consents": 0, "endpoints": 1, "ignored": 3}
    endpoint = ChannelEndpoint.objects.get(customer=person, channel="email")
    assert endpoint.attributes == {"bounced": True}
    assert endpoint.opted_out is False
    assert _granted(person, "marketing_email") is True
    assert ConsentChange.objects.filter(source="webhook").count() == 0


def test_sendgrid_dropped_bounced_address_flags_endpoint(client, signing_key, person):
    event = _event("dropped", reason="Bounced Address")
    response = _post_sendgrid(client, [event], signing_key)

    assert response.json()["endpoints"] == 1
    assert ChannelEndpoint.objects.get(customer=person, channel="email").attributes == {
        "bounced": True
    }


def test_sendgrid_bad_signature_is_refused_and_changes_nothing(client, signing_key, person):
    signed = json.dumps([_event("delivered")])
    timestamp = _now_ts()
    forged = json.dumps([_event("unsubscribe")])
    response = client.post(
        SENDGRID_URL,
        data=forged,
        content_type="application/json",
        headers={
            "X-Twilio-Email-Event-Webhook-Signature": _sign(signing_key, signed, timestamp),
            "X-Twilio-Email-Event-Webhook-Timestamp": timestamp,
        },
    )

    assert response.status_code == 403
    assert response.json()["code"] == "webhook_signature_invalid"
    assert _granted(person, "marketing_email") is True
    assert _opted_out(person, "email") is False
    assert ConsentChange.objects.filter(source="webhook").count() == 0


@pytest.mark.parametrize("age", [dt.timedelta(minutes=11), dt.timedelta(minutes=-11)])
def test_sendgrid_signed_request_outside_the_replay_window_is_refused(
    client, signing_key, person, age
):
    signed_at = str(int((timezone.now() - age).timestamp()))
    response = _post_sendgrid(client, [_event("unsubscribe")], signing_key, timestamp=signed_at)

    assert response.status_code == 403
    assert response.json()["code"] == "webhook_timestamp_expired"
    assert _granted(person, "marketing_email") is True
    assert _opted_out(person, "email") is False
    assert ConsentChange.objects.filter(source="webhook").count() == 0


def test_sendgrid_signed_request_nine_minutes_old_is_accepted(client, signing_key, person):
    signed_at = str(int((timezone.now() - dt.timedelta(minutes=9)).timestamp()))
    response = _post_sendgrid(client, [_event("unsubscribe")], signing_key, timestamp=signed_at)

    assert response.status_code == 200
    assert _granted(person, "marketing_email") is False


def test_sendgrid_signature_from_another_key_is_refused(client, signing_key, person):
    stranger = ec.generate_private_key(ec.SECP256R1())
    response = _post_sendgrid(client, [_event("unsubscribe")], stranger)

    assert response.status_code == 403
    assert _granted(person, "marketing_email") is True


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"X-Twilio-Email-Event-Webhook-Timestamp": "1767225601"},
        {
            "X-Twilio-Email-Event-Webhook-Signature": "not base64 !!",
            "X-Twilio-Email-Event-Webhook-Timestamp": "1767225601",
        },
    ],
)
def test_sendgrid_missing_or_garbled_signature_is_refused(client, signing_key, person, headers):
    response = client.post(
        SENDGRID_URL,
        data=json.dumps([_event("unsubscribe")]),
        content_type="application/json",
        headers=headers,
    )

    assert response.status_code == 403
    assert _granted(person, "marketing_email") is True


def test_sendgrid_without_key_is_refused_when_not_debug(client, settings, person):
    settings.SENDGRID_WEBHOOK_PUBLIC_KEY = ""
    settings.DEBUG = False
    response = _post_sendgrid(client, [_event("unsubscribe")])

    assert response.status_code == 403
    assert response.json() == {
        "code": "webhook_not_configured",
        "message": "SENDGRID_WEBHOOK_PUBLIC_KEY is not set: sendgrid webhooks are refused "
        "unless DJANGO_DEBUG is on.",
        "extra": {"setting": "SENDGRID_WEBHOOK_PUBLIC_KEY"},
    }
    assert _granted(person, "marketing_email") is True


def test_sendgrid_without_key_is_accepted_in_debug(client, settings, person):
    settings.SENDGRID_WEBHOOK_PUBLIC_KEY = ""
    settings.DEBUG = True
    response = _post_sendgrid(client, [_event("unsubscribe")])

    assert response.status_code == 200
    assert _granted(person, "marketing_email") is False


@pytest.mark.parametrize(
    ("body", "code"),
    [("[{not json", "invalid_json"), ('{"event": "unsubscribe"}', "invalid_payload")],
)
def test_sendgrid_malformed_body_is_400(client, signing_key, person, body, code):
    response = _post_sendgrid(client, None, signing_key, body=body)

    assert response.status_code == 400
    assert response.json()["code"] == code
    assert set(response.json()) == {"code", "message", "extra"}
    assert _granted(person, "marketing_email") is True


def test_sendgrid_requires_post(client, signing_key):
    assert client.get(SENDGRID_URL).status_code == 405


@pytest.mark.parametrize("body", ["STOP", " stop ", "StopAll", "UNSUBSCRIBE", "cancel", "end"])
def test_twilio_stop_withdraws_sms_consent(client, twilio_token, person, body):
    response = _post_twilio(client, _sms(body))

    assert response.status_code == 200
    assert response["Content-Type"] == "text/xml"
    assert response.content == b'<?xml version="1.0" encoding="UTF-8"?><Response/>'
    assert _granted(person, "sms") is False
    assert _opted_out(person, "sms") is True
    assert _granted(person, "marketing_email") is True
    assert _trail(person, "sms")[1:] == [
        (False, "webhook", "twilio", f"twilio {body.strip().upper()} SM0001")
    ]


def test_twilio_start_grants_sms_consent_back(client, twilio_token, person):
    _post_twilio(client, _sms("STOP", sid="SM1"))
    response = _post_twilio(client, _sms("start", sid="SM2"))

    assert response.status_code == 200
    assert _granted(person, "sms") is True
    assert _opted_out(person, "sms") is False
    assert _trail(person, "sms")[1:] == [
        (False, "webhook", "twilio", "twilio STOP SM1"),
        (True, "webhook", "twilio", "twilio START SM2"),
    ]


def test_twilio_repeated_stop_adds_no_audit_entry(client, twilio_token, person):
    _post_twilio(client, _sms("STOP", sid="SM1"))
    _post_twilio(client, _sms("STOP", sid="SM1"))

    assert ConsentChange.objects.filter(customer=person, source="webhook").count() == 1


def test_twilio_bad_signature_is_refused(client, twilio_token, person):
    response = _post_twilio(client, _sms("STOP"), token="someone-elses-token")

    assert response.status_code == 403
    assert response.json()["code"] == "webhook_signature_invalid"
    assert _granted(person, "sms") is True
    assert _opted_out(person, "sms") is False


def test_twilio_without_token_is_refused_when_not_debug(client, settings, person):
    settings.TWILIO_AUTH_TOKEN = ""
    settings.DEBUG = False
    response = client.post(TWILIO_URL, data=_sms("STOP"))

    assert response.status_code == 403
    assert response.json()["code"] == "webhook_not_configured"
    assert _granted(person, "sms") is True


@pytest.mark.parametrize(
    ("sender", "body"), [("+4915550000000", "STOP"), ("", "STOP"), (PHONE, "hello there")]
)
def test_twilio_unknown_number_or_other_text_changes_nothing(
    client, twilio_token, person, sender, body
):
    before = list(ConsentChange.objects.order_by("pk").values_list("pk", flat=True))
    response = _post_twilio(client, _sms(body, sender=sender))

    assert response.status_code == 200
    assert response.content == b'<?xml version="1.0" encoding="UTF-8"?><Response/>'
    assert list(ConsentChange.objects.order_by("pk").values_list("pk", flat=True)) == before
    assert _granted(person, "sms") is True
    assert _opted_out(person, "sms") is False


def test_twilio_matches_customer_phone_without_endpoint(client, twilio_token, db):
    customer = Customer.objects.create(external_id="w-4", phone="+49 155 5000-7788")
    consent_set(customer=customer, purpose="sms", granted=True, source="api", at=LONG_AGO)
    blank = Customer.objects.create(external_id="w-5", phone="")
    consent_set(customer=blank, purpose="sms", granted=True, source="api", at=LONG_AGO)

    _post_twilio(client, _sms("QUIT"))

    assert _granted(customer, "sms") is False
    assert _granted(blank, "sms") is True


def test_webhooks_need_no_login_and_no_csrf_token(signing_key, twilio_token, person):
    client = Client(enforce_csrf_checks=True)

    assert _post_sendgrid(client, [_event("unsubscribe")], signing_key).status_code == 200
    assert _post_twilio(client, _sms("STOP")).status_code == 200
    assert _granted(person, "marketing_email") is False
    assert _granted(person, "sms") is False


def test_webhooks_skip_erased_customers(client, signing_key, person):
    person.erased_at = timezone.now()
    person.save(update_fields=["erased_at"])

    response = _post_sendgrid(client, [_event("unsubscribe")], signing_key)

    assert response.status_code == 200
    assert response.json() == {"events": 1, "consents": 0, "endpoints": 0, "ignored": 0}
    assert _granted(person, "marketing_email") is True
