"""Our own generators' samples for the detector: a zoo of deliberately varied generators, and our final ones.

Students' models were blurry, noisy, early or collapsed; the zoo trains small VAEs and GANs of such kinds and
samples them at several epochs (each snapshot one source), cached on disk by a hash of everything that makes
them. The zoo only trains and samples; `detection` assembles the detector's data from it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path

import torch
from tqdm.auto import tqdm

from .checkpoint import FAMILIES, family_of, load_model, save_state
from .data import LabelledSet
from .files import check_output
from .sample import generate, is_sampler
from .train import train_generator


@dataclass
class ZooMember:
    """One of our generator variants: a family, its full config (besides seed and epochs), sampling epochs."""

    name: str
    family: str                          # "vae" or "gan"
    settings: dict = field(default_factory=dict)
    snapshots: tuple[int, ...] = (1,)    # epochs after which samples are drawn (each is one source)

    def config(self, seed: int):
        """The member's config, trained up to its last snapshot."""
        return FAMILIES[self.family].config(**self.settings, seed=seed, epochs=max(self.snapshots))

    def quick(self) -> ZooMember:
        """The same member sampled after its first epoch only (a smoke run)."""
        return dataclasses.replace(self, snapshots=(1,))


# Every setting is pinned, so that changing our final generators' defaults changes neither the zoo, its cache nor
# the detector's validation set: the VAE and GAN recipes the zoo was built on (float32, the DCGAN discriminator,
# codes drawn from the mixture as fitted)
_VAE = {"latent_dim": 64, "width": 32, "kl_weight": 1.0, "lr": 1e-3, "batch_size": 64, "prior_components": 10,
        "prior_temperature": 1.0, "mixed_precision": False}
_GAN = {"latent_dim": 128, "width": 32, "discriminator": "dcgan", "discriminator_width": 32, "loss": "hinge",
        "gamma": 0.0, "augment": "none", "spectral_norm": True, "ema_decay": 0.999, "lr_generator": 2e-4,
        "lr_discriminator": 2e-4, "beta1": 0.0, "beta2": 0.9, "batch_size": 64, "mixed_precision": False}

DEFAULT_ZOO = (
    ZooMember("vae tiny latent", "vae", {**_VAE, "latent_dim": 2, "width": 16, "prior_components": 0}, (2, 6)),
    ZooMember("vae blurry", "vae", {**_VAE, "latent_dim": 16, "width": 16, "kl_weight": 4.0, "prior_components": 0},
              (3,)),
    ZooMember("vae sharp", "vae", _VAE, (2, 8)),
    ZooMember("gan hinge sn", "gan", {**_GAN, "width": 16}, (1, 3, 8)),
    ZooMember("gan classic dcgan", "gan", {**_GAN, "width": 16, "loss": "nonsaturating", "spectral_norm": False,
                                           "beta1": 0.5, "beta2": 0.999, "ema_decay": 0.0}, (1, 3, 8)),
    ZooMember("gan wide", "gan", {**_GAN, "lr_generator": 5e-4, "lr_discriminator": 5e-4}, (2, 6)),
)


def zoo_samples(train_images: torch.Tensor, members=DEFAULT_ZOO, samples_per_snapshot: int = 300,
              seed: int = 0, progress: bool = False) -> LabelledSet:
    """Train each zoo member on real hands and sample it at its snapshot epochs; one source per snapshot."""
    parts = []
    for index, member in enumerate(tqdm(members, desc="generator zoo", unit="generator")):
        family = FAMILIES[member.family]
        config = member.config(seed + index)
        network = family.model(config)

        def snapshot(epoch: int, _logs, network=network, member=member, label=family.label) -> None:
            if epoch + 1 in member.snapshots:
                samples = generate(network, samples_per_snapshot, seed=epoch)
                parts.append(LabelledSet.from_images(samples, label, f"zoo {member.name} epoch {epoch + 1}"))

        train_generator(network, train_images, config, callbacks=[snapshot], progress=progress)
    return LabelledSet.concat(parts)


def zoo_cache_key(train_images: torch.Tensor, members=DEFAULT_ZOO, samples_per_snapshot: int = 300,
                  seed: int = 0) -> str:
    configs = [member.config(seed + index) for index, member in enumerate(members)]
    return hashlib.blake2b(repr((members, configs, samples_per_snapshot)).encode() + train_images.numpy().tobytes(),
                           digest_size=16).hexdigest()


def cached_zoo_samples(train_images: torch.Tensor, cache: str | os.PathLike | None, members=DEFAULT_ZOO,
                     samples_per_snapshot: int = 300, progress: bool = False) -> LabelledSet:
    """`zoo_samples`, stored in `cache` and reused while the members' configs, the sample count and the training
    images are unchanged. A `cache` file that is no zoo cache is refused before anything trains."""
    key = zoo_cache_key(train_images, members, samples_per_snapshot)
    if cache is not None:
        check_output(cache, "zoo cache")
        if Path(cache).is_file() and Path(cache).stat().st_size:
            stored = torch.load(cache, map_location="cpu", weights_only=True)
            if stored.get("key") == key:
                return LabelledSet(stored["images"], stored["labels"], stored["sources"])
    zoo = zoo_samples(train_images, members, samples_per_snapshot, progress=progress)
    if cache is not None:
        save_state({"key": key, "images": zoo.images, "labels": zoo.labels, "sources": zoo.sources}, cache)
    return zoo


def own_generator_samples(checkpoints: list[str | os.PathLike], n: int = 1000, seed: int = 12345) -> LabelledSet:
    """Samples of our own trained generators (their final checkpoints), labelled by family."""
    parts = []
    for path in checkpoints:
        model, _ = load_model(path)
        if not is_sampler(model):
            raise ValueError(f"{path} holds a {type(model).__name__}, not a generator "
                             "(train-vae or train-gan makes one)")
        label = FAMILIES[family_of(model)].label
        parts.append(LabelledSet.from_images(generate(model, n, seed=seed), label, f"own {Path(path).stem} final"))
    return LabelledSet.concat(parts)
