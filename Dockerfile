# syntax=docker/dockerfile:1
# The one image for web, worker and beat (see docker-compose.yml).
#
# Stage "build" has Node.js/npm, needed only to fetch htmx (`manage.py vendor_assets`), and
# collects the static files; the runtime stage copies the virtualenv and the app without Node.

FROM python:3.11-slim AS build
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH
RUN apt-get update \
    && apt-get install -y --no-install-recommends nodejs npm libgomp1 \
    && rm -rf /var/lib/apt/lists/*
RUN python -m venv /opt/venv
WORKDIR /app
COPY requirements.txt .
RUN pip install -r requirements.txt
COPY . .
# Settings need these variables to import; nothing connects to them during the build.
RUN DJANGO_DEBUG=1 python manage.py vendor_assets \
    && DJANGO_DEBUG=0 \
       DJANGO_SECRET_KEY=build-only-not-a-secret \
       DJANGO_ALLOWED_HOSTS=localhost \
       DATABASE_URL=postgres://build@localhost:5432/build \
       REDIS_URL=redis://localhost:6379/0 \
       python manage.py collectstatic --no-input


FROM python:3.11-slim AS runtime
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH \
    DJANGO_DEBUG=0 \
    DJANGO_MEDIA_ROOT=/app/media
# libgomp: OpenMP runtime for implicit (ALS) and scikit-learn.
RUN apt-get update \
    && apt-get install -y --no-install-recommends libgomp1 \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --create-home --uid 1000 app
COPY --from=build /opt/venv /opt/venv
WORKDIR /app
COPY --from=build --chown=app:app /app /app
RUN mkdir -p /app/media && chown app:app /app/media
USER app
EXPOSE 8000
# WEB_CONCURRENCY (gunicorn's own variable) sets the number of workers.
CMD ["gunicorn", "marketing.wsgi:application", "--bind", "0.0.0.0:8000", \
     "--access-logfile", "-", "--timeout", "60"]
