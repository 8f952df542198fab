"""Hyperparameter search with Optuna: TPE sampler, successive halving, a storage that resumes and workers share.

Each family has a search space (`suggest_*`: trial -> config) and an objective that trains one run and reports a
score every few epochs. The generators maximise the judge's fool rate (`realism.fool_rate`) of 1000 samples stored
as JPEG, the figure the realism curves are read on; pixel KID, which sits at its floor for every generator here,
decides nothing. Successive halving (first rung `min_epochs`, factor 3) stops the weaker two thirds of the trials
at each rung and lets the survivors train to the full length, so a winner is chosen at the length it will train.
The detector maximises its accuracy averaged over validation *sources* (held-out real hands, the students' held-out
VAE and GAN fakes, the held-out zoo generators), so no single large source dominates.

A study lives in a storage: a SQLite file or a database URL. Several processes (`python -m handgen tune gan` run
twice, or Colab runtimes sharing a database) add trials to the same study until it holds `trials` of them.
"""

from __future__ import annotations

import dataclasses
import os
import socket
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import optuna
import torch

from .checkpoint import FAMILIES, CheckpointError, load_model
from .classifier import Detector, DetectorConfig, predict_proba
from .data import jpeg_round_trip, real_hands_split
from .detection import DataRecipe, DetectorSources, detector_sources, provided_examples
from .files import OutputError
from .gan import GANConfig
from .metrics import accuracy_by_group
from .realism import fool_rate, train_judge
from .runtime import CHECKPOINTS
from .sample import generate
from .train import TrainingDiverged, train_detector, train_generator, train_prior
from .vqvae import VQVAE, VQVAEConfig

Objective = Callable[[optuna.Trial], float]
SAMPLES_PER_SCORE = 1000  # fool rate of 1000 samples: a 95% interval of about +-0.03


@dataclass
class StudyBudget:
    """How much one study may spend: trials (over all its workers), the full length, how often a trial is scored
    and the first rung of successive halving."""

    trials: int
    epochs: int
    report_every: int = 10
    min_epochs: int = 10


# a first rung below 30 epochs ranks GANs on fool rates still at their floor (0.00-0.04): noise, not promise
BUDGETS = {"vae": StudyBudget(trials=6, epochs=40, report_every=10, min_epochs=10),
           "gan": StudyBudget(trials=14, epochs=100, report_every=10, min_epochs=30),
           "detector": StudyBudget(trials=6, epochs=6, report_every=1, min_epochs=1)}
QUICK_BUDGETS = {family: StudyBudget(trials=2, epochs=1, report_every=1, min_epochs=1) for family in FAMILIES}


def suggest_vae(trial: optuna.Trial) -> VQVAEConfig:
    """The VQ-VAE's prior, which decides how good its samples are once the autoencoder is trained: depth, width,
    dropout and learning rate (sampled at temperature 1; the temperature is chosen afterwards, against copying)."""
    return VQVAEConfig(
        prior_layers=trial.suggest_categorical("prior_layers", [2, 4, 6]),
        prior_width=trial.suggest_categorical("prior_width", [128, 192]),
        prior_dropout=trial.suggest_float("prior_dropout", 0.0, 0.3),
        prior_lr=trial.suggest_float("prior_lr", 3e-4, 3e-3, log=True),
    )


def suggest_gan(trial: optuna.Trial) -> GANConfig:
    """The two-player game of the final networks: learning rates, Adam's beta2, batch size, loss and gradient
    penalties, and augmentation of what D sees."""
    return GANConfig(
        lr_generator=trial.suggest_float("lr_generator", 2e-4, 2e-3, log=True),
        lr_discriminator=trial.suggest_float("lr_discriminator", 5e-5, 5e-4, log=True),
        beta2=trial.suggest_categorical("beta2", [0.9, 0.99]),
        batch_size=trial.suggest_categorical("batch_size", [64, 128]),
        loss=trial.suggest_categorical("loss", ["nonsaturating", "relativistic"]),
        gamma=trial.suggest_categorical("gamma", [0.0, 0.05]),
        augment=trial.suggest_categorical("augment", ["none", "translation"]),
    )


def suggest_detector(trial: optuna.Trial) -> tuple[DetectorConfig, DataRecipe]:
    """Capacity, regularisation, optimiser, augmentation, and how often the students' fakes are repeated
    (they are the only examples of the population the detector is for), for one network: mirror averaging and
    decision offsets come after, from cross-validation (`crossval`)."""
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


SUGGEST = {"vae": suggest_vae, "gan": suggest_gan}
SUGGEST_DEFAULTS = {"vae": VQVAEConfig, "gan": GANConfig}  # what the adopted recipe of each search space is


