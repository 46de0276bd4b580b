"""The only settings module. Every value that varies by environment is read here, once.

See the table in README.md for the variables. Required in production (DJANGO_DEBUG false):
DJANGO_SECRET_KEY, DATABASE_URL, REDIS_URL, DJANGO_ALLOWED_HOSTS.
"""

from pathlib import Path

import environ

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()

DEBUG = env.bool("DJANGO_DEBUG", default=False)

if DEBUG:
    SECRET_KEY = env("DJANGO_SECRET_KEY", default="dev-insecure-secret-key-change-me")
    ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"])
    DATABASES = {
        "default": env.db("DATABASE_URL", default="postgres://postgres@127.0.0.1:5432/marketing")
    }
    REDIS_URL = env("REDIS_URL", default="redis://127.0.0.1:6379/0")
else:
    SECRET_KEY = env("DJANGO_SECRET_KEY")
    ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS")
    DATABASES = {"default": env.db("DATABASE_URL")}
    REDIS_URL = env("REDIS_URL")

DATABASES["default"]["CONN_MAX_AGE"] = env.int("DJANGO_CONN_MAX_AGE", default=60)
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
# Django passes prepare_threshold=None, which turns prepared statements off even for an
# execute(..., prepare=True). A threshold never reached prepares only the queries that ask
# (the offer ranker's customer query, selectors_offers); nothing is prepared automatically.
# A PgBouncer in front must pool by session, or be 1.21+ with max_prepared_statements.
DATABASES["default"].setdefault("OPTIONS", {}).setdefault("prepare_threshold", 2**31 - 1)
if DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql":
    raise environ.ImproperlyConfigured("DATABASE_URL must point at PostgreSQL (postgres://...)")

CSRF_TRUSTED_ORIGINS = env.list("DJANGO_CSRF_TRUSTED_ORIGINS", default=[])
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SESSION_COOKIE_SECURE = env.bool("DJANGO_SECURE_COOKIES", default=not DEBUG)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
SECURE_SSL_REDIRECT = env.bool("DJANGO_SECURE_SSL_REDIRECT", default=False)
SECURE_HSTS_SECONDS = env.int("DJANGO_SECURE_HSTS_SECONDS", default=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = SECURE_HSTS_SECONDS > 0
SECURE_HSTS_PRELOAD = SECURE_HSTS_SECONDS > 0
X_FRAME_OPTIONS = "DENY"

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "rest_framework",
    "rest_framework_api_key",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_htmx",
    "template_partials",
    "django_celery_beat",
    "marketing",
    "profiles",
    "recommender",
    "experiments",
    "campaigns",
    "insights",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "marketing.common.middleware.DatabaseUnavailableMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "marketing.common.middleware.LoginRequiredMiddleware",
]

ROOT_URLCONF = "marketing.urls"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "marketing.common.context_processors.navigation",
            ],
        },
    },
]

WSGI_APPLICATION = "marketing.wsgi.application"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": env("CACHE_KEY_PREFIX", default="mkt"),
        "TIMEOUT": 300,
        # A Redis that hangs (not refusing connections) must not hang requests with it.
        "OPTIONS": {"socket_connect_timeout": 1.0, "socket_timeout": 2.0},
    }
}

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "dashboard"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": env(
            "DJANGO_STATICFILES_STORAGE",
            default="django.contrib.staticfiles.storage.StaticFilesStorage"
            if DEBUG
            else "whitenoise.storage.CompressedManifestStaticFilesStorage",
        )
    },
}
WHITENOISE_USE_FINDERS = DEBUG
MEDIA_ROOT = env("DJANGO_MEDIA_ROOT", default=str(BASE_DIR / ".data" / "media"))

# --- Django REST framework and the OpenAPI schema -------------------------------------------
API_DEFAULT_RATE = env("API_RATE_LIMIT", default="6000/min")
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "marketing.authentication.ApiKeyAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PARSER_CLASSES": [
        "marketing.common.parsers.JSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "DEFAULT_THROTTLE_CLASSES": ["marketing.throttling.ApiKeyRateThrottle"],
    "DEFAULT_THROTTLE_RATES": {"api_key": API_DEFAULT_RATE},
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.LimitOffsetPagination",
    "PAGE_SIZE": 50,
    "EXCEPTION_HANDLER": "marketing.common.exception_handler.api_exception_handler",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Marketing platform API",
    "DESCRIPTION": "Events, profiles, recommendations and offers for storefronts. "
    "Authenticate with the header `Authorization: Api-Key <key>`.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    # Swagger UI assets come from drf-spectacular-sidecar: served from our static files, no CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "ENUM_NAME_OVERRIDES": {
        "EndpointChannelEnum": "profiles.models.Channel.choices",
        "EventChannelEnum": "profiles.models.EventChannel.choices",
        # Events' `type` and experiment metrics' `event_type` share it.
        "EventTypeEnum": "profiles.models.EventType.choices",
    },
}

