PY ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

export TF_CPP_MIN_LOG_LEVEL ?= 3
export PYTHONDONTWRITEBYTECODE := 1

.PHONY: setup system-packages demo test test-fast test-corpus test-zoo bench clean

# Debian packages: Graphviz draws `inspect --plot` and the report's graphs; Chromium
# renders the HTML report in the tests (headless, offline)
DEBIAN_PACKAGES := graphviz chromium fonts-dejavu-core

$(STAMP): pyproject.toml
	@command -v $(PY) >/dev/null 2>&1 || { echo "need $(PY) on PATH"; exit 2; }
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[test]'
	touch $(STAMP)

setup: $(STAMP) system-packages

system-packages:
	@if command -v dot >/dev/null 2>&1 && { command -v chromium >/dev/null 2>&1 || \
	    command -v chromium-browser >/dev/null 2>&1; }; then :; \
	elif command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
	    apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
	        --no-install-recommends $(DEBIAN_PACKAGES); \
	else echo "note: install $(DEBIAN_PACKAGES) (Graphviz for --plot, Chromium for the report tests)"; fi

demo: $(STAMP)
	$(BIN)/python -m modelport.fixtures.demo demo-out

test: $(STAMP) system-packages
	$(BIN)/python -m pytest -q -p no:cacheprovider

test-fast: $(STAMP) system-packages
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

# convert --to all against the anchor workflow (tf2onnx CLI, a TFLiteConverter script,
# model.export, a freeze script): MobileNetV2 224x224 and a 10-model zoo, medians of 3;
# BENCH_ARGS="--repeats 1 --skip-zoo" for a quick look
bench: $(STAMP)
	$(BIN)/python benchmarks/convert_bench.py $(BENCH_ARGS)

clean:
	rm -rf $(VENV) demo-out .cache build *.egg-info
