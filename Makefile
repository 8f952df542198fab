# `make run`: install, then the whole job; `make test`: install, then the tests.
PYTHON ?= python3
RUNS ?= runs
LOCK ?= requirements.lock
LOCK_ENV ?= /tmp/handgen-lock-env

FOLDS ?= 0 1 2 3

.PHONY: install lock run test lint generators samples detector csv evaluate tune bench crossval curves yardstick tables

install:  # the locked versions; a torch already there (Colab's CUDA build) is kept
	@$(PYTHON) -c "import torch" 2>/dev/null || $(PYTHON) -m pip install "$$(grep '^torch==' $(LOCK) | cut -d+ -f1)"
	grep -v '^torch==' $(LOCK) | $(PYTHON) -m pip install -q -r /dev/stdin
	$(PYTHON) -m pip install -q --no-deps -e .

lock:  # rewrite requirements.lock from a fresh virtual environment (torch's CPU build, every extra)
	rm -rf $(LOCK_ENV) && $(PYTHON) -m venv $(LOCK_ENV)
	$(LOCK_ENV)/bin/pip install -q "$$(grep '^torch==' $(LOCK) | cut -d+ -f1)" && $(LOCK_ENV)/bin/pip install -q ".[dev]"
	{ sed -n '1,2p' $(LOCK); $(LOCK_ENV)/bin/pip freeze --exclude-editable | grep -v '^handgen'; } > $(LOCK).new
	mv $(LOCK).new $(LOCK) && rm -rf $(LOCK_ENV)

# Two lanes side by side, each on half the cores: the VAE then the detector's generator zoo, and the GAN. Small
# networks use a second thread poorly, so on 2 cores this beats one job after another (docs/EXPERIMENTS.md, "make run,
# timed"). The GAN's progress is shown; the other lane's is appended to its log, whose last lines are printed when it
# ends. Interrupted, every job resumes from its checkpoint or cache.
HALF_THREADS ?= $(shell $(PYTHON) -c "import os; print(max(1, (os.cpu_count() or 2) // 2))")

generators:
	@mkdir -p $(RUNS)
	@echo "VAE, then the generator zoo: training in the background, log in $(RUNS)/vae.log"
	{ $(PYTHON) -m handgen train-vqvae --checkpoint $(RUNS)/vae.pt --threads $(HALF_THREADS) && \
	  $(PYTHON) -m handgen zoo --zoo-cache $(RUNS)/zoo.pt --threads $(HALF_THREADS); } >> $(RUNS)/vae.log 2>&1 & lane=$$!; \
	$(PYTHON) -m handgen train-gan --checkpoint $(RUNS)/gan.pt --threads $(HALF_THREADS) || { pkill -P $$lane; exit 1; }; \
	echo "GAN done; waiting for the VAE and the zoo ($(RUNS)/vae.log)"; wait $$lane; status=$$?; \
	tr '\r' '\n' < $(RUNS)/vae.log | grep -v '|' | tail -n 3; \
	[ $$status -eq 0 ] || { echo "VAE or zoo failed (exit $$status): $(RUNS)/vae.log"; exit $$status; }

samples:
	$(PYTHON) -m handgen sample --checkpoint $(RUNS)/vae.pt --out VAE_hands --n 300
	$(PYTHON) -m handgen sample --checkpoint $(RUNS)/gan.pt --out GAN_hands --n 300

detector:
	$(PYTHON) -m handgen train-detector --checkpoint $(RUNS)/detector.pt --zoo-cache $(RUNS)/zoo.pt \
		--own-generators $(RUNS)/vae.pt $(RUNS)/gan.pt

csv:
	$(PYTHON) -m handgen classify --input test_hands --out "Classification Result.csv" --checkpoint $(RUNS)/detector.pt

run: install
	$(MAKE) generators samples detector csv

test: install
	$(PYTHON) -m pytest

evaluate:  # the judge's fool rate, the two-sample test and pixel figures of the deliverables (about 10 min)
	$(PYTHON) -m handgen evaluate VAE_hands GAN_hands checkpoints/vae.pt checkpoints/gan.pt --json results/quality.jsonl

tune:  # the three Optuna studies of Hypertuning.ipynb (about an hour side by side on 2 cores; they resume)
	$(PYTHON) -m handgen tune vae
	$(PYTHON) -m handgen tune gan
	$(PYTHON) -m handgen tune detector

crossval:  # out-of-fold predictions on the students' fakes for Classifier.ipynb (one core a fold, two side by side: ~13 min a pair on AMX; FOLDS="0 1" runs fewer)
	for scheme in "seen models" "unseen models"; do for fold in $(FOLDS); do echo "$$fold --scheme \"$$scheme\""; done; done \
		| xargs -P 2 -L 1 $(PYTHON) -m handgen crossval --threads 1 --fold

curves:  # the realism curves behind GenAI Models.ipynb and the README's Q2 (hours on 2 cores; each run resumes)
	$(PYTHON) scripts/realism_curve.py gan --name final --epochs 250 --every 10 --two-sample-at 100 150 200 250
	$(PYTHON) scripts/realism_curve.py vae --name final --epochs 150 --every 15 --two-sample-at 150
	$(PYTHON) scripts/realism_curve.py gan --name "final, 1000 training hands" --train-size 1000 --epochs 312 --every 52 --two-sample-at 312
	$(PYTHON) scripts/realism_curve.py gan --name "final, 2000 training hands" --train-size 2000 --epochs 150 --every 25
	$(PYTHON) scripts/realism_curve.py gan --name "final, 4000 training hands" --train-size 4000 --epochs 75 --every 15 --two-sample-at 75

yardstick:  # can the yardstick fail? blurred, collapsed and early sets beside the real floor (results/yardstick.jsonl)
	$(PYTHON) scripts/yardstick_checks.py

tables:  # the Markdown tables of README.md and docs/EXPERIMENTS.md, from results/
	for table in glance yardstick gan vae data; do $(PYTHON) scripts/report_tables.py $$table; echo; done

bench:
	$(PYTHON) scripts/bench.py --json results/bench.jsonl

lint:
	$(PYTHON) -m ruff check handgen tests scripts