def search_space(family: str) -> dict[str, optuna.distributions.BaseDistribution]:
    """What a family's search space suggests, by name (read off one suggestion of a throw-away study)."""
    verbosity = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        trial = optuna.create_study().ask()
    finally:
        optuna.logging.set_verbosity(verbosity)
    SUGGEST[family](trial)
    return trial.distributions


def searched_parameters(family: str) -> list[str]:
    """The names a family's search space suggests."""
    return list(search_space(family))


def within(distribution: optuna.distributions.BaseDistribution, value) -> bool:
    """Whether `distribution` can suggest `value`."""
    if isinstance(distribution, optuna.distributions.CategoricalDistribution):
        return value in distribution.choices
    return distribution.low <= value <= distribution.high


def enqueue_adopted(study: optuna.Study, family: str) -> None:
    """Make the adopted recipe (the config defaults) the study's first trial, so the search confirms or beats it.
    A recipe the space cannot suggest is left out (the VQ-VAE's 3-layer prior, adopted after its study, for time):
    widening a categorical choice would make the stored study unable to add trials."""
    defaults, space = SUGGEST_DEFAULTS[family](), search_space(family)
    params = {name: getattr(defaults, name) for name in space}
    if all(within(space[name], value) for name, value in params.items()):
        study.enqueue_trial(params, user_attrs={"adopted": True}, skip_if_exists=True)


def report_or_prune(trial: optuna.Trial, value: float, step: int) -> None:
    """Hand an intermediate score to the pruner; stop the trial if it is behind at its rung."""
    trial.report(value, step)
    if trial.should_prune():
        raise optuna.TrialPruned()


def _scored_epoch(epoch: int, budget: StudyBudget) -> bool:
    return (epoch + 1) % budget.report_every == 0 or epoch + 1 == budget.epochs


def generator_objective(family: str, train_images: torch.Tensor, judge: Detector, budget: StudyBudget) -> Objective:
    """Train a model of `family` from a trial's config for `budget.epochs`; the judge's fool rate of its samples
    (stored as JPEG), higher is better, reported every `budget.report_every` epochs."""

    def objective(trial: optuna.Trial) -> float:
        config = dataclasses.replace(SUGGEST[family](trial), epochs=budget.epochs)
        return _train_and_score(trial, FAMILIES[family].model(config), config, train_images, judge, budget)

    return objective


def prior_objective(autoencoder: VQVAE, train_images: torch.Tensor, judge: Detector, budget: StudyBudget) -> Objective:
    """Train a trial's prior for `budget.epochs` on the codes of a trained VQ-VAE's autoencoder (left as it is);
    the judge's fool rate of its samples at temperature 1, higher is better."""
    weights = {key: value for key, value in autoencoder.state_dict().items() if not key.startswith("prior.")}
    searched = searched_parameters("vae")

    def objective(trial: optuna.Trial) -> float:
        suggested = suggest_vae(trial)
        config = dataclasses.replace(autoencoder.config, **{name: getattr(suggested, name) for name in searched},
                                     prior_epochs=budget.epochs, prior_temperature=1.0)
        model = VQVAE(config)
        model.load_state_dict(weights, strict=False)
        return _train_and_score(trial, model, config, train_images, judge, budget, prior_only=True)

    return objective


def _train_and_score(trial: optuna.Trial, model, config, train_images: torch.Tensor, judge: Detector,
                     budget: StudyBudget, prior_only: bool = False) -> float:
    """Train `model`, scoring its samples every `budget.report_every` epochs for the pruner; the last score."""
    seconds, scores = [0.0], {}
    trial.set_user_attr("worker", f"{socket.gethostname()}:{os.getpid()}")
    trial.set_user_attr("threads", torch.get_num_threads())

    def score(epoch: int, logs: dict[str, float]) -> None:
        seconds[0] += logs["seconds"]
        if not _scored_epoch(epoch, budget):
            return
        scores.update(fool_rate(judge, jpeg_round_trip(generate(model, SAMPLES_PER_SCORE, seed=1))))
        trial.set_user_attr("train_minutes", seconds[0] / 60)
        report_or_prune(trial, scores["fool_rate"], epoch + 1)

    if prior_only:
        train_prior(model, train_images, config, callbacks=[score], progress=False)
    else:
        train_generator(model, train_images, config, callbacks=[score], progress=False)
    return scores["fool_rate"]


