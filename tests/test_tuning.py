"""Optuna studies: resuming from SQLite, pruning, and the real objectives on tiny synthetic data."""

from __future__ import annotations

import math

import numpy as np
import optuna
import pytest
import torch

from handgen.data import GAN_LABEL, REAL, VAE_LABEL, LabelledSet
from handgen.detection import DataRecipe, DetectorSources
from handgen.realism import PixelStatistics
from handgen.tuning import (
    StudyBudget,
    detector_objective,
    finished_trials,
    generator_objective,
    open_study,
    report_or_prune,
    run_study,
    trial_table,
)
from tests.conftest import synthetic_hands

optuna.logging.set_verbosity(optuna.logging.WARNING)


def test_an_interrupted_study_resumes_with_only_the_missing_trials(tmp_path):
    storage, calls = tmp_path / "studies.db", []

    def objective(trial: optuna.Trial) -> float:
        calls.append(trial.number)
        return (trial.suggest_float("x", -5, 5) - 2.0) ** 2

    run_study("vae", objective, StudyBudget(trials=3, epochs=1), storage)
    assert len(calls) == 3
    study = run_study("vae", objective, StudyBudget(trials=3, epochs=1), storage)   # complete: nothing to run
    assert len(calls) == 3 and len(finished_trials(study)) == 3
    study = run_study("vae", objective, StudyBudget(trials=5, epochs=1), storage)
    assert calls == [0, 1, 2, 3, 4] and len(study.trials) == 5
    assert trial_table(study, top=2)[0]["value"] == pytest.approx(min(t.value for t in study.trials), abs=1e-4)


def test_a_trial_behind_the_median_is_pruned(tmp_path):
    study = open_study("gan", tmp_path / "studies.db")

    def objective(trial: optuna.Trial) -> float:
        level = trial.suggest_float("level", 0.0, 100.0)
        for step in range(1, 4):
            report_or_prune(trial, level, step)
        return level

    for level in (1.0, 2.0, 3.0, 4.0, 50.0):
        study.enqueue_trial({"level": level})
    study.optimize(objective, n_trials=5)
    states = [trial.state for trial in study.trials]
    assert states[:4] == [optuna.trial.TrialState.COMPLETE] * 4
    assert states[4] == optuna.trial.TrialState.PRUNED


@pytest.mark.parametrize("family, params", [
    ("vae", {"latent_dim": 16, "width": 16, "kl_weight": 1.0, "lr": 1e-3, "prior_components": 1}),
    ("gan", {"lr_generator": 2e-4, "lr_discriminator": 2e-4, "beta1": 0.0, "beta2": 0.9, "width": 24,
             "latent_dim": 64, "loss": "hinge", "ema_decay": 0.99}),
])
def test_generator_objective_trains_and_scores_a_trial(tmp_path, family, params):
    train, holdout = synthetic_hands(256, seed=0)[:, None], synthetic_hands(100, seed=1)[:, None]
    objective = generator_objective(family, torch.from_numpy(train), PixelStatistics(train, holdout),
                                    StudyBudget(trials=1, epochs=2, report_every=1))
    study = open_study(family, tmp_path / "studies.db")
    study.enqueue_trial(params)
    study.optimize(objective, n_trials=1)
    trial = study.trials[0]
    assert trial.state == optuna.trial.TrialState.COMPLETE
    assert sorted(trial.intermediate_values) == [1, 2]       # scored after each epoch, for the pruner
    assert math.isfinite(trial.value) and trial.user_attrs["fid_pix"] > 0


def test_detector_objective_scores_every_validation_source(tmp_path):
    real = torch.from_numpy(synthetic_hands(300, seed=0)[:, None])
    blurry = (real[:200].float() * 0.5).to(torch.uint8)                       # "VAE": dim
    noisy = (real[:200].float() + torch.randint(0, 60, real[:200].shape)).clamp(0, 255).to(torch.uint8)  # "GAN"
    provided = LabelledSet.concat([LabelledSet.from_images(blurry[:80], VAE_LABEL, "provided VAE_hands"),
                                   LabelledSet.from_images(noisy[:80], GAN_LABEL, "provided GAN_hands")])
    generated = LabelledSet.concat([LabelledSet.from_images(blurry[80:], VAE_LABEL, "zoo vae blurry epoch 3"),
                                    LabelledSet.from_images(noisy[80:], GAN_LABEL, "zoo gan hinge sn epoch 1")])
    sources = DetectorSources(real[:250], real[250:], provided, generated)
    study = open_study("detector", tmp_path / "studies.db")
    study.enqueue_trial({"width": 16, "dropout": 0.1, "lr": 2e-3, "weight_decay": 1e-4, "max_shift": 1,
                         "label_smoothing": 0.0, "provided_repeats": 2})
    study.optimize(detector_objective(sources, StudyBudget(trials=1, epochs=2)), n_trials=1)
    trial = study.trials[0]
    per_source = trial.user_attrs["per_source"]
    assert set(per_source) == {"real_hands held out", "provided VAE_hands", "provided GAN_hands", "zoo vae blurry"}
    assert trial.value == pytest.approx(np.mean(list(per_source.values())))
    assert {REAL, VAE_LABEL, GAN_LABEL} == set(sources.assemble(DataRecipe()).train.labels.tolist())
