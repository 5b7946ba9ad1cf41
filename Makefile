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

SAMPLE_VISITORS ?= 2000
SAMPLE_DAYS ?= 7
SAMPLE_START ?= 2025-03-01

.PHONY: install run test airflow bench clean

install: $(STAMP)

$(STAMP): requirements.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements.txt
	touch $(STAMP)

run: install
	rm -rf data/landing data/warehouse.db data/warehouse.db-wal data/warehouse.db-shm data/runs
	$(BIN)/python -m pipeline generate --out data/landing --visitors $(SAMPLE_VISITORS) --days $(SAMPLE_DAYS) --start $(SAMPLE_START)
	$(BIN)/python scripts/run_sample_days.py --landing data/landing --warehouse sqlite:///$(CURDIR)/data/warehouse.db

test: install
	timeout -k 15 85m $(BIN)/python -m pytest $(PYTEST_ARGS)

airflow: install
	mkdir -p $(AIRFLOW_HOME)
	PATH=$(CURDIR)/$(BIN):$$PATH $(BIN)/airflow db migrate
	PATH=$(CURDIR)/$(BIN):$$PATH $(BIN)/airflow standalone

bench: install
	$(BIN)/python -m pipeline bench --events $${EVENTS:-1000000}

clean:
	rm -rf data .airflow .pytest_cache .hypothesis
