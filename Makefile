# make train: set up .venv and train (ARGS='--gpu=0' and so on pass flags).
# make test:  set up .venv and run the tests.
# make gpu-check OUT=folder: every GPU path, each log into the folder (see
# gpu_check.sh), with the venv's Python where there is a venv.
# PYTHON, NUMPY and VENV choose the stack, as .ci/run does for its three.
# GPU=cuda12x or GPU=cuda13x adds CuPy 14 for that CUDA major version, with
# CUDA's libraries (its [ctk] extra: CuPy's wheels carry none). The venv
# remembers GPU for later make commands; GPU= sets it up for the CPU alone.
PYTHON ?= python3
NUMPY ?= numpy
VENV ?= .venv
GPU ?= $(shell cat $(VENV)/gpu 2>/dev/null)
ARGS ?=
STAMP = $(VENV)/installed-$(or $(GPU),cpu)
CUPY = $(if $(GPU),'cupy-$(GPU)[ctk]>=14')

ifneq ($(filter-out cuda12x cuda13x,$(GPU)),)
$(error GPU=$(GPU): CuPy 14 comes as cuda12x or cuda13x)
endif

.PHONY: setup train test gpu-check clean

setup: $(STAMP)

# Chainer 7.8.1 is a source release whose setup.py imports pkg_resources:
# it is built against the venv's setuptools<81, not pip's newest one.
$(STAMP): requirements.txt requirements-test.txt
	rm -rf $(VENV)
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade 'setuptools<81' wheel '$(NUMPY)'
ifneq ($(GPU),)
	@$(VENV)/bin/python -c \
	    'import numpy; exit(int(numpy.__version__.split(".")[0]) < 2)' || \
	    { echo 'GPU=$(GPU): CuPy 14 needs NumPy >= 2, not $(NUMPY)' >&2; \
	    exit 1; }
	echo $(GPU) > $(VENV)/gpu
endif
	$(VENV)/bin/pip install -q --no-build-isolation -r requirements-test.txt '$(NUMPY)' $(CUPY)
	touch $@

train: setup
	$(VENV)/bin/python train_mnist.py $(ARGS)

test: setup
	$(VENV)/bin/python -m pytest -q tests

gpu-check:
	@PYTHON=$(or $(wildcard $(VENV)/bin/python),$(PYTHON)) ./gpu_check.sh $(OUT)

clean:
	rm -rf .venv .venv-*