# --- Celery --------------------------------------------------------------------------------
CELERY_BROKER_URL = env("CELERY_BROKER_URL", default=REDIS_URL)
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 3600}
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SOFT_TIME_LIMIT = 60
CELERY_TASK_TIME_LIMIT = 300
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=False)
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TIMEZONE = TIME_ZONE
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_WORKER_HIJACK_ROOT_LOGGER = False

# --- Customer profiles ------------------------------------------------------------------------
PROFILE_FEATURES_LAST_N = env.int("PROFILE_FEATURES_LAST_N", default=20)
PROFILE_FEATURES_HALF_LIFE_DAYS = env.float("PROFILE_FEATURES_HALF_LIFE_DAYS", default=30.0)
# The algorithms whose active version serves personalized lists; the first active one wins.
RECOMMENDER_SERVING_ALGORITHMS = env.list(
    "RECOMMENDER_SERVING_ALGORITHMS", default=["hybrid", "als", "item_item", "popularity"]
)
# Adds /bench/bare (a bare JSON view) as the baseline of benchmarks/recommendations_latency.py.
BENCHMARK_VIEWS = env.bool("BENCHMARK_VIEWS", default=False)

# --- Recommender training ---------------------------------------------------------------------
RECOMMENDER_TRAINING_WINDOW_DAYS = env.int("RECOMMENDER_TRAINING_WINDOW_DAYS", default=180)
# Event type weights (JSON, merged over the defaults view 1, click 1, add_to_cart 3,
# purchase 5, offer_shown 0) and the recency half-life in days (0: no decay).
RECOMMENDER_EVENT_WEIGHTS = env.json("RECOMMENDER_EVENT_WEIGHTS", default={})
RECOMMENDER_RECENCY_HALF_LIFE_DAYS = env.float("RECOMMENDER_RECENCY_HALF_LIFE_DAYS", default=60.0)
# Retrain once this many events arrived since the last training (checked every 10 minutes).
RECOMMENDER_RETRAIN_AFTER_EVENTS = env.int("RECOMMENDER_RETRAIN_AFTER_EVENTS", default=50_000)
# Test hook, 0 in production: seconds a training sleeps after each progress step, so the
# fault tests (tests/faults/test_training_crash.py) can kill a worker in the middle of one.
RECOMMENDER_TRAINING_STEP_DELAY_SECONDS = env.float(
    "RECOMMENDER_TRAINING_STEP_DELAY_SECONDS", default=0.0
)

# --- Offer ranker (issue #8) -------------------------------------------------------------------
# Share of requests whose top offer is drawn at random (Personalizer's default 20%).
OFFERS_EXPLORATION = env.float("OFFERS_EXPLORATION", default=0.2)
# Apprentice mode: serve the default order (priority) until the learned policy is better by
# measurement (doubly robust paired comparison over at least the given number of rewards).
OFFERS_APPRENTICE = env.bool("OFFERS_APPRENTICE", default=False)
OFFERS_APPRENTICE_MIN_EVENTS = env.int("OFFERS_APPRENTICE_MIN_EVENTS", default=1000)
# Decisions without a reward after this many seconds get the default reward.
OFFERS_REWARD_WAIT_SECONDS = env.int("OFFERS_REWARD_WAIT_SECONDS", default=600)
OFFERS_DEFAULT_REWARD = env.float("OFFERS_DEFAULT_REWARD", default=0.0)
# PolicyConfig overrides (JSON), e.g. {"kind": "logistic", "learning_rate": 0.005}.
OFFERS_POLICY = env.json("OFFERS_POLICY", default={})

