"""`manage.py check --deploy` is clean with DEBUG off and production's variables (as in
`make check`, which CI runs): secure and HTTP-only cookies, HSTS, SSL redirect, a real
secret key, no wildcard hosts."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_check_deploy_is_clean_with_debug_off():
    env = {
        **os.environ,
        "DJANGO_DEBUG": "0",
        "DJANGO_SECRET_KEY": os.urandom(36).hex(),
        "DJANGO_ALLOWED_HOSTS": "shop.example.com",
        "DJANGO_SECURE_SSL_REDIRECT": "1",
        "DJANGO_SECURE_HSTS_SECONDS": "31536000",
    }
    env.pop("DJANGO_SECURE_COOKIES", None)  # production's default: secure cookies
    # Set by the browser tests' session fixture for Playwright's sync API, never in production.
    env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout
