# Two commands matter: `make run` (sample data → nightly DAG → warehouse → a printed query result)
# and `make test`. Everything is installed into .venv from requirements.txt; Airflow lives in .airflow/.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

export CONTACTS_REPO := $(CURDIR)
export AIRFLOW_HOME := $(CURDIR)/.airflow
export AIRFLOW_CONFIG := $(CURDIR)/airflow.cfg
export PYTHONPATH := $(CURDIR)
# glibc's malloc asks for transparent huge pages (half the page faults of a big run; `python -m pipeline` sets it itself)
export GLIBC_TUNABLES ?= glibc.malloc.hugetlb=1

SAMPLE_VISITORS ?= 2000
SAMPLE_DAYS ?= 7
SAMPLE_START ?= 2025-03-01

.PHONY: install browser run test airflow bench clean

install: $(STAMP)

$(STAMP): requirements.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements.txt
	touch $(STAMP)

# Debian's Chromium for the browser tests of the web UI and the report (tests/serve/test_ui_browser.py).
# Installed with apt-get when missing and running as root (CI); otherwise those tests skip (fail with CI set).
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium </dev/null >/dev/null) \
	      || echo "warning: could not install chromium; the browser tests will fail" >&2; \
	  else echo "note: chromium is not installed (apt-get install chromium); the browser tests will skip" >&2; fi; }

run: install
	rm -rf data/landing data/warehouse.db data/warehouse.db-wal data/warehouse.db-shm data/runs
	$(BIN)/python -m pipeline generate --out data/landing --visitors $(SAMPLE_VISITORS) --days $(SAMPLE_DAYS) --start $(SAMPLE_START)
	$(BIN)/python scripts/run_sample_days.py --landing data/landing --warehouse sqlite:///$(CURDIR)/data/warehouse.db

# PYTEST_EXIT_FILE (set by .ci/run): where pytest's own exit code is written, since make turns every failure into 2
test: install browser
	timeout -k 15 85m $(BIN)/python -m pytest $(PYTEST_ARGS); rc=$$?; \
	  if [ -n "$(PYTEST_EXIT_FILE)" ]; then echo $$rc > "$(PYTEST_EXIT_FILE)"; fi; exit $$rc

airflow: install
	mkdir -p $(AIRFLOW_HOME)
	PATH=$(CURDIR)/$(BIN):$$PATH $(BIN)/airflow db migrate
	PATH=$(CURDIR)/$(BIN):$$PATH $(BIN)/airflow standalone

bench: install
	$(BIN)/python -m pipeline bench --events $${EVENTS:-1000000}

clean:
	rm -rf data .airflow .pytest_cache .hypothesis
