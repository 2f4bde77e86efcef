PY ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

export TF_CPP_MIN_LOG_LEVEL ?= 3
export PYTHONDONTWRITEBYTECODE := 1

.PHONY: setup demo test test-fast test-corpus test-zoo clean

$(STAMP): pyproject.toml
	@command -v $(PY) >/dev/null 2>&1 || { echo "need $(PY) on PATH"; exit 2; }
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[test]'
	touch $(STAMP)

setup: $(STAMP)

demo: $(STAMP)
	$(BIN)/python -m modelport.fixtures.demo demo-out

test: $(STAMP)
	$(BIN)/python -m pytest -q -p no:cacheprovider

test-fast: $(STAMP)
	$(BIN)/python -m pytest -q -p no:cacheprovider -m "not slow"

test-corpus: $(STAMP)
	$(BIN)/python -m modelport.corpus ../shared/corpus/public corpus-report.md
	$(BIN)/python -m modelport.corpus ../shared/corpus/public2 corpus2-report.md

# the zoo: Keras Applications and layer-coverage models built from code (cached), then every
# file through load + convert(all) + validate, as the corpus tier does
ZOO_DIR ?= .cache/zoo
test-zoo: $(STAMP)
	$(BIN)/python -m modelport.fixtures.zoo build $(ZOO_DIR)
	$(BIN)/python -m modelport.corpus $(ZOO_DIR) zoo-report.md

clean:
	rm -rf $(VENV) demo-out .cache build *.egg-info
