# Two commands do all the set-up on a fresh machine:
#   make demo   # synthetic customer base -> trained, tracked model -> scored table (cx-demo/)
#   make test   # the default (fast) test suite
# Each creates the virtual environment in .venv on first use.

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.cx-models-installed

SPARK_STAMP := $(VENV)/.cx-models-spark-installed

.PHONY: demo test test-slow test-spark test-all lint bench venv clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test,serve,db]'
	touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	$(BIN)/cx-models demo

test: $(STAMP)
	$(BIN)/python -m pytest -q --durations=10

# the long-running tests (marked slow), not part of the default suite
test-slow: $(STAMP)
	$(BIN)/python -m pytest -q -m slow --durations=10

# Spark tests: local mode, needs Java 17+ and the spark extra (installed here on first use)
$(SPARK_STAMP): $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[test,serve,db,spark]'
	touch $(SPARK_STAMP)

test-spark: $(SPARK_STAMP)
	$(BIN)/python -m pytest -q -m spark --durations=10

test-all: $(SPARK_STAMP)
	$(BIN)/python -m pytest -q -m ''

lint: $(STAMP)
	$(BIN)/ruff check .

clean:
	rm -rf cx-demo .pytest_cache .ruff_cache
