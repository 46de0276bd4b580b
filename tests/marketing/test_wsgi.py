"""marketing.wsgi: the application gunicorn serves, with its start-up objects frozen out of
the garbage collector's generations."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

PROBE = """
import gc
from marketing.wsgi import application
import marketing.urls
frozen = gc.get_freeze_count()
print(frozen, len(gc.get_objects()), callable(application))
"""


def test_the_wsgi_module_freezes_what_start_up_loaded():
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "marketing.settings"}
    out = subprocess.run(
        [sys.executable, "-c", PROBE], cwd=ROOT, env=env, capture_output=True, text=True, check=True
    ).stdout.split()
    frozen, tracked, app = int(out[0]), int(out[1]), out[2]
    assert app == "True"
    # Django, the apps, their URLconf and views: the bulk of the objects, out of the
    # collector's generations; what a full collection still walks is a small remainder.
    assert frozen > 100_000
    assert tracked < frozen / 5
