"""The one registry of model families: a name, its config and model classes, and the detector's label for it."""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from .classifier import ClassifierConfig, HandClassifier
from .gan import GAN, GANConfig
from .vae import VAE, VAEConfig

REAL, VAE_LABEL, GAN_LABEL = 0, 1, 2  # the detector's labels (`classifier.LABELS`)


@dataclass(frozen=True)
class Family:
    config: type          # its config dataclass; a model is rebuilt from a config alone
    model: type           # its nn.Module
    label: int | None     # the detector's label of images it makes (generators only)


FAMILIES = {
    "vae": Family(VAEConfig, VAE, VAE_LABEL),
    "gan": Family(GANConfig, GAN, GAN_LABEL),
    "classifier": Family(ClassifierConfig, HandClassifier, None),
}
GENERATOR_FAMILIES = ("vae", "gan")


def family_of(model: nn.Module) -> str:
    """The registry name of a model's family; a clear error for anything else."""
    for name, family in FAMILIES.items():
        if isinstance(model, family.model):
            return name
    raise ValueError(f"{type(model).__name__} is not a handgen model ({', '.join(FAMILIES)})")
