# The two commands the README promises: `make run` and `make test`. Everything else is a step of those.
SHELL := /bin/bash
.DEFAULT_GOAL := help

# Python 3.13, the Lambda runtime. PYENV_VERSION lets a pyenv shim answer; elsewhere it is ignored.
PYTHON ?= $(shell PYENV_VERSION=$${PYENV_VERSION:-3.13} python3.13 -c 'import sys; print(sys.executable)' 2>/dev/null)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# The SAM CLI and checkov pin other boto3 and pydantic versions than the function: each has its own venv.
SAM_VENV := .venv-sam
SAM_STAMP := $(SAM_VENV)/.installed
CHECKOV_VENV := .venv-checkov
CHECKOV_STAMP := $(CHECKOV_VENV)/.installed
# The AWS SDK for JavaScript v3, the second SDK the endpoint's tests drive, pinned by its lock file.
JS_SDK := tests/endpoint/js
JS_STAMP := $(JS_SDK)/node_modules/.installed
EVENT ?= events/custom-job.json

export AWS_DEFAULT_REGION ?= us-east-1

.PHONY: help venv js-sdk test lint typecheck unit property fuzz integration template build bench bench-artifacts chaos run invoke sam-local endpoint clean

help:
	@echo "make test   lint, type-check and run the tests with coverage (what CI runs)"
	@echo "make run    run the worker against the embedded local CodePipeline endpoint"
	@echo "make invoke EVENT=events/<file>.json [FUNCTION=WorkFunction] [DOCKER=1]   sam build, then run the built function(s)"
	@echo "            without Docker (under the emulator), or with DOCKER=1 through the SAM CLI's own sam local invoke"
	@echo "make sam-local  sam local invoke, in Docker, on every events/ file for every function, checked (starts Docker)"
	@echo "make endpoint  run the local CodePipeline endpoint alone, on port 4599, with moto's S3 and KMS for artifacts"
	@echo "make fuzz   the long property-based run (50,000 examples per property)"
	@echo "make build  sam build plus compiled bytecode: the artifact to sam deploy"
	@echo "make bench  cold start, per-event time, batch throughput and memory against a plain boto3 worker, and a 200 MB"
	@echo "            artifact read and written against boto3's s3transfer plus zipfile [UPDATE_DOCS=1]"
	@echo "make bench-artifacts  the 200 MB artifact section of make bench alone"
	@echo "make chaos  the life-cycle fault run: 500 jobs through both functions under kills and faults; prints the counts"

