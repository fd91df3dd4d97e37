# Two commands a person needs: `make demo` and `make test`. Both create .venv when missing.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test test-fast docs lint format bench clean

$(STAMP): pyproject.toml requirements.lock
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	DS_BUILD_OPS=0 $(BIN)/python -m pip install --quiet -c requirements.lock -e '.[video,model,eval,distributed,monitor,lmms,nwb,dev]'
	# lmms-eval without its own pins (av<16, wandb==0.25 clash with ours); the `lmms` extra holds
	# what its evaluation path imports
	$(BIN)/python -m pip install --quiet --no-deps -c requirements.lock lmms-eval
	# test-only: the real Qwen BPE ranks ship in this wheel (never imported; no dependencies)
	$(BIN)/python -m pip install --quiet --no-deps -c requirements.lock dashscope
	@touch $(STAMP)

demo: $(STAMP)
	$(BIN)/verbnoun demo --out runs/demo

# the whole suite, on both cores (pytest-xdist); `-n 0` in PYTEST_ARGS runs it in one process
test: $(STAMP)
	$(BIN)/python -m pytest -q -n 2 $(PYTEST_ARGS)
	$(BIN)/ruff check .

# the tests not marked `slow` (those train, spawn processes or take over a second), on 2 cores
test-fast: $(STAMP)
	$(BIN)/python -m pytest -q -m "not slow" -n 2

# the command reference, generated from the commands themselves (a test checks it is current)
docs: $(STAMP)
	$(BIN)/typer verbnoun.cli utils docs --name verbnoun --output docs/reference/cli.md

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# each benchmark writes its figures into benchmarks/results.json (figure, reference measured in
# the same run, target, met or not, machine, date); the last line renders benchmarks/results.md
bench: $(STAMP)
	# decord is the reference of the decoding benchmark only (py3-none wheel, no dependencies)
	$(BIN)/python -m pip install --quiet --no-deps -c requirements.lock decord
	$(BIN)/python benchmarks/bench_mqa_build.py
	$(BIN)/python benchmarks/bench_decode.py --loader-clips 400
	$(BIN)/python benchmarks/bench_model.py
	$(BIN)/python benchmarks/bench_eval.py
	$(BIN)/python benchmarks/bench_open_vocab.py
	$(BIN)/python benchmarks/bench_audit.py
	$(BIN)/python benchmarks/bench_endpoint.py
	$(BIN)/python benchmarks/bench_report.py
	$(BIN)/python benchmarks/bench_log_gaps.py
	$(BIN)/python benchmarks/bench_parser.py
	$(BIN)/python benchmarks/bench_train.py
	$(BIN)/python benchmarks/bench_adapt.py
	# annotate reads the demo's specialist and model (a finished demo's stages are reused)
	$(BIN)/verbnoun demo --out runs/demo
	$(BIN)/python benchmarks/bench_annotate.py --demo runs/demo
	$(BIN)/python benchmarks/results.py

clean:
	rm -rf runs .pytest_cache .ruff_cache
