# The two commands: `make run` (serve with demo data on SQLite) and `make test` (every test).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
RUN_STAMP := $(VENV)/.runtime

# Two test processes (pytest-xdist), a test file each at a time: the suite waits on servers,
# subprocesses and fsync as much as it computes. Every test isolates itself (its own tenants,
# databases and ports), so files run side by side as they would one after another.
PYTEST_PARALLEL ?= -n 2 --dist loadfile

.PHONY: run test lint format bench migrate clean chromium rsyslog screenshots docs promtool test-sdk test-citus

# The virtualenv is filled by uv (from PyPI, the version range below), which pip puts in
# .venv/tools once: it installs from its cache in about a second where pip takes half a
# minute. The venv itself has no pip. Bytecode is compiled on first import rather than for
# every installed file.
UV_SPEC := uv>=0.9,<0.14
UV := $(VENV)/tools/bin/uv
UV_INSTALL := $(UV) pip install --quiet --python $(BIN)/python

$(UV):
	@test -x $(BIN)/python || $(PYTHON) -m venv --without-pip $(VENV)
	@$(PYTHON) -m pip install -qq --disable-pip-version-check --root-user-action=ignore \
	  --target $(VENV)/tools '$(UV_SPEC)'

$(STAMP): pyproject.toml sdk/python/pyproject.toml | $(UV)
	$(UV_INSTALL) -e '.[dev]' -e './sdk/python[test]'
	touch $(STAMP) $(RUN_STAMP)

# `make run` needs only the service and its runtime dependencies (the development extras are
# for `make test`); a venv made by `make test` already has them.
$(RUN_STAMP): pyproject.toml | $(UV)
	@echo "installing the service into $(VENV) …"
	@$(UV_INSTALL) -e .
	@touch $(RUN_STAMP)

run: $(RUN_STAMP)  ## migrate the default database, load the demo tenant, serve on :8000
	@grep -qs '^ADMIN_TOKEN=' .env || echo "ADMIN_TOKEN=$$($(BIN)/python -c 'import secrets; print(secrets.token_urlsafe(24))')" >> .env
	@$(BIN)/actionlog demo --serve

# The console's browser tests drive Debian's Chromium (never a downloaded browser); the emoji
# font draws the status icons.
chromium:
	test -x /usr/bin/chromium || (apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-noto-color-emoji)

# The syslog destination is tested against a real rsyslogd (Debian's package `rsyslog`).
rsyslog:
	test -x /usr/sbin/rsyslogd || (apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends rsyslog)

# The alerting rules in deploy/ are checked with Debian's promtool (package `prometheus`).
promtool:
	command -v promtool >/dev/null || (apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus)

docs: $(STAMP)  ## build the documentation site (MkDocs, Material) into site/
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict

test: $(STAMP) chromium promtool rsyslog  ## lint, types, docs, rules, and every test on SQLite and on PostgreSQL
	$(BIN)/ruff check app tests sdk/python
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --quiet --site-dir "$$(mktemp -d)"
	promtool check rules deploy/prometheus/alerts.yml
	$(BIN)/mypy
	$(BIN)/mypy --config-file sdk/python/pyproject.toml sdk/python/actionlog_client sdk/python/tests
	$(BIN)/python -m pytest $(PYTEST_PARALLEL)
	$(MAKE) -j2 --output-sync=target test-sdk test-citus

# The client's tests, against a served service: they mostly wait on it, so `make test` runs
# them beside the Citus suite.
test-sdk: $(STAMP)
	$(BIN)/python -m pytest sdk/python/tests

lint: $(STAMP)
	$(BIN)/ruff check app tests bench sdk/python
	$(BIN)/ruff format --check app tests bench sdk/python

format: $(STAMP)
	$(BIN)/ruff format app tests bench sdk/python
	$(BIN)/ruff check --fix app tests bench sdk/python

bench: $(STAMP)  ## the benchmark on the local PostgreSQL (see bench/README.md); not part of test
	command -v wrk >/dev/null || (apt-get update -qq && apt-get install -y -qq wrk)
	$(BIN)/python bench/run.py

screenshots: $(STAMP) chromium  ## the README's console screenshots (docs/*.png), from demo data
	$(BIN)/python docs/screenshots.py

migrate: $(STAMP)
	$(BIN)/actionlog migrate

clean:
	rm -rf $(VENV) actionlog.db actionlog.db-wal actionlog.db-shm .pytest_cache .ruff_cache site

# The core of the HTTP suite on a private Citus cluster (a coordinator and two workers started
# from the installed extension, tests/citus.py), migrated and distributed; skipped, saying how
# to get Citus, where it is not installed. One process: the cluster is the session's.
test-citus: $(STAMP)  ## the core HTTP tests on a real Citus cluster (tests/conftest.py CITUS_FILES)
	TEST_BACKENDS=citus $(BIN)/python -m pytest -p no:cacheprovider -q \
	  $$($(BIN)/python -c 'from tests.conftest import CITUS_FILES; print(*CITUS_FILES)')
