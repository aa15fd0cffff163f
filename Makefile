# The two commands the README promises: `make run` and `make test`. Everything else is a step of those.
SHELL := /bin/bash
.DEFAULT_GOAL := help

# Python 3.13, the Lambda runtime. PYENV_VERSION lets a pyenv shim answer; elsewhere it is ignored.
PYTHON ?= $(shell PYENV_VERSION=$${PYENV_VERSION:-3.13} python3.13 -c 'import sys; print(sys.executable)' 2>/dev/null)
VENV := .venv
BIN := $(VENV)/bin
# `make run` installs what running needs: the runtime dependencies and the local services (the `local` extra).
# `make test` adds the development toolchain (the `dev` extra).
RUN_STAMP := $(VENV)/.installed-run
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
ENDPOINT_PORT ?= 4599
# Your work function, package.module:function (e.g. actions.my_action:run); empty means the example action.
WORK_FUNCTION ?=
NO_PYTHON := echo "python3.13 not found: install Python 3.13 (the Lambda runtime)"; exit 1

export AWS_DEFAULT_REGION ?= us-east-1

.PHONY: help venv js-sdk test lint typecheck unit property fuzz integration template build deploy bench bench-artifacts \
	chaos run invoke sam-local endpoint action clean

help:
	@echo "make run    the whole life cycle on the embedded local CodePipeline endpoint [WORK_FUNCTION=actions.my_action:run]"
	@echo "make test   lint, type-check and run the tests with coverage (what CI runs)"
	@echo "make action NAME=my_action   a new action in src/actions/ (and its test in tests/actions/)"
	@echo "make invoke EVENT=events/<file>.json [FUNCTION=WorkFunction] [WORK_FUNCTION=...] [OVERRIDES=\"Key=Value ...\"] [DOCKER=1]"
	@echo "            sam build for this machine (build/sam-host/, skipped when nothing changed), then the built function(s)"
	@echo "            without Docker (under the emulator), or with DOCKER=1 through the SAM CLI's own sam local invoke"
	@echo "make sam-local  sam local invoke, in Docker, on every events/ file for every function, checked (starts Docker)"
	@echo "make endpoint  the local CodePipeline endpoint alone, on 127.0.0.1:$(ENDPOINT_PORT) (ENDPOINT_PORT=...), with moto's S3 and KMS for artifacts"
	@echo "make fuzz   the long property-based run (50,000 examples per property)"
	@echo "make build  sam build for the template's architecture (arm64 by default) plus the post-build step: the artifact to deploy"
	@echo "make deploy [GUIDED=1]   check that .aws-sam/build fits the architecture deployed, then sam deploy"
	@echo "make bench  cold start, per-event time, batch throughput and memory against a plain boto3 worker, and a 200 MB"
	@echo "            artifact read and written against boto3's s3transfer plus zipfile [UPDATE_DOCS=1]"
	@echo "make bench-artifacts  the 200 MB artifact section of make bench alone"
	@echo "make chaos  the life-cycle fault run: 500 jobs through both functions under kills and faults; prints the counts"
	@echo "make clean  remove everything generated: the venvs, builds, caches"

# src/ (the functions' CodeUri: the library and your actions) on the venv's path, as Lambda puts the code's root
# on its path: what the deployed function can import, `make run` and `consume` can import.
CODEURI_ON_PATH := $(BIN)/python -c 'import pathlib, site; pathlib.Path(site.getsitepackages()[0], "codeuri.pth").write_text("$(abspath src)\n")'

$(BIN)/python:
	@test -n "$(PYTHON)" || { $(NO_PYTHON); }
	$(PYTHON) -m venv $(VENV)

$(RUN_STAMP): pyproject.toml src/requirements.txt | $(BIN)/python
	@echo "installing the runtime dependencies and the local services into $(VENV) (once)"
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[local]'
	@$(CODEURI_ON_PATH)
	touch $@

$(STAMP): pyproject.toml src/requirements.txt | $(BIN)/python
	@echo "installing the development toolchain into $(VENV) (once)"
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	@$(CODEURI_ON_PATH)
	touch $@ $(RUN_STAMP)

venv: $(STAMP)

# npm ci installs exactly what the lock file says; once installed, nothing is fetched again (offline is fine).
$(JS_STAMP): $(JS_SDK)/package-lock.json
	@command -v npm >/dev/null || { echo "npm not found: install Node.js 20 or later (the endpoint is tested with the JS SDK)"; exit 1; }
	cd $(JS_SDK) && npm ci --no-audit --no-fund --prefer-offline --loglevel=error
	touch $@

js-sdk: $(JS_STAMP)

$(SAM_STAMP):
	@test -n "$(PYTHON)" || { $(NO_PYTHON); }
	@echo "installing the SAM CLI into $(SAM_VENV) (once)"
	$(PYTHON) -m venv $(SAM_VENV)
	$(SAM_VENV)/bin/python -m pip install --quiet --disable-pip-version-check aws-sam-cli==1.170.0
	touch $@