# --- Providers (used from the campaigns app) ---------------------------------------------------
SENDGRID_API_KEY = env("SENDGRID_API_KEY", default="")
SENDGRID_API_HOST = env("SENDGRID_API_HOST", default="https://api.sendgrid.com")
SENDGRID_FROM_EMAIL = env("SENDGRID_FROM_EMAIL", default="marketing@example.com")
# Messages per mail/send request (personalizations with substitutions; SendGrid allows 1,000);
# 1 sends each message alone.
SENDGRID_BATCH_SIZE = env.int("SENDGRID_BATCH_SIZE", default=500)
# Base64 DER public key of the signed Event Webhook; empty: webhooks accepted only in DEBUG.
SENDGRID_WEBHOOK_PUBLIC_KEY = env("SENDGRID_WEBHOOK_PUBLIC_KEY", default="")
TWILIO_ACCOUNT_SID = env("TWILIO_ACCOUNT_SID", default="")
TWILIO_AUTH_TOKEN = env("TWILIO_AUTH_TOKEN", default="")
TWILIO_FROM_NUMBER = env("TWILIO_FROM_NUMBER", default="")
TWILIO_API_BASE = env("TWILIO_API_BASE", default="")
VAPID_PRIVATE_KEY = env("VAPID_PRIVATE_KEY", default="")
VAPID_PUBLIC_KEY = env("VAPID_PUBLIC_KEY", default="")
VAPID_CLAIMS_EMAIL = env("VAPID_CLAIMS_EMAIL", default="mailto:admin@example.com")
# Delivery backend per channel (campaigns/providers): the provider's name ("sendgrid",
# "twilio", "webpush"), "file" (JSON lines in CAMPAIGN_OUTBOX_DIR) or "console" (the log);
# empty: the provider when its keys are set, else "file".
CAMPAIGN_EMAIL_BACKEND = env("CAMPAIGN_EMAIL_BACKEND", default="")
CAMPAIGN_SMS_BACKEND = env("CAMPAIGN_SMS_BACKEND", default="")
CAMPAIGN_PUSH_BACKEND = env("CAMPAIGN_PUSH_BACKEND", default="")
CAMPAIGN_OUTBOX_DIR = env("CAMPAIGN_OUTBOX_DIR", default=str(BASE_DIR / ".data" / "outbox"))
# Dispatch (campaigns/dispatch.py): recipients per batch task, frequency caps (marketing
# messages per customer per CAMPAIGN_FREQUENCY_DAYS, overall and per channel), the share of
# customers kept out of every campaign, the timezone for quiet hours when a customer has none,
# and how long a message may stay "sending" before it is settled with the provider (see there).
DISPATCH_BATCH_SIZE = env.int("DISPATCH_BATCH_SIZE", default=500)
CAMPAIGN_FREQUENCY_CAP = env.int("CAMPAIGN_FREQUENCY_CAP", default=3)
CAMPAIGN_FREQUENCY_CAP_PER_CHANNEL = env.int("CAMPAIGN_FREQUENCY_CAP_PER_CHANNEL", default=3)
CAMPAIGN_FREQUENCY_DAYS = env.int("CAMPAIGN_FREQUENCY_DAYS", default=7)
CAMPAIGN_GLOBAL_CONTROL_PERCENT = env.int("CAMPAIGN_GLOBAL_CONTROL_PERCENT", default=0)
CAMPAIGN_DEFAULT_TIMEZONE = env("CAMPAIGN_DEFAULT_TIMEZONE", default="UTC")
MESSAGE_SEND_LEASE_SECONDS = env.int("MESSAGE_SEND_LEASE_SECONDS", default=300)
# Provider calls made at once by one batch (threads), and how long a sending campaign may show
# no progress before the sweeper runs its fan-out again (campaigns/recovery.py).
DISPATCH_SEND_THREADS = env.int("DISPATCH_SEND_THREADS", default=8)
CAMPAIGN_STALL_SECONDS = env.int("CAMPAIGN_STALL_SECONDS", default=600)
# Days an in-app message stays in the inbox (GET /api/v1/customers/{id}/messages).
IN_APP_MESSAGE_TTL_DAYS = env.int("IN_APP_MESSAGE_TTL_DAYS", default=30)
PUBLIC_BASE_URL = env("PUBLIC_BASE_URL", default="http://localhost:8000")
# Connect and read timeout of every provider HTTP call, in seconds.
PROVIDER_TIMEOUT_SECONDS = env.float("PROVIDER_TIMEOUT_SECONDS", default=10.0)
# Messages per second across all workers (Redis token bucket; 0: no limit). SendGrid's default
# allows the 1,000+ emails/s that batched requests reach; lower it to the account's quota.
SENDGRID_RATE_PER_SECOND = env.float("SENDGRID_RATE_PER_SECOND", default=2000.0)
TWILIO_RATE_PER_SECOND = env.float("TWILIO_RATE_PER_SECOND", default=10.0)
WEBPUSH_RATE_PER_SECOND = env.float("WEBPUSH_RATE_PER_SECOND", default=200.0)
# How long a push service keeps a message for an offline browser.
WEBPUSH_TTL_SECONDS = env.int("WEBPUSH_TTL_SECONDS", default=86400)
# Brand alerts (insights/services_health.py): negative mentions of the latest window against
# mean + K standard deviations of the previous HISTORY windows, and at least MIN_COUNT.
INSIGHTS_ALERT_WINDOW_MINUTES = env.int("INSIGHTS_ALERT_WINDOW_MINUTES", default=60)
INSIGHTS_ALERT_HISTORY_WINDOWS = env.int("INSIGHTS_ALERT_HISTORY_WINDOWS", default=48)
INSIGHTS_ALERT_K = env.float("INSIGHTS_ALERT_K", default=3.0)
INSIGHTS_ALERT_MIN_COUNT = env.int("INSIGHTS_ALERT_MIN_COUNT", default=5)

# dictConfig, then email addresses and phone numbers masked in every record (PII).
LOGGING_CONFIG = "marketing.common.logging.configure"
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
    },
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env("LOG_LEVEL", default="INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}
