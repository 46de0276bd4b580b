"""Headless Chromium (Debian's /usr/bin/chromium) driven by Playwright's sync API."""

import os
from pathlib import Path

import pytest
from django.contrib.auth.models import Group

from marketing.roles import MARKETER, roles_sync

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture(scope="session")
def browser():
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is not installed")
    from playwright.sync_api import sync_playwright

    # Playwright's sync API runs an event loop in this thread; the ORM calls a test makes
    # between browser steps are still plain synchronous code.
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()
    if previous is None:
        os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    else:
        os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


@pytest.fixture
def page(browser):
    """A fresh context per test; `page.console_errors` collects console errors and JS errors."""
    context = browser.new_context(viewport={"width": 1366, "height": 900})
    context.set_default_timeout(10_000)
    page = context.new_page()
    errors: list[str] = []

    def on_console(msg) -> None:
        if msg.type == "error":
            errors.append(f"{msg.text} ({msg.location.get('url')})")

    def on_response(response) -> None:
        if response.status >= 400:
            errors.append(f"HTTP {response.status} {response.url}")

    page.on("console", on_console)
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("response", on_response)
    page.console_errors = errors
    yield page
    context.close()


@pytest.fixture
def screenshot_dir() -> Path | None:
    """Set BROWSER_SCREENSHOTS=/some/dir to keep screenshots of the pages a test visits."""
    value = os.environ.get("BROWSER_SCREENSHOTS")
    return Path(value) if value else None


BROWSER_PASSWORD = "pw-12345-secret"


@pytest.fixture
def marketer_page(page, live_server, django_user_model):
    """`page` logged in as a Marketer ("mara") on `live_server`."""
    roles_sync()
    user = django_user_model.objects.create_user(username="mara", password=BROWSER_PASSWORD)
    user.groups.add(Group.objects.get(name=MARKETER))
    page.goto(f"{live_server.url}/accounts/login/")
    page.get_by_label("Username").fill("mara")
    page.get_by_label("Password").fill(BROWSER_PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(f"{live_server.url}/")
    return page
