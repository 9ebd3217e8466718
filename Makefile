# Each target installs what it needs (idempotently) into .venv, then runs.
VENV ?= .venv
PY := $(VENV)/bin/python
export HF_HUB_OFFLINE ?= 1
export TRANSFORMERS_OFFLINE ?= 1
export HF_DATASETS_OFFLINE ?= 1
export TOKENIZERS_PARALLELISM ?= false

.PHONY: setup demo test docker-check bench lint typecheck clean

setup:
	@bash scripts/setup.sh

demo: setup
	$(PY) examples/demo.py

# lint and types first, so that CI fails fast
test: setup lint typecheck
	$(PY) -m pytest tests --durations=25 $(PYTEST_ARGS)

# only the Docker smoke test: engine, both images, containers (tests/test_docker_engine.py)
docker-check: setup
	$(PY) -m pytest tests/test_docker_engine.py --durations=10 $(PYTEST_ARGS)

bench: setup
	$(PY) bench/run.py

lint: setup
	$(PY) -m ruff check adapt tests examples bench scripts

typecheck: setup
	$(PY) -m mypy

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache
