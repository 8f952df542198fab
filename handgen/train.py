"""Training loops: one shared skeleton (`fit`) and the per-family optimisation steps.

`fit` owns everything the families have in common: device, seed, epochs, shuffling, progress bar,
loss history, per-epoch callbacks, checkpoints that resume exactly (weights, optimizer state,
RNG state, history) and the stop on a diverging loss. A family contributes only its `step`.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F
from tqdm.auto import tqdm

from .checkpoint import (
    CheckpointError,
    check_same_run,
    data_digest,
    load_weights,
    read_checkpoint,
    restore_rng_states,
    save_checkpoint,
)
from .classifier import Detector, DetectorConfig, predict_proba
from .data import LABELS, LabelledSet, jpeg_round_trip, random_translate, to_float, to_uint8
from .gan import (
    GAN,
    PENALTY_EVERY,
    GANConfig,
    augment,
    discriminator_loss,
    generator_loss,
    gradient_penalty,
    recalibrate_batchnorm,
    update_ema,
)
from .metrics import confusion_matrix, per_class_recall
from .runtime import mixed_precision, pick_device, seed_everything
from .vae import VAE, VAEConfig, vae_loss
from .vqvae import VQVAE, VQVAEConfig, vqvae_loss

History = list[dict[str, float]]
Callback = Callable[[int, dict[str, float]], None]  # (epoch, that epoch's logs)
Step = Callable[[torch.Tensor, torch.Tensor | None, int], dict[str, torch.Tensor]]


class TrainingDiverged(RuntimeError):
    """A loss became NaN or infinite; the last good checkpoint is kept."""


@dataclass
class Task:
    """What one model family hands to `fit`."""

    model: nn.Module
    config: Any                                   # the family's config dataclass
    optimizers: dict[str, torch.optim.Optimizer]
    step: Step                                    # (images in [-1, 1], labels, step number) -> losses
    # after each epoch: (training images, uint8 on device; is this the last epoch?) -> extra logs
    end_epoch: Callable[[torch.Tensor, bool], dict[str, float]] = field(default=lambda images, last: {})
    mixed_precision: bool = False                 # bfloat16 autocast in the step where the device runs it fast
    recipe: Any = None                            # what the data was made of (a dataclass), checked on resume
    epochs: int | None = None                     # how many in all, if not `config.epochs` (a model in two stages)
    begin_epoch: Callable[[int], None] = field(default=lambda epoch: None)  # before each epoch: its number

    @property
    def total_epochs(self) -> int:
        return self.epochs or self.config.epochs


def fit(task: Task, images: torch.Tensor, labels: torch.Tensor | None = None, *,
        checkpoint: str | os.PathLike | None = None, callbacks: Sequence[Callback] = (),
        progress: bool = True) -> History:
    """Train `task` on uint8 images (N, 1, 32, 32) for `task.total_epochs`, resuming from `checkpoint`."""
    config, device = task.config, next(task.model.parameters()).device
    if len(images) < config.batch_size:
        raise ValueError(f"need at least batch_size={config.batch_size} images, got {len(images)}")
    data = None if checkpoint is None else data_digest(images, *([labels] if labels is not None else []))
    history, start_epoch = _start_or_resume(task, checkpoint, data)
    images = images.to(device)
    labels = labels.to(device) if labels is not None else None
    for epoch in range(start_epoch, task.total_epochs):
        started = time.perf_counter()
        task.begin_epoch(epoch)
        logs = train_one_epoch(task, images, labels, epoch, progress)
        _check_finite(logs, epoch, checkpoint)
        logs.update(task.end_epoch(images, epoch + 1 == task.total_epochs))
        logs["seconds"] = time.perf_counter() - started  # kept in the history, so resumed runs know their cost
        history.append(logs)
        if checkpoint is not None:
            save_checkpoint(checkpoint, task.model, config, epoch=epoch + 1, history=history,
                            optimizers=task.optimizers, recipe=task.recipe, data=data)
        for callback in callbacks:
            callback(epoch, logs)
        if progress:
            tqdm.write(f"epoch {epoch + 1}/{task.total_epochs}: "
                       + ", ".join(f"{k} {v:.4g}" for k, v in logs.items()))
    task.model.eval()
    return history


def train_one_epoch(task: Task, images: torch.Tensor, labels: torch.Tensor | None, epoch: int,
                     progress: bool) -> dict[str, float]:
    """One pass in a seeded order (seed and epoch fix it, so a resumed run sees the same batches); mean losses."""
    config, device = task.config, images.device
    task.model.train()
    steps_per_epoch = len(images) // config.batch_size  # drop the ragged last batch: stable BN
    order = torch.randperm(len(images), generator=torch.Generator().manual_seed(config.seed * 100_003 + epoch))
    sums: dict[str, torch.Tensor] = {}
    bar = tqdm(range(steps_per_epoch), desc=f"epoch {epoch + 1}/{task.total_epochs}", disable=not progress,
               leave=False)
    for index in bar:
        batch = order[index * config.batch_size:(index + 1) * config.batch_size].to(device)
        with mixed_precision(device, task.mixed_precision):
            losses = task.step(to_float(images[batch]), labels[batch] if labels is not None else None,
                               epoch * steps_per_epoch + index)
        for name, value in losses.items():
            sums[name] = sums.get(name, 0.0) + value.detach()
    return {name: float(total) / steps_per_epoch for name, total in sums.items()}


def _start_or_resume(task: Task, checkpoint: str | os.PathLike | None, data: str | None) -> tuple[History, int]:
    """Seed a fresh run, or restore weights, optimizers, RNG and history from `checkpoint`."""
    if checkpoint is None or not Path(checkpoint).exists():
        seed_everything(task.config.seed)
        return [], 0
    state = read_checkpoint(checkpoint)
    check_same_run(Path(checkpoint), state, task.model, task.config, task.recipe, data)
    load_weights(checkpoint, task.model, state["model"])
    finished = state["epoch"] >= task.total_epochs
    if not state["optimizers"] and not finished:
        raise CheckpointError(f"checkpoint {checkpoint} is a final export without optimizer state and cannot be "
                              f"trained beyond its {state['epoch']} epochs; choose another checkpoint path")
    for name, optimizer in task.optimizers.items():
        if state["optimizers"]:
            optimizer.load_state_dict(state["optimizers"][name])
    restore_rng_states(state)
    return list(state["history"]), state["epoch"]


def _check_finite(logs: dict[str, float], epoch: int, checkpoint: str | os.PathLike | None) -> None:
    bad = [name for name, value in logs.items() if not math.isfinite(value)]
    if bad:
        saved = checkpoint is not None and Path(checkpoint).is_file()
        kept = f"the last good checkpoint {checkpoint} is kept" if saved else "no checkpoint had been written yet"
        raise TrainingDiverged(f"training diverged in epoch {epoch + 1}: {', '.join(bad)} is not finite; "
                               f"{kept}. Lower the learning rate or change the seed.")


def vae_task(model: VAE, config: VAEConfig, device: torch.device | str | None = None,
             validation: torch.Tensor | None = None) -> Task:
    """The VAE's Adam optimizer and its step: maximise the ELBO of a batch. With `validation` (held-out uint8
    hands), each epoch also logs their negative ELBO (`val_loss`): the over-fitting monitor."""
    model.to(pick_device(device))
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)

    def step(images: torch.Tensor, _labels: Any, _step: int) -> dict[str, torch.Tensor]:
        reconstruction, mean, logvar = model(images)
        losses = vae_loss(images, reconstruction, mean, logvar, config.kl_weight)
        optimizer.zero_grad(set_to_none=True)
        losses["loss"].backward()
        optimizer.step()
        return losses

    def end_epoch(images: torch.Tensor, last: bool) -> dict[str, float]:
        if last and config.prior_components > 0:  # EM takes seconds: once, before the final checkpoint
            model.fit_prior(images, seed=config.seed)
        if validation is None:
            return {}
        return {"val_loss": held_out_loss(model, validation.to(images.device), config.kl_weight)}

    return Task(model, config, {"adam": optimizer}, step, end_epoch, mixed_precision=config.mixed_precision)


def vqvae_task(model: VQVAE, config: VQVAEConfig, device: torch.device | str | None = None,
               validation: torch.Tensor | None = None, prior_only: bool = False) -> Task:
    """Two stages in one run: `config.epochs` of the autoencoder (Adam, likelihood plus commitment), then
    `config.prior_epochs` of the code prior on the frozen encoder's codes (AdamW, cross-entropy); `prior_only`:
    the second stage alone, on an autoencoder already trained. With `validation` (held-out uint8 hands), each epoch
    logs the stage's held-out loss: the prior's is the guard against memorising the training grids, which would make
    samples copies."""
    model.to(pick_device(device)).to(memory_format=torch.channels_last)  # faster convolutions on CPU (`bench.py`)
    autoencoder = [p for name, p in model.named_parameters() if not name.startswith("prior.")]
    optimizers = {"autoencoder": torch.optim.Adam(autoencoder, lr=config.lr),
                  "prior": torch.optim.AdamW(model.prior.parameters(), lr=config.prior_lr, weight_decay=0.01)}
    stage = {"prior": False}

    def begin_epoch(epoch: int) -> None:
        stage["prior"] = prior_only or epoch >= config.epochs

    def step(images: torch.Tensor, _labels: Any, _step: int) -> dict[str, torch.Tensor]:
        images = images.contiguous(memory_format=torch.channels_last)
        if stage["prior"]:
            loss = model.prior.nll(model.encode(images))
            optimizers["prior"].zero_grad(set_to_none=True)
            loss.backward()
            optimizers["prior"].step()
            return {"prior_nll": loss}
        reconstruction, _codes, commitment = model(images)
        losses = vqvae_loss(images, reconstruction, commitment, config.commitment)
        optimizers["autoencoder"].zero_grad(set_to_none=True)
        losses["loss"].backward()
        optimizers["autoencoder"].step()
        return losses

    def end_epoch(images: torch.Tensor, _last: bool) -> dict[str, float]:
        if validation is None:
            return {}
        return held_out_vqvae_losses(model, validation.to(images.device), config, stage["prior"])

    total = config.prior_epochs if prior_only else config.epochs + config.prior_epochs
    return Task(model, config, optimizers, step, end_epoch, mixed_precision=config.mixed_precision, epochs=total,
                begin_epoch=begin_epoch)


@torch.no_grad()
def held_out_vqvae_losses(model: VQVAE, images: torch.Tensor, config: VQVAEConfig, prior: bool) -> dict[str, float]:
    """The held-out loss of the stage being trained: the autoencoder's (`val_loss`) or the prior's (`val_prior_nll`)."""
    was_training = model.training
    model.eval()
    x = to_float(images)
    if prior:
        logs = {"val_prior_nll": float(model.prior.nll(model.encode(x)))}
    else:
        reconstruction, _codes, commitment = model(x)
        logs = {"val_loss": float(vqvae_loss(x, reconstruction, commitment, config.commitment)["loss"])}
    model.train(was_training)
    return logs


@torch.no_grad()
def held_out_loss(model: VAE, images: torch.Tensor, kl_weight: float = 1.0) -> float:
    """Negative ELBO per image of uint8 images (N, 1, 32, 32), in eval mode, its code noise from a fixed seed (so
    the training's random stream is left alone and epochs compare)."""
    was_training = model.training
    model.eval()
    x = to_float(images)
    mean, logvar = model.encode(x)
    noise = torch.randn(mean.shape, generator=torch.Generator().manual_seed(0)).to(mean.device)
    reconstruction = model.decode(mean + noise * (0.5 * logvar).exp())
    model.train(was_training)
    return float(vae_loss(x, reconstruction, mean, logvar, kl_weight)["loss"])


def gan_task(gan: GAN, config: GANConfig, device: torch.device | str | None = None,
             validation: torch.Tensor | None = None) -> Task:
    """Adam optimizers for D and G and the alternating step; the EMA generator follows G. With `validation`
    (held-out uint8 hands), each epoch logs D's mean score on them and on as many training hands: a gap between
    the two is D over-fitting its training set."""
    gan.to(pick_device(device)).to(memory_format=torch.channels_last)  # faster convolutions on CPU
    betas = (config.beta1, config.beta2)
    opt_d = torch.optim.Adam(gan.discriminator.parameters(), lr=config.lr_discriminator, betas=betas)
    opt_g = torch.optim.Adam(gan.generator.parameters(), lr=config.lr_generator, betas=betas)
    seen = lambda images: augment(images, config.augment)  # noqa: E731  what D sees of any image

    def step(real: torch.Tensor, _labels: Any, step_number: int) -> dict[str, torch.Tensor]:
        real = real.contiguous(memory_format=torch.channels_last)
        noise = torch.randn(2, real.shape[0], config.latent_dim, device=real.device)
        # update D: real hands up, generated hands down (plus the gradient penalties every few steps)
        real_in, fake_in = seen(real), seen(gan.generator(noise[0]).detach())
        penalise = config.gamma > 0 and step_number % PENALTY_EVERY == 0
        real_in.requires_grad_(penalise), fake_in.requires_grad_(penalise)
        real_scores, fake_scores = gan.discriminator(real_in), gan.discriminator(fake_in)
        loss_d = discriminator_loss(real_scores, fake_scores, config.loss)
        if penalise:
            penalty = gradient_penalty(real_scores, real_in) + gradient_penalty(fake_scores, fake_in)
            loss_d = loss_d + config.gamma / 2 * PENALTY_EVERY * penalty
        opt_d.zero_grad(set_to_none=True)
        loss_d.backward()
        opt_d.step()
        # update G: make D score fresh samples as real (D's own weights get no gradient here)
        gan.discriminator.requires_grad_(False)
        fake_scores = gan.discriminator(seen(gan.generator(noise[1])))
        loss_g = generator_loss(fake_scores, real_scores.detach(), config.loss)
        opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        opt_g.step()
        gan.discriminator.requires_grad_(True)
        if config.ema_decay > 0:
            update_ema(gan.ema, gan.generator, config.ema_decay, step_number)
        return {"loss_discriminator": loss_d, "loss_generator": loss_g, "score_fake": fake_scores.mean()}

    def end_epoch(images: torch.Tensor, _last: bool) -> dict[str, float]:
        recalibrate_batchnorm(gan.ema, seed=config.seed)
        if validation is None:
            return {}
        held_out = validation.to(images.device)
        return {"score_training_hands": mean_score(gan, images[:len(held_out)]),
                "score_held_out_hands": mean_score(gan, held_out)}

    return Task(gan, config, {"discriminator": opt_d, "generator": opt_g}, step, end_epoch,
                mixed_precision=config.mixed_precision)


@torch.no_grad()
def mean_score(gan: GAN, images: torch.Tensor) -> float:
    """D's mean score (a logit) on uint8 images (N, 1, 32, 32), without augmentation. In eval mode: a training-mode
    forward advances spectral norm's power iteration, so the monitor would change the run it monitors."""
    was_training = gan.discriminator.training
    gan.discriminator.eval()
    try:
        return float(torch.cat([gan.discriminator(to_float(chunk)) for chunk in images.split(500)]).mean())
    finally:
        gan.discriminator.train(was_training)


def detector_task(model: Detector, config: DetectorConfig, steps_total: int,
                  device: torch.device | str | None = None, class_weights: torch.Tensor | None = None,
                  validation: tuple[torch.Tensor, torch.Tensor] | None = None, recipe: Any = None) -> Task:
    """AdamW with warm-up and cosine decay (a function of the step number, so resumes are exact),
    class-weighted cross-entropy, shift-and-flip augmentation; validation logs after each epoch."""
    device = pick_device(device)
    model.to(device).to(memory_format=torch.channels_last)  # faster convolutions on CPU (`bench.py`)
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    weights = class_weights.to(device) if class_weights is not None else None
    warmup = max(1, steps_total // 20)

    def augment(images: torch.Tensor) -> torch.Tensor:
        if config.reencode > 0:
            images = reencoded(images, config.reencode)
        flip = torch.rand(images.shape[0], 1, 1, 1, device=images.device) < 0.5
        return random_translate(torch.where(flip, images.flip(3), images), config.max_shift)

    def step(images: torch.Tensor, labels: torch.Tensor, step_number: int) -> dict[str, torch.Tensor]:
        progress = min(1.0, max(0.0, (step_number - warmup) / max(1, steps_total - warmup)))
        scale = min(1.0, (step_number + 1) / warmup) * 0.5 * (1.0 + math.cos(math.pi * progress))
        for group in optimizer.param_groups:
            group["lr"] = config.lr * scale
        logits = model.logits(augment(images).contiguous(memory_format=torch.channels_last))
        loss = F.cross_entropy(logits, labels, weight=weights, label_smoothing=config.label_smoothing)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        return {"loss": loss, "accuracy": (logits.argmax(1) == labels).float().mean()}

    def end_epoch(_images: torch.Tensor, _last: bool) -> dict[str, float]:
        if validation is None:
            return {}
        return validation_logs(model, *validation)

    return Task(model, config, {"adamw": optimizer}, step, end_epoch, recipe=recipe)


REENCODE_QUALITIES = (60, 100)  # re-saved at a quality drawn from [60, 100]: from coarse to nearly lossless


def reencoded(images: torch.Tensor, share: float) -> torch.Tensor:
    """Images (B, 1, 32, 32) in [-1, 1] with a random `share` of them re-saved as JPEG at a random quality: the
    detector must decide on what a generator made, not on how the file was last saved."""
    chosen = (torch.rand(len(images)) < share).nonzero().squeeze(1)
    if not len(chosen):
        return images
    qualities = torch.randint(REENCODE_QUALITIES[0], REENCODE_QUALITIES[1] + 1, (len(chosen),)).tolist()
    resaved = to_float(jpeg_round_trip(to_uint8(images[chosen]).cpu(), qualities)).to(images.device)
    images = images.clone()
    images[chosen] = resaved.to(images.dtype)
    return images


def validation_logs(model: Detector, images: torch.Tensor, labels: torch.Tensor) -> dict[str, float]:
    """Accuracy and per-class recall on uint8 images (N, 1, 32, 32) with labels (N,)."""
    predictions = predict_proba(model, images).argmax(1).numpy()
    recall = per_class_recall(confusion_matrix(labels.numpy(), predictions))
    logs = {"val_accuracy": float((predictions == labels.numpy()).mean())}
    logs.update({f"val_recall_{LABELS[label]}": float(value) for label, value in enumerate(recall)})
    return logs


def train_vae(model: VAE, images: torch.Tensor, config: VAEConfig, *, validation: torch.Tensor | None = None,
              checkpoint=None, callbacks=(), device=None, progress: bool = True) -> History:
    """Train a VAE on uint8 images (N, 1, 32, 32), held-out `validation` images monitored; see `fit`."""
    return fit(vae_task(model, config, device, validation), images, checkpoint=checkpoint, callbacks=callbacks,
               progress=progress)


def train_gan(gan: GAN, images: torch.Tensor, config: GANConfig, *, validation: torch.Tensor | None = None,
              checkpoint=None, callbacks=(), device=None, progress: bool = True) -> History:
    """Train a GAN on uint8 images (N, 1, 32, 32), held-out `validation` images monitored; see `fit`."""
    return fit(gan_task(gan, config, device, validation), images, checkpoint=checkpoint, callbacks=callbacks,
               progress=progress)


def train_vqvae(model: VQVAE, images: torch.Tensor, config: VQVAEConfig, *, validation: torch.Tensor | None = None,
                checkpoint=None, callbacks=(), device=None, progress: bool = True) -> History:
    """Train a VQ-VAE and then its prior on uint8 images (N, 1, 32, 32), held-out `validation` monitored."""
    return fit(vqvae_task(model, config, device, validation), images, checkpoint=checkpoint, callbacks=callbacks,
               progress=progress)


def train_prior(model: VQVAE, images: torch.Tensor, config: VQVAEConfig, *, validation: torch.Tensor | None = None,
                checkpoint=None, callbacks=(), device=None, progress: bool = True) -> History:
    """Train only the code prior of a VQ-VAE whose autoencoder is trained, for `config.prior_epochs`."""
    return fit(vqvae_task(model, config, device, validation, prior_only=True), images, checkpoint=checkpoint,
               callbacks=callbacks, progress=progress)


def train_generator(model: VAE | VQVAE | GAN, images: torch.Tensor, config, **options) -> History:
    """`train_vae`, `train_vqvae` or `train_gan`, as the model is."""
    train = {VAE: train_vae, VQVAE: train_vqvae, GAN: train_gan}[type(model)]
    return train(model, images, config, **options)


def fit_detector(training: LabelledSet, config: DetectorConfig, recipe: Any = None,
                 **options) -> tuple[Detector, History]:
    """Build the detector from `config` and train it on a `LabelledSet` made by `recipe` (options as for
    `train_detector`)."""
    model = Detector(config)
    return model, train_detector(model, training.images, training.labels, config, recipe=recipe, **options)


def train_detector(model: Detector, images: torch.Tensor, labels: torch.Tensor, config: DetectorConfig, *,
                   recipe: Any = None, validation: tuple[torch.Tensor, torch.Tensor] | None = None, checkpoint=None,
                   callbacks=(), device=None, progress: bool = True) -> History:
    """Train the detector on uint8 images (N, 1, 32, 32) and labels (N,), classes weighted to balance; `recipe`
    (the data's `detection.DataRecipe`) is saved in the checkpoint and checked on resume."""
    counts = torch.bincount(labels, minlength=len(LABELS)).float()
    present = (counts > 0).sum()
    # each present class weighs as much as the others in total; an absent class gets weight 0, which
    # also keeps label smoothing from pushing probability towards it
    class_weights = torch.where(counts > 0, counts.sum() / (present * counts.clamp_min(1.0)), torch.zeros(()))
    steps_total = config.epochs * (len(images) // config.batch_size)
    task = detector_task(model, config, steps_total, device, class_weights, validation, recipe)
    return fit(task, images, labels, checkpoint=checkpoint, callbacks=callbacks, progress=progress)
