# `make run`: install, then the whole job; `make test`: install, then the tests.
PYTHON ?= python3
RUNS ?= runs

.PHONY: install run test lint generators samples detector csv evaluate tune bench crossval

install:
	@$(PYTHON) -c "import torch" 2>/dev/null || $(PYTHON) -m pip install torch==2.13.0
	$(PYTHON) -m pip install -q -r requirements.txt
	$(PYTHON) -m pip install -q --no-deps --no-build-isolation -e .

generators:
	$(PYTHON) -m handgen train-vae --checkpoint $(RUNS)/vae.pt
	$(PYTHON) -m handgen train-gan --checkpoint $(RUNS)/gan.pt

samples:
	$(PYTHON) -m handgen sample --checkpoint $(RUNS)/vae.pt --out VAE_hands --n 300
	$(PYTHON) -m handgen sample --checkpoint $(RUNS)/gan.pt --out GAN_hands --n 300

detector:
	$(PYTHON) -m handgen train-classifier --checkpoint $(RUNS)/classifier.pt --zoo-cache $(RUNS)/zoo.pt \
		--own-generators $(RUNS)/vae.pt $(RUNS)/gan.pt

csv:
	$(PYTHON) -m handgen classify --input test_hands --out "Classification Result.csv" --checkpoint $(RUNS)/classifier.pt

run: install
	$(MAKE) generators samples detector csv

test: install
	$(PYTHON) -m pytest

evaluate:
	$(PYTHON) -m handgen evaluate VAE_hands GAN_hands

tune:  # the three Optuna studies of Hypertuning.ipynb (about an hour side by side on 2 cores; they resume)
	$(PYTHON) -m handgen tune vae
	$(PYTHON) -m handgen tune gan
	$(PYTHON) -m handgen tune classifier

crossval:  # out-of-fold predictions on the students' fakes for Classifier.ipynb (two folds side by side: ~17 min a pair, 4 pairs)
	for scheme in "seen models" "unseen models"; do for pair in "0 1" "2 3"; do \
		for fold in $$pair; do $(PYTHON) scripts/cross_validate_detector.py --fold $$fold --scheme "$$scheme" --threads 1 & done; \
		wait; done; done

bench:
	$(PYTHON) -m handgen.bench --json results/bench.jsonl

lint:
	$(PYTHON) -m ruff check handgen tests scripts
