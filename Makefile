# The two commands a new user needs: `make demo` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell cat requirements.txt requirements-dev.txt | md5sum | cut -c1-12)

.PHONY: demo test lint format install vendor openapi check fuzz clean-data bench bench-quick

$(STAMP): requirements.txt requirements-dev.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements-dev.txt
	rm -f $(VENV)/.installed-* && touch $@

install: $(STAMP)

static/vendor/htmx.min.js: $(STAMP)
	DJANGO_DEBUG=1 $(PY) manage.py vendor_assets

vendor: static/vendor/htmx.min.js

## Run the product with its demo data: web, Celery worker and beat (Ctrl-C stops them all).
demo: install vendor
	$(PY) scripts/demo.py

## Run the whole test suite against PostgreSQL and Redis.
test: install vendor
	$(VENV)/bin/pytest

lint: install
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/ruff check .
	DJANGO_DEBUG=1 $(VENV)/bin/mypy marketing profiles recommender experiments campaigns insights

format: install
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

## Regenerate the committed OpenAPI schema.
openapi: install
	DJANGO_DEBUG=1 $(PY) manage.py spectacular --validate --fail-on-warn --file openapi.yaml

## The checks CI runs besides the tests.
check: install vendor
	DJANGO_DEBUG=1 $(PY) manage.py makemigrations --check --dry-run
	DJANGO_DEBUG=1 $(PY) manage.py spectacular --validate --fail-on-warn --file /tmp/openapi.yaml
	diff -u openapi.yaml /tmp/openapi.yaml
	DJANGO_SECRET_KEY=$$(head -c 48 /dev/urandom | base64) DJANGO_ALLOWED_HOSTS=example.com \
	  DATABASE_URL=postgres://postgres@127.0.0.1:5432/marketing REDIS_URL=redis://127.0.0.1:6379/0 \
	  DJANGO_SECURE_SSL_REDIRECT=1 DJANGO_SECURE_HSTS_SECONDS=31536000 \
	  $(PY) manage.py check --deploy --fail-level WARNING

## Run every benchmark in benchmarks/ (long: an hour or more) and write
## benchmarks/report.json and benchmarks/REPORT.md; bench-quick is a smoke run at small sizes.
bench: install
	$(PY) benchmarks/run_all.py

bench-quick: install
	$(PY) benchmarks/run_all.py --quick

## Schemathesis over every API operation with more cases than the suite's 20 (FUZZ_EXAMPLES=N).
fuzz: install
	FUZZ_EXAMPLES=$${FUZZ_EXAMPLES:-200} $(VENV)/bin/pytest -s -p no:randomly tests/security/test_api_fuzz.py

clean-data:
	rm -rf .data