def study_objective(family: str, budget: StudyBudget, *, quick: bool = False, zoo_cache: str | Path | None = None,
                    autoencoder: str | Path | None = None) -> Objective:
    """The objective of one family on the project's data (quick: 1024 training hands, a one-epoch zoo); the VAE's
    searches the prior of the VQ-VAE at `autoencoder` (default: the final one)."""
    if family == "detector":
        return detector_objective(detector_sources(zoo_cache, quick=quick), budget)
    train, holdout = real_hands_split()
    judge, _ = train_judge(train.images, holdout.images, provided_examples(warn=False), progress=False)
    images = train.images[:1024] if quick else train.images
    if family == "vae":
        model, _ = load_model(autoencoder or CHECKPOINTS / "vae.pt")
        if not isinstance(model, VQVAE):
            raise CheckpointError(f"{autoencoder or CHECKPOINTS / 'vae.pt'} holds a {type(model).__name__}; the VAE "
                                  "study searches the prior of a trained VQ-VAE")
        return prior_objective(model, images, judge, budget)
    return generator_objective(family, images, judge, budget)


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


SQLITE_HEADER = b"SQLite format 3\x00"


def storage_url(storage: str | Path) -> str:
    """A database URL as given, or a SQLite file path as its URL; a path that cannot hold a study is one line."""
    if "://" in str(storage):
        return str(storage)
    path = Path(storage)
    if path.is_dir():
        raise OutputError(f"study storage {path} is a folder; name a file, e.g. {path / 'tuning.db'}")
    if path.is_file() and path.stat().st_size:
        with path.open("rb") as handle:
            if handle.read(len(SQLITE_HEADER)) != SQLITE_HEADER:
                raise OutputError(f"study storage {path} is not a SQLite database; nothing was changed")
    folder = path.parent if path.parent != Path("") else Path(".")
    if not folder.is_dir() or not os.access(folder, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise OutputError(f"cannot write the study storage {path}: its folder is missing or read-only")
    return f"sqlite:///{path}"


def open_study(family: str, storage: str | Path, seed: int = 0, min_epochs: int = 1) -> optuna.Study:
    """Create or reopen the study of `family`, successive halving's first rung at `min_epochs`. Trials of a process
    that died are failed after 2 minutes without a heartbeat and run again once, so an interrupted study resumes
    where it stopped. `seed` seeds the sampler: give each worker its own."""
    with warnings.catch_warnings():  # heartbeats and constant liar are marked experimental; basic use only
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        rdb = _storage(storage)
        sampler = optuna.samplers.TPESampler(seed=seed, n_startup_trials=6, constant_liar=True)
    pruner = optuna.pruners.SuccessiveHalvingPruner(min_resource=min_epochs, reduction_factor=3)
    return optuna.create_study(study_name=family, storage=rdb, load_if_exists=True, direction="maximize",
                               sampler=sampler, pruner=pruner)


def _storage(storage: str | Path, attempts: int = 5) -> optuna.storages.RDBStorage:
    """The study storage; two workers that create one database at the same moment race on its schema, so the
    loser tries again. SQLite waits for a lock held by another worker instead of failing at once."""
    from sqlalchemy.exc import IntegrityError, OperationalError

    engine = {"connect_args": {"timeout": 60}} if "://" not in str(storage) else {}
    for attempt in range(attempts):
        try:
            return optuna.storages.RDBStorage(
                storage_url(storage), heartbeat_interval=30, grace_period=120, engine_kwargs=engine,
                heartbeat_stale_trial_callback=optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=1))
        except (IntegrityError, OperationalError) as error:
            if attempt + 1 == attempts:
                raise OutputError(f"study storage {storage} cannot be opened: {error.orig}") from None
            time.sleep(0.5 * (attempt + 1))


COUNTED = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED, optuna.trial.TrialState.FAIL)


def finished_trials(study: optuna.Study) -> list[optuna.trial.FrozenTrial]:
    return study.get_trials(deepcopy=False, states=COUNTED)


def run_study(family: str, make_objective: Callable[[], Objective], budget: StudyBudget, storage: str | Path,
              seed: int = 0) -> optuna.Study:
    """Run trials until the study holds `budget.trials` (finished or running, by any worker); the objective is made
    (data decoded, judge loaded) only if trials are missing, so a complete study opens in a second."""
    study = open_study(family, storage, seed, budget.min_epochs)
    if family in SUGGEST and not study.trials:
        enqueue_adopted(study, family)
    states = (*COUNTED, optuna.trial.TrialState.RUNNING)
    if len(study.get_trials(deepcopy=False, states=states)) < budget.trials:
        study.optimize(make_objective(), catch=(TrainingDiverged,), gc_after_trial=True,
                       callbacks=[optuna.study.MaxTrialsCallback(budget.trials, states=states)])
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
        minutes = trial.user_attrs.get("train_minutes", trial.user_attrs.get("minutes", float("nan")))
        row["minutes"] = round(minutes, 1)
        rows.append(row)
    return rows


def state_counts(study: optuna.Study) -> dict[str, int]:
    """How many trials ended in each state (COMPLETE, PRUNED, FAIL, ...)."""
    counts: dict[str, int] = {}
    for trial in study.trials:
        counts[trial.state.name] = counts.get(trial.state.name, 0) + 1
    return counts