$(STAMP): pyproject.toml src/requirements.txt
	@test -n "$(PYTHON)" || { echo "python3.13 not found: install Python 3.13 (the Lambda runtime)"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

venv: $(STAMP)

# npm ci installs exactly what the lock file says; once installed, nothing is fetched again (offline is fine).
$(JS_STAMP): $(JS_SDK)/package-lock.json
	@command -v npm >/dev/null || { echo "npm not found: install Node.js 20 or later (the endpoint is tested with the JS SDK)"; exit 1; }
	cd $(JS_SDK) && npm ci --no-audit --no-fund --prefer-offline --loglevel=error
	touch $@

js-sdk: $(JS_STAMP)

$(SAM_STAMP):
	@test -n "$(PYTHON)" || { echo "python3.13 not found: install Python 3.13 (the Lambda runtime)"; exit 1; }
	$(PYTHON) -m venv $(SAM_VENV)
	$(SAM_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(SAM_VENV)/bin/python -m pip install --quiet aws-sam-cli==1.170.0
	touch $@

$(CHECKOV_STAMP):
	@test -n "$(PYTHON)" || { echo "python3.13 not found: install Python 3.13 (the Lambda runtime)"; exit 1; }
	$(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(CHECKOV_VENV)/bin/python -m pip install --quiet checkov==3.3.30
	touch $@

lint: $(STAMP)
	$(BIN)/ruff check src tools tests bench
	$(BIN)/ruff format --check src tools tests bench

typecheck: $(STAMP)
	$(BIN)/mypy

# Unit and endpoint tests carry the coverage gate. The integration tests run without coverage tracing: it
# slows the in-process endpoint and workers tenfold, and they measure races and deadlines.
unit: $(STAMP) $(JS_STAMP)
	$(BIN)/pytest tests/unit tests/endpoint --cov --cov-report=term

integration: $(STAMP)
	$(BIN)/pytest tests/integration

# Hypothesis over the handler: the `ci` profile here; `make fuzz` runs the `long` one.
property: $(STAMP)
	$(BIN)/pytest tests/property --hypothesis-show-statistics -q

fuzz: $(STAMP)
	HYPOTHESIS_PROFILE=long $(BIN)/pytest tests/property --hypothesis-show-statistics -q

# cfn-lint, sam validate --lint, checkov, the SAM translator's output, and the built artifact under the emulator
# and under `sam local invoke` in Docker (skipped, with one line saying why, where Docker is missing; not in CI).
template: $(STAMP) $(SAM_STAMP) $(CHECKOV_STAMP)
	$(BIN)/pytest tests/template

test: lint typecheck unit property integration template

# The deployable artifact: sam build (the template's architecture, arm64 by default), then tools/finish_build.py:
# the acknowledger's SDK data limited to the services it calls, and compiled bytecode shipped in both functions,
# so that a cold start on Lambda's read-only code directory compiles nothing. Then: sam deploy.
build: $(STAMP) $(SAM_STAMP)
	PATH="$(abspath $(BIN)):$$PATH" SAM_CLI_TELEMETRY=0 $(SAM_VENV)/bin/sam build $(if $(ARCH),--parameter-overrides Architecture=$(ARCH))
	$(BIN)/python tools/finish_build.py .aws-sam/build

# Like for like against bench/reference (docs/benchmarks.md): prints each figure against its target and writes
# build/bench/; UPDATE_DOCS=1 also writes the table into docs/benchmarks.md.
bench: $(STAMP) $(SAM_STAMP)
	$(BIN)/python bench/run.py $(if $(UPDATE_DOCS),--update-docs)

# make bench's artifact section alone: a 200 MB artifact through the Job's artifact API against s3transfer plus
# zipfile, on moto's S3; writes bench/artifacts.json.
bench-artifacts: $(STAMP)
	$(BIN)/python bench/artifacts.py

# The life-cycle fault run (docs/testing.md): both functions in killable processes, Lambda's retries and SQS's event
# source simulated, duplicates, ambiguous sends and throttling injected; judged per job. `make test` runs a small one.
chaos: $(STAMP)
	PYTHONPATH=tools $(BIN)/python -m chaos $(if $(JOBS),--jobs $(JOBS)) $(if $(SEED),--seed $(SEED))

# `sam local invoke` without Docker: make invoke EVENT=events/scheduled.json [OVERRIDES="LogLevel=DEBUG"]
# FUNCTION=WorkFunction then runs the work function on the jobs the job worker handed to the (local) work queue;
# an SQS event (EVENT=events/work/batch.json) runs the work function alone. DOCKER=1 runs the same through the
# SAM CLI's own `sam local invoke`, in Docker (started first, as for make sam-local).
invoke: $(STAMP) $(SAM_STAMP)
	@$(if $(DOCKER),tools/docker_daemon.sh start && )$(BIN)/python tools/invoke_local.py $(EVENT) $(if $(FUNCTION),--function $(FUNCTION)) --parameter-overrides "$(OVERRIDES)" $(if $(DOCKER),--docker)

# The SAM CLI's own `sam local invoke`, in Docker, on every events/ file for every function, checked as the
# emulator's runs are (the tests marked docker). Starts Docker (as root, installs Debian's docker.io where it is
# absent); where AWS's Lambda base image cannot be pulled, builds a local stand-in once (docs/local-invoke.md).
sam-local: $(STAMP) $(SAM_STAMP)
	tools/docker_daemon.sh start
	$(BIN)/python tools/sam_local.py image
	$(BIN)/pytest tests/template -m docker

run: $(STAMP)
	$(BIN)/python tools/run_local.py

endpoint: $(STAMP)
	$(BIN)/python -m codepipeline_local serve --port 4599 --moto

clean:
	rm -rf $(VENV) $(SAM_VENV) $(CHECKOV_VENV) $(JS_SDK)/node_modules .aws-sam build .hypothesis .mypy_cache .pytest_cache .ruff_cache .coverage
