# make train: set up .venv and train (ARGS='--gpu=0' and so on pass flags).
# make test:  set up .venv and run the tests.
# PYTHON, NUMPY and VENV choose the stack, as .ci/run does for its two.
PYTHON ?= python3
NUMPY ?= numpy
VENV ?= .venv
ARGS ?=

.PHONY: setup train test clean

setup: $(VENV)/installed

# Chainer 7.8.1 is a source release whose setup.py imports pkg_resources:
# it is built against the venv's setuptools<81, not pip's newest one.
$(VENV)/installed: requirements.txt requirements-test.txt
	rm -rf $(VENV)
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade 'setuptools<81' wheel
	$(VENV)/bin/pip install -q --no-build-isolation -r requirements-test.txt '$(NUMPY)'
	touch $@

train: setup
	$(VENV)/bin/python train_mnist.py $(ARGS)

test: setup
	$(VENV)/bin/python -m pytest -q tests

clean:
	rm -rf .venv .venv-*
