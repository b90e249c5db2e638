# Two commands do all set-up on a fresh machine (CPU-only or GPU):
#   make demo   runs the main job (perf/train_demo.py: a CNN trained with tritonlayers and with torch.nn)
#   make test   runs the whole test suite
# Both create .venv and install into it on first use. On a machine without an NVIDIA GPU the kernels run
# through Triton's interpreter, which needs triton>=3.8 with numpy 2.4, and torch is the CPU build
# (torch==2.13.0 lies on this workplace's disk; elsewhere set TORCH_PIP_ARGS to PyTorch's CPU wheel index so
# pip does not fetch the multi-GB CUDA build).

VENV ?= .venv
PY := $(VENV)/bin/python
TORCH ?= torch==2.13.0
TORCH_PIP_ARGS ?=
PYTEST_ARGS ?= -n 2

.PHONY: demo showcase test perf perf-dry-run clean

demo: $(VENV)/.installed
	$(PY) -m perf.train_demo

showcase: $(VENV)/.installed
	$(PY) -m perf.showcase

test: $(VENV)/.installed
	$(PY) -m pytest $(PYTEST_ARGS)

perf: $(VENV)/.installed
	$(PY) -m perf

perf-dry-run: $(VENV)/.installed
	$(PY) -m perf --dry-run

$(VENV)/.installed: pyproject.toml Makefile
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade "pip>=23" "setuptools>=69" wheel
	$(PY) -c "import torch" 2>/dev/null || $(PY) -m pip install -q $(TORCH_PIP_ARGS) "$(TORCH)"
	if nvidia-smi -L >/dev/null 2>&1; then true; else $(PY) -m pip install -q "triton>=3.8" "numpy>=2"; fi
	$(PY) -m pip install -q --no-build-isolation -e ".[test,perf,demo]"
	touch $@

clean:
	rm -rf $(VENV) build *.egg-info perf/out
