"""Hyperparameter search with Optuna: TPE sampler, median pruner, SQLite storage that resumes.

Each family has a search space (`suggest_*`: trial -> config) and an objective that trains one short
run and reports an intermediate score along the way, so the pruner stops weak trials early. The
generators minimise KID (x1000, pixel-PCA space) of their samples against held-out real hands; the
detector maximises its accuracy averaged over validation *sources* (held-out real hands, the students'
held-out VAE and GAN fakes, the held-out zoo generators), so no single large source dominates.

Short trials rank configurations by early progress, which favours fast starters: the winner is
retrained at full length and compared with the defaults before it replaces them.
"""

from __future__ import annotations

import dataclasses
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import optuna
import torch

from .checkpoint import FAMILIES
from .classifier import Detector, DetectorConfig, predict_proba
from .data import real_hands_split
from .detection import DataRecipe, DetectorSources, detector_sources
from .gan import GANConfig
from .metrics import accuracy_by_group
from .realism import PixelStatistics
from .sample import generate
from .train import TrainingDiverged, train_detector, train_generator
from .vae import VAE, VAEConfig

Objective = Callable[[optuna.Trial], float]
DIRECTIONS = {"vae": "minimize", "gan": "minimize", "detector": "maximize"}


@dataclass
class StudyBudget:
    """How much one study may spend: trials, epochs per trial, and how often a trial is scored."""

    trials: int
    epochs: int
    report_every: int = 1


# What the committed studies ran, side by side on 2 cores in about an hour: small budgets, read as such
BUDGETS = {"vae": StudyBudget(trials=10, epochs=10, report_every=2),
           "gan": StudyBudget(trials=10, epochs=8, report_every=2),
           "detector": StudyBudget(trials=6, epochs=6, report_every=1)}
QUICK_BUDGETS = {family: StudyBudget(trials=2, epochs=1) for family in FAMILIES}


def suggest_vae(trial: optuna.Trial) -> VAEConfig:
    """Capacity (latent size, width), the KL weight (blur against prior fit), the learning rate and the
    sampling mixture's size. N(0, I) sampling (0 components) is left out: it lost by far (`docs/EXPERIMENTS.md`)."""
    return VAEConfig(
        latent_dim=trial.suggest_categorical("latent_dim", [16, 32, 64, 128]),
        width=trial.suggest_categorical("width", [16, 32, 48]),
        kl_weight=trial.suggest_float("kl_weight", 0.25, 4.0, log=True),
        lr=trial.suggest_float("lr", 2e-4, 5e-3, log=True),
        prior_components=trial.suggest_categorical("prior_components", [1, 5, 10, 20]),
    )


def suggest_gan(trial: optuna.Trial) -> GANConfig:
    """The optimisation of the two-player game (learning rates, Adam betas), capacity, loss and EMA.
    Spectral norm stays on and augmentation off: the committed ablation settled both (`docs/EXPERIMENTS.md`)."""
    return GANConfig(
        lr_generator=trial.suggest_float("lr_generator", 5e-5, 1e-3, log=True),
        lr_discriminator=trial.suggest_float("lr_discriminator", 5e-5, 1e-3, log=True),
        beta1=trial.suggest_categorical("beta1", [0.0, 0.5]),
        beta2=trial.suggest_categorical("beta2", [0.9, 0.99, 0.999]),
        width=trial.suggest_categorical("width", [24, 32, 48]),
        latent_dim=trial.suggest_categorical("latent_dim", [64, 128]),
        loss=trial.suggest_categorical("loss", ["hinge", "nonsaturating"]),
        ema_decay=trial.suggest_categorical("ema_decay", [0.99, 0.999]),
    )


def suggest_detector(trial: optuna.Trial) -> tuple[DetectorConfig, DataRecipe]:
    """Capacity, regularisation, optimiser, augmentation, and how often the students' fakes are repeated
    (they are the only examples of the population the detector is for), for one network: the ensemble size, mirror
    averaging and decision offsets come after, from cross-validation (`crossval`)."""
    config = DetectorConfig(
        mirror=False, decision_offsets=(0.0, 0.0, 0.0),
        width=trial.suggest_categorical("width", [16, 32, 48]),
        dropout=trial.suggest_float("dropout", 0.0, 0.5),
        lr=trial.suggest_float("lr", 5e-4, 5e-3, log=True),
        weight_decay=trial.suggest_float("weight_decay", 1e-5, 1e-2, log=True),
        max_shift=trial.suggest_int("max_shift", 0, 3),
        label_smoothing=trial.suggest_float("label_smoothing", 0.0, 0.1),
    )
    return config, DataRecipe(provided_repeats=trial.suggest_categorical("provided_repeats", [1, 2, 4, 8]))


def report_or_prune(trial: optuna.Trial, value: float, step: int) -> None:
    """Hand an intermediate score to the pruner; stop the trial if it is behind the median."""
    trial.report(value, step)
    if trial.should_prune():
        raise optuna.TrialPruned()


def _scored_epoch(epoch: int, budget: StudyBudget) -> bool:
    return (epoch + 1) % budget.report_every == 0 or epoch + 1 == budget.epochs


