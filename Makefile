# The two commands: `make demo` and `make test`. Both create .venv when it is missing.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.tcdn-installed
DEMO_OUT ?= demo_out

.PHONY: demo test test-fast lint bench bench-data bench-step bench-cluster bench-cross bench-report clean

$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -c constraints.txt -e ".[dev]"
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/tcdn demo --out $(DEMO_OUT)

test: $(STAMP)
	$(PY) -m pytest -q

test-fast: $(STAMP)
	$(PY) -m pytest -q -m "not slow"

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests benchmarks
	$(VENV)/bin/ruff format --check src tests benchmarks
	$(VENV)/bin/mypy

bench: $(STAMP)
	$(PY) benchmarks/bench_train.py

# ingest throughput vs plain decoding, and random reads from the raw and JPEG frame stores
bench-data: $(STAMP)
	$(PY) benchmarks/bench_ingest.py
	$(PY) benchmarks/bench_store.py

# AlexNet step at 227x227: GFLOP/s vs the matmul peak, channels-last/bf16/compile/threads, peak memory
bench-step: $(STAMP)
	$(PY) benchmarks/bench_step.py $(BENCH_ARGS)

# clustering at scale: 32k video-like frames (K = 2) vs scikit-learn, solver agreement, 10 faiss
# K-means seeds at 100k x 4,096, 1M float16 spectral; time, CPU, peak memory, CE (BENCH_ARGS: --cases, --quick)
bench-cluster: $(STAMP)
	$(PY) benchmarks/bench_cluster.py $(BENCH_ARGS)

# the default's training step with and without its cross-stream term (seconds per step, ratio)
bench-cross: $(STAMP)
	$(PY) benchmarks/bench_cross_stream.py $(BENCH_ARGS)

# the report of a 10,000-frame discovery: time to build it, size of the page
bench-report: $(STAMP)
	$(PY) benchmarks/bench_report.py

clean:
	rm -rf $(DEMO_OUT) build dist src/*.egg-info .pytest_cache .mypy_cache .ruff_cache
