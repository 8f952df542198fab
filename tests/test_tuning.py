"""Optuna studies: resuming from SQLite, pruning, and the real objectives on tiny synthetic data."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import optuna
import pytest
import torch

from handgen.classifier import Detector, DetectorConfig
from handgen.data import GAN_LABEL, REAL, VAE_LABEL, LabelledSet
from handgen.detection import DataRecipe, DetectorSources
from handgen.files import OutputError
from handgen.gan import GANConfig
from handgen.train import train_vqvae
from handgen.tuning import (
    SUGGEST_DEFAULTS,
    StudyBudget,
    detector_objective,
    enqueue_adopted,
    finished_trials,
    generator_objective,
    open_study,
    prior_objective,
    report_or_prune,
    run_study,
    state_counts,
    trial_table,
)
from handgen.vqvae import VQVAE, VQVAEConfig
from tests.conftest import synthetic_hands

optuna.logging.set_verbosity(optuna.logging.WARNING)


def test_an_interrupted_study_resumes_with_only_the_missing_trials(tmp_path):
    storage, calls = tmp_path / "studies.db", []

    def objective(trial: optuna.Trial) -> float:
        calls.append(trial.number)
        return (trial.suggest_float("x", -5, 5) - 2.0) ** 2

    run_study("detector", lambda: objective, StudyBudget(trials=3, epochs=1), storage)
    assert len(calls) == 3
    never = lambda: pytest.fail("a complete study made its objective")  # noqa: E731
    study = run_study("detector", never, StudyBudget(trials=3, epochs=1), storage)   # complete: nothing to run
    assert len(calls) == 3 and len(finished_trials(study)) == 3
    study = run_study("detector", lambda: objective, StudyBudget(trials=5, epochs=1), storage)
    assert calls == [0, 1, 2, 3, 4] and len(study.trials) == 5
    assert trial_table(study, top=2)[0]["value"] == pytest.approx(max(t.value for t in study.trials), abs=1e-4)
    assert state_counts(study) == {"COMPLETE": 5}


def test_successive_halving_stops_a_trial_behind_its_rung_and_lets_the_leader_finish(tmp_path):
    study = open_study("gan", tmp_path / "studies.db")

    def objective(trial: optuna.Trial) -> float:
        level = trial.suggest_float("level", 0.0, 100.0)
        for step in range(1, 4):
            report_or_prune(trial, level, step)
        return level

    for level in (10.0, 50.0, 1.0):
        study.enqueue_trial({"level": level})
    study.optimize(objective, n_trials=3)
    states = [trial.state for trial in study.trials]
    assert states == [optuna.trial.TrialState.COMPLETE] * 2 + [optuna.trial.TrialState.PRUNED]


def test_two_workers_share_one_study(tmp_path):
    """Two processes on one storage add trials to the same study, and stop once it holds all of them."""
    code = ("import os, sys, time, optuna; from handgen.tuning import StudyBudget, run_study\n"
            "optuna.logging.set_verbosity(optuna.logging.WARNING)\n"
            "def objective(trial):\n"
            "    trial.set_user_attr('pid', os.getpid()); time.sleep(0.5); return trial.suggest_float('x', 0, 1)\n"
            "run_study('detector', lambda: objective, StudyBudget(trials=12, epochs=1), sys.argv[1],"
            " seed=int(sys.argv[2]))\n")
    workers = [subprocess.Popen([sys.executable, "-c", code, str(tmp_path / "shared.db"), str(worker)])
               for worker in (0, 1)]
    assert [worker.wait(timeout=120) for worker in workers] == [0, 0]
    study = open_study("detector", tmp_path / "shared.db")
    assert len(study.trials) == 12 and state_counts(study) == {"COMPLETE": 12}
    assert len({t.params["x"] for t in study.trials}) == 12  # no trial repeated
    assert len({t.user_attrs["pid"] for t in study.trials}) == 2  # both workers took part


@pytest.mark.parametrize("content, reason", [("a folder", "is a folder"), (b"hello", "not a SQLite database")])
def test_a_storage_that_cannot_hold_a_study_is_one_line(tmp_path, content, reason):
    target = tmp_path / "studies.db"
    target.mkdir() if content == "a folder" else target.write_bytes(content)
    with pytest.raises(OutputError, match=reason):
        open_study("gan", target)
    assert content == "a folder" or target.read_bytes() == content


def test_the_gan_objective_trains_and_scores_a_trial_on_the_judges_fool_rate(tmp_path):
    train = torch.from_numpy(synthetic_hands(256, seed=0)[:, None])
    judge = Detector(DetectorConfig(width=4, decision_offsets=(0.0, 0.0, 0.0)))
    objective = generator_objective("gan", train, judge, StudyBudget(trials=1, epochs=2, report_every=1))
    study = open_study("gan", tmp_path / "studies.db")
    study.enqueue_trial({"lr_generator": 7e-4, "lr_discriminator": 1e-4, "beta2": 0.99, "batch_size": 64,
                         "loss": "relativistic", "gamma": 0.05, "augment": "translation"})
    study.optimize(objective, n_trials=1)
    trial = study.trials[0]
    assert trial.state == optuna.trial.TrialState.COMPLETE
    assert sorted(trial.intermediate_values) == [1, 2]       # scored after each epoch, for the pruner
    assert 0 <= trial.value <= 1 and trial.value == trial.intermediate_values[2]
    assert trial.user_attrs["train_minutes"] > 0 and trial.user_attrs["threads"] >= 1


def test_the_vae_objective_trains_only_a_prior_on_a_fixed_autoencoder(tmp_path):
    train = torch.from_numpy(synthetic_hands(128, seed=0)[:, None])
    config = VQVAEConfig(width=8, codebook_size=16, code_dim=8, epochs=1, prior_epochs=1, prior_width=16,
                         prior_heads=2, batch_size=32)
    autoencoder = VQVAE(config)
    train_vqvae(autoencoder, train, config, progress=False)
    frozen = {k: v.clone() for k, v in autoencoder.state_dict().items() if not k.startswith("prior.")}
    judge = Detector(DetectorConfig(width=4, decision_offsets=(0.0, 0.0, 0.0)))
    objective = prior_objective(autoencoder, train, judge, StudyBudget(trials=1, epochs=2, report_every=1))
    study = open_study("vae", tmp_path / "studies.db")
    study.enqueue_trial({"prior_layers": 2, "prior_width": 128, "prior_dropout": 0.1, "prior_lr": 1e-3})
    study.optimize(objective, n_trials=1)
    trial = study.trials[0]
    assert trial.state == optuna.trial.TrialState.COMPLETE and sorted(trial.intermediate_values) == [1, 2]
    assert all(torch.equal(frozen[k], v) for k, v in autoencoder.state_dict().items() if k in frozen)


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


def test_the_adopted_recipe_is_enqueued_only_where_its_search_space_can_suggest_it(tmp_path, monkeypatch):
    gan = open_study("gan", tmp_path / "gan.db")
    enqueue_adopted(gan, "gan")
    assert [t.user_attrs.get("adopted") for t in gan.trials] == [True]
    assert gan.trials[0].system_attrs["fixed_params"]["loss"] == GANConfig().loss
    monkeypatch.setitem(SUGGEST_DEFAULTS, "vae", lambda: VQVAEConfig(prior_layers=3))  # not among (2, 4, 6)
    vae = open_study("vae", tmp_path / "vae.db")
    enqueue_adopted(vae, "vae")
    assert vae.trials == []
    monkeypatch.setitem(SUGGEST_DEFAULTS, "vae", lambda: VQVAEConfig(prior_layers=4))
    enqueue_adopted(vae, "vae")
    assert vae.trials[0].system_attrs["fixed_params"]["prior_layers"] == 4
