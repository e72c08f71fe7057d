# cleanplate — the two set-up commands:
#   make demo   install (no GPU packages) and run the pipeline offline on the bundled sample
#   make test   install with the test extras and run the test suite
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: demo test install install-dev lint bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

install: $(BIN)/python
	$(BIN)/python -m pip install -q -e .

install-dev: $(BIN)/python
	$(BIN)/python -m pip install -q -e '.[dev]'

demo: install
	$(BIN)/cleanplate demo -o demo-out

test: install-dev
	$(BIN)/ruff check src tests benchmarks
	@command -v chromium >/dev/null || command -v chromium-browser >/dev/null || [ -x /usr/bin/chromium ] || \
	  echo "note: chromium not found: the browser tests of the report will be SKIPPED here (and FAIL in CI)." \
	       "Install it with: sudo apt-get install chromium"
	$(BIN)/python -m pytest -q

bench: install-dev
	$(BIN)/python benchmarks/bench_pipeline.py

clean:
	rm -rf demo-out .pytest_cache build dist
