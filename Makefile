# The commands people type. `make help` lists them.
# Every target creates the virtual environment first if needed (python3 -m venv + pip install -e).

PYTHON   ?= python3
VENV     ?= .venv
PY       := $(VENV)/bin/python
PROFILE  ?= quick
STAMP    := $(VENV)/.installed-stamp
# Regression snapshots compare outputs, so progress bars stay off in tests.
TEST_ENV := SENTIMENT_PROGRESS=0 MPLBACKEND=Agg
PYTEST   := $(TEST_ENV) $(PY) -m pytest --nbval --nbval-current-env \
            --nbval-sanitize-with tests/regression/sanitize.cfg --nbval-cell-timeout=1200

.DEFAULT_GOAL := help
.PHONY: help install run test unit snapshots site results data bench bench-tuning predict tune student grade clean

help: ## list every command
	@awk 'BEGIN {FS = ":.*## "} /^[a-z-]+:.*## / {printf "  make %-10s %s\n", $$1, $$2}' $(MAKEFILE_LIST)
	@echo "  variables: PROFILE=smoke|quick|full (default quick), PYTHON=python3"

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP) ## create .venv and install the package with its test tools

run: $(STAMP) ## run the notebook chain for PROFILE into reports/PROFILE/ (the main job)
	$(PY) -m sentiment_lib run --profile $(PROFILE)

test: $(STAMP) ## unit tests + notebook regression (nbval on tests/regression/, smoke profile)
	$(PYTEST) tests

unit: $(STAMP) ## unit tests only (fast, no real data)
	$(TEST_ENV) $(PY) -m pytest tests --ignore=tests/regression -m "not slow"

snapshots: $(STAMP) ## re-execute the regression snapshots (smoke profile) after changing a notebook
	$(PY) -m sentiment_lib snapshots

site: $(STAMP) ## rebuild and check the report site of reports/PROFILE/ (make run builds it too)
	$(PY) -m sentiment_lib site --profile $(PROFILE)

results: $(STAMP) ## write docs/results.md: the results tables of every reports/<profile>/metrics.json
	$(PY) -m sentiment_lib results

data: $(STAMP) ## download the official IMDB archive into data/raw/ (needs internet)
	$(PY) -m sentiment_lib data

bench: $(STAMP) ## training-speed benchmark: seed-style loop vs this project's loop
	$(PY) -m sentiment_lib bench

bench-tuning: $(STAMP) ## tuning budget: 05's successive-halving study against an exhaustive one (PROFILE, default quick)
	SENTIMENT_PROGRESS=0 $(PY) -m benchmarks.tuning_budget --profile $(PROFILE)

predict: $(STAMP) ## label a review with the run's final model: make predict TEXT="what a film"
	$(PY) -m sentiment_lib predict --profile $(PROFILE) "$(TEXT)"

tune: $(STAMP) ## run trials of PROFILE's Optuna study; OPTUNA_STORAGE=postgresql://… shares it between machines
	$(PY) -m sentiment_lib tune --profile $(PROFILE) $(if $(TRIALS),--trials $(TRIALS))

student: $(STAMP) ## classroom: the student copies of the five notebooks, the library's student edition (a wheel) and a README into student/ (OUT=…)
	$(PY) -m classroom student $(if $(OUT),--out "$(OUT)")

grade: $(STAMP) ## classroom: grade SUBMISSIONS=notebook-or-folder into grading/ (ASSIGNMENT=03_baseline, OUT=…)
	$(if $(SUBMISSIONS),,$(error give the submissions: make grade SUBMISSIONS=path/to/folder-or-notebook))
	SENTIMENT_PROGRESS=0 $(PY) -m classroom grade "$(SUBMISSIONS)" $(if $(ASSIGNMENT),--assignment $(ASSIGNMENT)) $(if $(OUT),--out "$(OUT)")

clean: ## remove run outputs (artifacts/) and caches; keeps data/ and reports/
	rm -rf artifacts .pytest_cache
