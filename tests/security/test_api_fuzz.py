"""Schemathesis over every operation of the committed openapi.yaml, in process through WSGI.

Each operation gets up to FUZZ_EXAMPLES generated requests of valid data and as many of
invalid data, sent with an API key holding every scope (a superuser's session for the
session-only endpoints).
Every response must be non-5xx and conform to the schema: documented status code, content
type, body and headers. `make fuzz` runs the same test with more examples.
"""

import os
import secrets
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections, transaction
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis.checks import not_a_server_error
from schemathesis.generation import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from marketing.models import Scope
from marketing.services import api_key_create
from tests.campaigns.factories import emailable_customer
from tests.experiments.factories import ExperimentFactory, VariantFactory
from tests.profiles.factories import SegmentFactory
from tests.recommender.factories import ItemFactory

ROOT = Path(__file__).resolve().parents[2]
FUZZ_EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "20"))
MIN_REQUESTS = 1000
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]

pytestmark = pytest.mark.django_db


@pytest.fixture
def wsgi_app():
    """The project's WSGI app, keeping the test's connection (and its transaction) open across
    requests, as Django's test client does."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield get_wsgi_application()
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


def _describe(exc: BaseException) -> str:
    parts = exc.exceptions if isinstance(exc, BaseExceptionGroup) else (exc,)
    return "; ".join(
        f"{getattr(part, 'title', type(part).__name__)}: {str(part)[:300]}" for part in parts
    )


def _operations():
    schema = schemathesis.openapi.from_path(ROOT / "openapi.yaml")
    for result in schema.get_all_operations():
        yield result.ok()


def _seed() -> dict[str, dict[str, str]]:
    """A customer, an item, a rule segment and a running experiment the fuzzer can name."""
    emailable_customer(external_id="fuzz-customer", email="fuzz@example.com")
    ItemFactory(external_id="fuzz-item")
    segment = SegmentFactory(
        rules={"op": "and", "conditions": [
            {"kind": "profile", "field": "country", "op": "eq", "value": "DE"}
        ]}
    )  # fmt: skip
    experiment = ExperimentFactory(key="fuzz-exp", status="running")
    VariantFactory(experiment=experiment, key="control", is_control=True)
    VariantFactory(experiment=experiment, key="treatment")
    return {
        "/api/v1/customers/": {"id": "fuzz-customer"},
        "/api/v1/items/": {"id": "fuzz-item"},
        "/api/v1/segments/": {"id": str(segment.pk)},
        "/api/v1/experiments/": {"key": "fuzz-exp"},
    }


@dataclass
class Fuzzer:
    """Sends an operation's generated cases to the app and tallies answers and failures."""

    app: object
    key_headers: dict[str, str]
    session_headers: dict[str, str]
    session_cookies: dict[str, str]
    # Path parameters naming seeded objects, by path prefix: a third pass per operation
    # reaches past the 404s of generated ids into the handlers.
    known: dict[str, dict[str, str]] = field(default_factory=dict)
    statuses: Counter[int] = field(default_factory=Counter)
    by_operation: dict[str, Counter[int]] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)

    def fuzz(self, operation) -> None:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            try:
                self._run(operation, mode)
            except Unsatisfiable:
                # Nothing invalid to send (e.g. a GET whose only input is a free-form path
                # string): no negative cases for this operation.
                assert mode == GenerationMode.NEGATIVE
        for prefix, parameters in self.known.items():
            if operation.path.startswith(prefix) and "{" in operation.path:
                self._run(operation, GenerationMode.POSITIVE, parameters)
                break

    def _run(self, operation, mode: GenerationMode, path_parameters=None) -> None:
        schemes = {name for req in operation.definition.raw.get("security", []) for name in req}
        by_key = "ApiKeyAuth" in schemes
        headers = self.key_headers if by_key else self.session_headers
        cookies = {} if by_key else self.session_cookies
        strategy = operation.as_strategy(generation_mode=mode, path_parameters=path_parameters)

        @settings(
            max_examples=FUZZ_EXAMPLES,
            deadline=None,
            database=None,
            derandomize=True,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        @given(case=strategy)
        def run(case):
            case.headers = {**(case.headers or {}), **headers}
            case.cookies = {**(case.cookies or {}), **cookies}
            status = 0
            try:
                # A savepoint per request: a failing statement fails that request, not
                # every later one in the test's transaction.
                with transaction.atomic():
                    response = case.call(app=self.app)
                status = response.status_code
                self.statuses[status] += 1
                self.by_operation.setdefault(operation.label, Counter())[status] += 1
                case.validate_response(response, checks=CHECKS)
            except (Exception, BaseExceptionGroup) as exc:  # noqa: BLE001 - asserted after
                self.failures.append(
                    f"{operation.label} [{mode}{' seeded' if path_parameters else ''}] "
                    f"{status} {case.body!r:.200}: {_describe(exc)}"
                )

        run()


def test_every_operation_answers_without_5xx_or_schema_violations(admin_user, client, wsgi_app):
    _, raw = api_key_create(name="fuzz", scopes=list(Scope.values), rate_limit="1000000/min")
    client.force_login(admin_user)
    csrf = secrets.token_hex(16)
    # Werkzeug's test client builds the Cookie header from its own jar, so the session goes
    # in as the case's cookies.
    fuzzer = Fuzzer(
        app=wsgi_app,
        key_headers={"Authorization": f"Api-Key {raw}"},
        session_headers={"X-CSRFToken": csrf},
        session_cookies={"sessionid": client.cookies["sessionid"].value, "csrftoken": csrf},
    )
    fuzzer.known = _seed()
    operations = list(_operations())
    assert len(operations) >= 38
    for operation in operations:
        fuzzer.fuzz(operation)

    total = sum(fuzzer.statuses.values())
    report = [f"  {label}: {dict(counts)}" for label, counts in fuzzer.by_operation.items()]
    report.append(
        f"schemathesis: {total} requests over {len(operations)} operations; {dict(fuzzer.statuses)}"
    )
    print("\n" + "\n".join(report))  # noqa: T201 - the count is the figure #11 asks for
    distinct = list(dict.fromkeys(fuzzer.failures))
    assert not distinct, f"{len(distinct)} failures:\n" + "\n\n".join(distinct[:60])
    assert total >= MIN_REQUESTS
    assert not [code for code in fuzzer.statuses if code >= 500]