$(CHECKOV_STAMP):
	@test -n "$(PYTHON)" || { $(NO_PYTHON); }
	@echo "installing checkov into $(CHECKOV_VENV) (once)"
	$(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/python -m pip install --quiet --disable-pip-version-check checkov==3.3.30
	touch $@

lint: $(STAMP)
	$(BIN)/ruff check src tools tests bench
	$(BIN)/ruff format --check src tools tests bench

typecheck: $(STAMP)
	$(BIN)/mypy

# Unit and endpoint tests carry the coverage gate; tests/actions holds your actions' tests. The integration
# tests run without coverage tracing: it slows the in-process endpoint and workers tenfold, and they measure
# races and deadlines. They run in 4 processes (pytest-xdist): most of their time is spent waiting on
# conditions (visibility timeouts, time limits, kills), and each test's servers listen on their own ports.
unit: $(STAMP) $(JS_STAMP)
	$(BIN)/pytest tests/unit tests/endpoint tests/actions --cov --cov-report=term

integration: $(STAMP)
	$(BIN)/pytest tests/integration -n 4

# Hypothesis over the handler: the `ci` profile here; `make fuzz` runs the `long` one, and reports its progress.
property: $(STAMP)
	$(BIN)/pytest tests/property --hypothesis-show-statistics -q

fuzz: $(STAMP)
	HYPOTHESIS_PROFILE=long $(BIN)/pytest tests/property --hypothesis-show-statistics -q

# cfn-lint, sam validate --lint, checkov, the SAM translator's output, the sample pipeline, and the built artifact
# under the emulator and under `sam local invoke` in Docker (skipped, with one line saying why, where Docker is
# missing; not in CI).
template: $(STAMP) $(SAM_STAMP) $(CHECKOV_STAMP)
	$(BIN)/pytest tests/template

test: lint typecheck unit property integration template

# The deployable artifact: sam build into .aws-sam/build for the architecture the stack deploys (samconfig.toml's
# Architecture, else the template's default, arm64; or ARCH=x86_64), then tools/finish_build.py: the acknowledger's
# SDK data limited to the calls it makes, and compiled bytecode shipped in every function, so that a cold start
# on Lambda's read-only code directory compiles nothing; then a check that its native code is for that
# architecture. Then: make deploy (or sam deploy). Nothing else writes .aws-sam/: make invoke, make test and
# make bench build for this machine into build/sam-host/.
build: $(RUN_STAMP) $(SAM_STAMP)
	@arch=$$($(SAM_VENV)/bin/python tools/deploy_check.py --print $(if $(ARCH),--architecture $(ARCH))) && \
	echo "sam build for $$arch into .aws-sam/build" && \
	PATH="$(abspath $(BIN)):$$PATH" SAM_CLI_TELEMETRY=0 $(SAM_VENV)/bin/sam build --parameter-overrides Architecture=$$arch && \
	$(BIN)/python tools/finish_build.py .aws-sam/build && \
	$(SAM_VENV)/bin/python tools/deploy_check.py $(if $(ARCH),--architecture $(ARCH))

# sam deploy, once .aws-sam/build is checked to hold native code for the architecture the stack deploys.
# GUIDED=1 the first time: it asks for the parameters and saves them in samconfig.toml.
deploy: $(SAM_STAMP)
	$(SAM_VENV)/bin/python tools/deploy_check.py
	SAM_CLI_TELEMETRY=0 $(SAM_VENV)/bin/sam deploy $(if $(GUIDED),--guided)

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
# an SQS event (EVENT=events/work/batch.json) runs the work function alone. WORK_FUNCTION sets WorkEntryPoint.
# DOCKER=1 runs the same build through the SAM CLI's own `sam local invoke`, in Docker (started first, as for
# make sam-local).
invoke: $(RUN_STAMP) $(SAM_STAMP)
	@$(if $(DOCKER),tools/docker_daemon.sh start && )$(BIN)/python tools/invoke_local.py $(EVENT) $(if $(FUNCTION),--function $(FUNCTION)) --parameter-overrides "$(OVERRIDES)$(if $(WORK_FUNCTION), WorkEntryPoint=$(WORK_FUNCTION))" $(if $(DOCKER),--docker)

# The SAM CLI's own `sam local invoke`, in Docker, on every events/ file for every function, checked as the
# emulator's runs are (the tests marked docker), on the host build (build/sam-host/). Starts Docker (as root,
# installs Debian's docker.io where it is absent); where AWS's Lambda base image cannot be pulled, builds a local
# stand-in once (docs/local-invoke.md).
sam-local: $(STAMP) $(SAM_STAMP)
	tools/docker_daemon.sh start
	$(BIN)/python tools/sam_local.py image
	$(BIN)/pytest tests/template -m docker

run: $(RUN_STAMP)
	@WORK_FUNCTION="$(WORK_FUNCTION)" $(BIN)/python tools/run_local.py

endpoint: $(RUN_STAMP)
	$(BIN)/python -m codepipeline_local serve --port $(ENDPOINT_PORT) --moto

# A new action: src/actions/$(NAME).py, which the deployed work function ships, and tests/actions/test_$(NAME).py.
action:
	@test -n "$(PYTHON)" || { $(NO_PYTHON); }
	@$(PYTHON) tools/new_action.py "$(NAME)"

clean:
	rm -rf $(VENV) $(SAM_VENV) $(CHECKOV_VENV) .aws-sam build bench/build .hypothesis \
		.mypy_cache .pytest_cache .ruff_cache .coverage *.egg-info
	find . \( -name __pycache__ -o -name node_modules \) -not -path './.git/*' -prune -exec rm -rf {} +
