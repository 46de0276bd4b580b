"""
WSGI config for marketing project.

It exposes the WSGI callable as a module-level variable named ``application``.

For more information on this file, see
https://docs.djangoproject.com/en/5.2/howto/deployment/wsgi/
"""

import gc
import os
from importlib import import_module

from django.conf import settings
from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "marketing.settings")

django_application = get_wsgi_application()

from marketing.hot_paths import HotPaths  # noqa: E402 - needs the apps loaded

# The hot storefront calls (experiment assignment, offer ranking) are served before Django's
# middleware; everything else, and what their handlers decline, by Django (hot_paths.py).
application = HotPaths(django_application)

# What a web process loads at start-up (Django, the apps and their URLconf, numpy, ...) lives
# as long as the process. Frozen out of the garbage collector's generations, it is no longer
# walked by every full collection: ~230,000 objects, 150-250 ms per collection, a pause that
# every request queued behind it waited out (a few per worker per minute on the rank path).
import_module(settings.ROOT_URLCONF)
gc.freeze()