def generator_objective(family: str, train_images: torch.Tensor, judge: PixelStatistics,
                        budget: StudyBudget) -> Objective:
    """Train a VAE or GAN from a trial's config for `budget.epochs`; KID x1000 of its samples, lower is better."""
    model_class = FAMILIES[family].model
    suggest = {"vae": suggest_vae, "gan": suggest_gan}[family]
    prior_images = train_images[torch.randperm(len(train_images), generator=torch.Generator().manual_seed(0))[:2000]]

    def objective(trial: optuna.Trial) -> float:
        config = dataclasses.replace(suggest(trial), epochs=budget.epochs)
        model, started, scores = model_class(config), time.perf_counter(), {}

        def score(epoch: int, _logs: dict[str, float]) -> None:
            if not _scored_epoch(epoch, budget):
                return
            if isinstance(model, VAE) and epoch + 1 < config.epochs:  # the last epoch fits it on all images
                model.fit_prior(prior_images.to(next(model.parameters()).device))
            scores.update(judge.distances(generate(model, judge.size, seed=1).numpy()))
            report_or_prune(trial, scores["kid_pix_x1000"], epoch + 1)

        train_generator(model, train_images, config, callbacks=[score], progress=False)
        trial.set_user_attr("fid_pix", scores["fid_pix"])
        trial.set_user_attr("minutes", (time.perf_counter() - started) / 60)
        return scores["kid_pix_x1000"]

    return objective


def study_objective(family: str, budget: StudyBudget, *, quick: bool = False,
                    zoo_cache: str | Path | None = "runs/zoo.pt") -> Objective:
    """The objective of one family on the project's data (quick: 1024 training hands, a one-epoch zoo)."""
    if family == "detector":
        return detector_objective(detector_sources(zoo_cache, quick=quick), budget)
    train, holdout = real_hands_split()
    images = train.images[:1024] if quick else train.images
    pixels = PixelStatistics(images.numpy(), holdout.images.numpy(), with_floor=False)
    return generator_objective(family, images, pixels, budget)


def source_balanced_accuracy(model: Detector, validation) -> tuple[float, dict[str, float]]:
    """Accuracy averaged over validation sources (zoo snapshots of one generator count as one source)."""
    predictions = predict_proba(model, validation.images).argmax(1).numpy()
    sources = [source.split(" epoch ")[0] for source in validation.sources]
    per_source = accuracy_by_group(validation.labels.numpy(), predictions, sources)
    return float(np.mean(list(per_source.values()))), per_source


def detector_objective(sources: DetectorSources, budget: StudyBudget) -> Objective:
    """Train the detector from a trial's config; its source-balanced validation accuracy, higher is better."""

    def objective(trial: optuna.Trial) -> float:
        config, recipe = suggest_detector(trial)
        config = dataclasses.replace(config, epochs=budget.epochs)
        recipe = dataclasses.replace(recipe, validation_fold=0)
        data, model, started, result = sources.assemble(recipe), Detector(config), time.perf_counter(), {}

        def score(epoch: int, _logs: dict[str, float]) -> None:
            if _scored_epoch(epoch, budget):
                result["balanced"], result["per_source"] = source_balanced_accuracy(model, data.validation)
                report_or_prune(trial, result["balanced"], epoch + 1)

        train_detector(model, data.train.images, data.train.labels, config, recipe=recipe, callbacks=[score],
                       progress=False)
        trial.set_user_attr("per_source", result["per_source"])
        trial.set_user_attr("minutes", (time.perf_counter() - started) / 60)
        return result["balanced"]

    return objective


def storage_url(path: str | Path) -> str:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{Path(path)}"


def open_study(family: str, storage: str | Path, seed: int = 0) -> optuna.Study:
    """Create or reopen a study. Trials of a process that died are failed after 2 minutes without a
    heartbeat and run again once, so an interrupted study resumes where it stopped."""
    with warnings.catch_warnings():  # heartbeats are marked experimental; we rely only on their basic use
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        rdb = optuna.storages.RDBStorage(
            storage_url(storage), heartbeat_interval=30, grace_period=120,
            heartbeat_stale_trial_callback=optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=1))
    return optuna.create_study(
        study_name=family, storage=rdb, load_if_exists=True, direction=DIRECTIONS[family],
        sampler=optuna.samplers.TPESampler(seed=seed, n_startup_trials=5),
        pruner=optuna.pruners.MedianPruner(n_startup_trials=4, n_warmup_steps=1))


def finished_trials(study: optuna.Study) -> list[optuna.trial.FrozenTrial]:
    finished = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED, optuna.trial.TrialState.FAIL)
    return study.get_trials(deepcopy=False, states=finished)


def run_study(family: str, objective: Objective, budget: StudyBudget, storage: str | Path,
              seed: int = 0) -> optuna.Study:
    """Run the trials still missing from `budget.trials` (none if the stored study is complete)."""
    study = open_study(family, storage, seed)
    missing = budget.trials - len(finished_trials(study))
    if missing > 0:
        study.optimize(objective, n_trials=missing, catch=(TrainingDiverged,), gc_after_trial=True,
                       show_progress_bar=True)
    return study


def best_config(study: optuna.Study, family: str, epochs: int | None = None):
    """The best trial's parameters, rounded to two significant digits (finer than the search resolves), applied
    to the family's default config (epochs: the default's, full length)."""
    best, continuous = study.best_trial, optuna.distributions.FloatDistribution
    params = {name: float(f"{value:.2g}") if isinstance(best.distributions[name], continuous) else value
              for name, value in best.params.items()}  # categorical choices are kept exactly
    defaults = FAMILIES[family].config()
    return dataclasses.replace(defaults, **params, epochs=epochs or defaults.epochs)


def trial_table(study: optuna.Study, top: int = 5) -> list[dict]:
    """The best completed trials, best first, as rows for `format_table`."""
    complete = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    complete.sort(key=lambda t: t.value, reverse=study.direction == optuna.study.StudyDirection.MAXIMIZE)
    rows = []
    for trial in complete[:top]:
        row = {"trial": trial.number, "value": round(trial.value, 4)}
        row.update({name: round(v, 5) if isinstance(v, float) else v for name, v in trial.params.items()})
        row["minutes"] = round(trial.user_attrs.get("minutes", float("nan")), 1)
        rows.append(row)
    return rows
