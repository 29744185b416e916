# cxr-serverless: `make run` starts the whole service locally, `make test` runs the tests.
# Both create the virtual environment they need on first use.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
MODEL_DIR ?= layers/model/weights
# The models `make model` builds (template.yaml: ModelName first, then ServedModels); the tests serve two side by side.
MODELS ?= densenet121-res224-all
TEST_MODELS ?= densenet121-res224-all densenet121-res224-chex
# The tests' own random-init stand-in, built without the network: test results must say random-init.
TEST_MODEL_DIR ?= build/test-weights
TEST_ENV = CXR_WEIGHTS_OFFLINE=1 CXR_TEST_MODEL_DIR=$(abspath $(TEST_MODEL_DIR))

.PHONY: venv model test-model browser orthanc pacs-demo run test test-unit test-integration test-e2e layers sizes clean

$(STAMP): requirements/core.txt requirements/model.txt requirements/dev.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements/dev.txt
	$(PY) -m pip install -q --no-deps -e .
	touch $(STAMP)

venv: $(STAMP)

## Weights + ONNX export: the real file (already there, torchxrayvision's cache, WEIGHTS_FROM=path, or downloaded
## and verified; an unreachable host fails within ~10 s), else a clearly labelled random-init stand-in.
model: venv
	$(PY) -m cxr_model_build.build --model-dir $(MODEL_DIR) $(addprefix --name ,$(MODELS)) --allow-random-init $(if $(WEIGHTS_FROM),--weights-from $(WEIGHTS_FROM))

test-model: venv
	$(TEST_ENV) $(PY) -m cxr_model_build.build --model-dir $(TEST_MODEL_DIR) $(addprefix --name ,$(TEST_MODELS)) --allow-random-init

## Debian's Chromium for the web page test (Playwright drives it; no browser download). Needs root or sudo.
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq chromium >/dev/null; }

## Debian's Orthanc and its DICOMweb plugin: the PACS the gateway tests and `make pacs-demo` start on loopback with a
## generated config (never the Debian service). Needs root or sudo.
orthanc:
	@{ command -v Orthanc >/dev/null 2>&1 || [ -x /usr/sbin/Orthanc ]; } && dpkg -s orthanc-dicomweb >/dev/null 2>&1 || { \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq orthanc orthanc-dicomweb >/dev/null; }

## A real Orthanc + the local stack + its DICOM gateway; the sample radiographs routed through and the SRs filed back
## into the study; prints Orthanc's web UI address (docs/pacs.md). Ctrl-C stops it. ARGS="--exit --screenshot F.png".
pacs-demo: model orthanc
	$(PY) local/pacs_demo.py --model-dir $(abspath $(MODEL_DIR)) $(ARGS)

## The embedded local stack: moto on loopback, resources from template.yaml, HTTP API, infer workers
## (`model` just built the artifacts, so the stack does not run the build, and its weights fetch, a second time).
run: model
	$(PY) -m cxr_local --no-build --model-dir $(MODEL_DIR) $(ARGS)

test: test-model browser orthanc
	CXR_REQUIRE_BROWSER=1 CXR_REQUIRE_ORTHANC=1 $(TEST_ENV) $(PY) -m pytest $(PYTEST_ARGS)

test-unit: venv
	$(TEST_ENV) $(PY) -m pytest tests/unit $(PYTEST_ARGS)

test-integration: test-model
	$(TEST_ENV) $(PY) -m pytest tests/integration $(PYTEST_ARGS)

test-e2e: test-model browser orthanc
	CXR_REQUIRE_BROWSER=1 CXR_REQUIRE_ORTHANC=1 $(TEST_ENV) $(PY) -m pytest tests/e2e $(PYTEST_ARGS)

## Lambda layers for `sam build && sam deploy --guided` (docs/deploy.md), and their unzipped sizes.
layers: model
	$(PY) infra/build_layers.py

sizes: model
	$(PY) -m bench package-sizes --import-check

clean:
	rm -rf $(VENV) $(MODEL_DIR) $(TEST_MODEL_DIR) .pytest_cache bench/results
