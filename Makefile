# `make run`: install, then the whole job; `make test`: install, then the tests.
PYTHON ?= python3
DEVICE ?=

.PHONY: install run test lint generators samples

install:
	@$(PYTHON) -c "import torch" 2>/dev/null || $(PYTHON) -m pip install torch==2.13.0
	$(PYTHON) -m pip install -q -r requirements.txt
	$(PYTHON) -m pip install -q --no-deps --no-build-isolation -e .

generators:
	$(PYTHON) -m handgen train-vae --checkpoint runs/vae.pt $(DEVICE)
	$(PYTHON) -m handgen train-gan --checkpoint runs/gan.pt $(DEVICE)

samples:
	$(PYTHON) -m handgen sample --checkpoint runs/vae.pt --out VAE_hands --n 300
	$(PYTHON) -m handgen sample --checkpoint runs/gan.pt --out GAN_hands --n 300

run: install
	$(MAKE) generators samples

test: install
	$(PYTHON) -m pytest

lint:
	$(PYTHON) -m ruff check handgen tests
