"""Every page, found by walking the URL resolver: login required, Analysts read only, CSRF.

A new view is covered without touching this file; a new public or CSRF-exempt view fails
the test until it is added to the lists below on purpose.
"""

import re

import pytest
from django.apps import apps
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from marketing.models import Job
from tests.campaigns.factories import CampaignFactory, MessageTemplateFactory
from tests.experiments.factories import ExperimentFactory, VariantFactory
from tests.insights.factories import BrandFactory
from tests.profiles.factories import CustomerFactory, SegmentFactory
from tests.recommender.factories import ModelVersionFactory, OfferFactory

# Reachable without logging in, each for a reason: health checks, the login form itself,
# recipients' unsubscribe and tracking links, provider webhooks (signed, see
# tests/campaigns/test_webhooks.py).
PUBLIC = {
    "healthz",
    "favicon",
    "login",
    "profiles:unsubscribe",
    "campaigns:webhook-sendgrid-events",
    "campaigns:webhook-twilio-inbound",
    "campaigns:webhook-twilio-status",
    "campaigns:track-open",
    "campaigns:track-click",
    "campaigns:track-unsubscribe",
}
# Providers cannot send our CSRF token; they sign their requests instead. One-click
# unsubscribe (RFC 8058) comes from the recipient's mail client; its token is signed.
CSRF_EXEMPT = {
    "profiles:unsubscribe",
    "campaigns:track-unsubscribe",
    "campaigns:webhook-sendgrid-events",
    "campaigns:webhook-twilio-inbound",
    "campaigns:webhook-twilio-status",
}
# Pages an Analyst may POST to because the POST changes nothing.
READ_ONLY_POSTS = {"campaigns:template-preview"}  # renders the posted, unsaved template


def _walk(patterns, prefix="", namespace=None):
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            yield from _walk(
                pattern.url_patterns, prefix + str(pattern.pattern), pattern.namespace or namespace
            )
        elif isinstance(pattern, URLPattern) and pattern.name:
            name = f"{namespace}:{pattern.name}" if namespace else pattern.name
            yield prefix + str(pattern.pattern), name, pattern.callback


def page_routes() -> list[tuple[str, str, object]]:
    """(route, name, view) of every URL but the API's and the admin's."""
    return [
        (route, name, view)
        for route, name, view in _walk(get_resolver().url_patterns)
        if not route.lstrip("^").startswith(("api/", "admin/"))
    ]


@pytest.fixture
def objects(db, marketer):
    """One object of each kind a page URL names, so pages answer for a real object."""
    campaign = CampaignFactory()
    experiment = ExperimentFactory(key="sec-exp")
    VariantFactory(experiment=experiment, key="control")
    job = Job.objects.create(kind="test", created_by=marketer)
    return {
        "campaign": campaign.pk,
        "template": MessageTemplateFactory().pk,
        "customer": CustomerFactory().pk,
        "segment": SegmentFactory().pk,
        "imported_segment": SegmentFactory(kind="imported").pk,
        "brand": BrandFactory().pk,
        "offer": OfferFactory().pk,
        "modelversion": ModelVersionFactory().pk,
        "experiment": experiment.key,
        "job": job.pk,
    }


def _url(route: str, name: str, objects: dict) -> str:
    entity = name.split(":")[-1].split("-")[0]
    if name == "experiments:campaign-experiment-create":
        entity = "campaign"
    if name == "profiles:segment-import-replace":
        entity = "imported_segment"
    if name.endswith("-job") or name in {"job-detail", "profiles:import-report"}:
        entity = "job"

    def value(match: re.Match) -> str:
        converter, kwarg = match.group(1) or "str", match.group(2)
        if kwarg == "action":
            return "start" if entity == "experiment" else "launch"
        if kwarg == "token":
            return "not-a-token"
        if entity in objects:
            return str(objects[entity])
        return "999999" if converter == "int" else "x"

    return "/" + re.sub(r"<(?:(\w+):)?(\w+)>", value, route)


def _row_counts() -> dict[str, int]:
    return {
        model._meta.label: model.objects.count()
        for model in apps.get_models()
        if model._meta.managed and not model._meta.proxy
    }


def test_every_page_but_the_public_ones_redirects_anonymous_users_to_login(client, objects):
    public = set()
    for route, name, _ in page_routes():
        url = _url(route, name, objects)
        response = client.get(url)
        if response.status_code == 302 and response["Location"].startswith(reverse("login")):
            continue
        public.add(name)
    assert public == PUBLIC


def test_analyst_cannot_post_to_any_page(analyst_client, objects):
    before = _row_counts()
    allowed = []
    for route, name, _ in page_routes():
        if name in PUBLIC | READ_ONLY_POSTS or name == "logout":
            continue
        url = _url(route, name, objects)
        response = analyst_client.post(url, {"name": "x"}, HTTP_HX_REQUEST="true")
        if response.status_code not in (403, 405):
            allowed.append(f"{name} {url}: {response.status_code}")
    assert allowed == [], "\n".join(allowed)
    assert _row_counts() == before


def test_marketer_post_without_csrf_token_is_refused_on_every_page(marketer, objects):
    client = Client(enforce_csrf_checks=True)
    client.force_login(marketer)
    exempt = set()
    for route, name, _ in page_routes():
        url = _url(route, name, objects)
        response = client.post(url, {"name": "x"})
        if response.status_code == 403 and b"CSRF" in response.content:
            continue
        exempt.add(name)
    assert exempt == CSRF_EXEMPT


def test_login_form_without_csrf_token_is_refused(marketer):
    client = Client(enforce_csrf_checks=True)
    response = client.post(reverse("login"), {"username": "mara", "password": "pw-12345-secret"})
    assert response.status_code == 403
    assert "_auth_user_id" not in client.session
