"""One self-describing checkpoint format for every model family, written atomically; the registry of families.

A checkpoint holds {version, kind, config, recipe, epoch, history, model, optimizers, RNG states}: the model is
rebuilt from its config alone, and a run resumes exactly where it stopped. Anything that does not fit (another
kind, another config, weights of another shape, an unknown format) is one line naming the file and the reason.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .classifier import Detector, DetectorConfig
from .data import GAN_LABEL, VAE_LABEL
from .files import replace_atomically
from .gan import GAN, GANConfig
from .vae import VAE, VAEConfig
from .vqvae import VQVAE, VQVAEConfig

FORMAT_VERSION = 2
# config fields that may change between a run and its resumption, besides those a config lists as RESUMABLE
RESUMABLE_FIELDS = {"epochs"}
# format 1 kept the detector's data recipe inside its config and called the detector "classifier"
FORMAT_1_RECIPE_FIELDS = ("provided_repeats", "generated_fakes", "validation_fold", "whole_models")


class CheckpointError(Exception):
    """A checkpoint cannot be read, or belongs to a different run."""


@dataclass(frozen=True)
class Family:
    config: type          # its config dataclass; a model is rebuilt from a config alone
    model: type           # its nn.Module
    label: int | None     # the detector's label of images it makes (generators only)


FAMILIES = {
    "vae": Family(VAEConfig, VAE, VAE_LABEL),
    "vqvae": Family(VQVAEConfig, VQVAE, VAE_LABEL),
    "gan": Family(GANConfig, GAN, GAN_LABEL),
    "detector": Family(DetectorConfig, Detector, None),
}
GENERATOR_FAMILIES = ("vae", "vqvae", "gan")


def family_of(model: nn.Module) -> str:
    """The registry name of a model's family; a clear error for anything else."""
    for name, family in FAMILIES.items():
        if isinstance(model, family.model):
            return name
    raise ValueError(f"{type(model).__name__} is not a handgen model ({', '.join(FAMILIES)})")


def save_state(state: dict[str, Any], path: str | os.PathLike) -> Path:
    """torch.save into a temporary file of its own, then rename: never a torn or mixed file, even when racing."""
    return replace_atomically(path, lambda handle: torch.save(state, handle))


def save_checkpoint(path: str | os.PathLike, model: nn.Module, config: Any, *, epoch: int,
                    history: list[dict[str, float]], optimizers: dict[str, torch.optim.Optimizer],
                    recipe: Any = None, data: str | None = None) -> None:
    """Write the checkpoint of a run: weights, optimizers, config (and data recipe), history, RNG states, and `data`,
    a digest of the training images (`data_digest`)."""
    save_state({
        "version": FORMAT_VERSION,
        "kind": family_of(model),
        "config": dataclasses.asdict(config),
        "recipe": dataclasses.asdict(recipe) if recipe is not None else None,
        "data": data,
        "epoch": epoch,
        "history": history,
        "model": model.state_dict(),
        "optimizers": {name: opt.state_dict() for name, opt in optimizers.items()},
        "rng_state": torch.get_rng_state(),
        "cuda_rng_states": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }, path)


def restore_rng_states(state: dict[str, Any]) -> None:
    """Put back the CPU and CUDA random states a checkpoint saved (CUDA only on a machine with as many GPUs)."""
    torch.set_rng_state(state["rng_state"])
    cuda_states = state.get("cuda_rng_states") or []
    if cuda_states and torch.cuda.is_available() and len(cuda_states) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(cuda_states)


def strip_optimizer_state(path: str | os.PathLike, final: str | os.PathLike | None = None) -> Path:
    """Turn a finished run's checkpoint into a small final one (in place, or written to `final`): weights, config
    and history only. It still loads for sampling and counts as complete, but can no longer be trained further."""
    state = read_checkpoint(path)
    state["optimizers"] = {}
    return save_state(state, final or path)


def read_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """The checkpoint dictionary, loaded safely on CPU, in the current format (format 1 is converted)."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist" + (" (it is a folder)" if path.is_dir() else ""))
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises many types for a damaged file
        raise CheckpointError(f"checkpoint {path} cannot be read: {_why_unreadable(path, error)}") from None
    if not isinstance(state, dict) or "version" not in state:
        raise CheckpointError(f"{path} is not a handgen checkpoint (it holds no format version)")
    if state["version"] == 1:
        state = _from_format_1(state)
    if state["version"] != FORMAT_VERSION:
        raise CheckpointError(f"checkpoint {path} has format version {state['version']!r}; this handgen reads "
                              f"versions 1 and {FORMAT_VERSION}: it was written by another version of handgen")
    _check_fields(path, state)
    return state


def _from_format_1(state: dict[str, Any]) -> dict[str, Any]:
    """Format 1 -> 2: the detector was "classifier", with its data recipe inside its config; no CUDA RNG state."""
    state = {**state, "version": FORMAT_VERSION, "cuda_rng_states": [], "recipe": None}
    if state.get("kind") == "classifier" and isinstance(state.get("config"), dict):
        config = dict(state["config"])
        state["recipe"] = {name: config.pop(name) for name in FORMAT_1_RECIPE_FIELDS if name in config}
        state.update(kind="detector", config=config)
    return state


def _check_fields(path: Path, state: dict[str, Any]) -> None:
    """One line for a checkpoint of an unknown kind, or without a config, weights or epoch."""
    if state.get("kind") not in FAMILIES:
        raise CheckpointError(f"checkpoint {path} holds a model of kind {state.get('kind')!r}, which this handgen "
                              f"does not know ({', '.join(FAMILIES)})")
    for key, kind in (("config", dict), ("model", dict), ("epoch", int), ("history", list)):
        if not isinstance(state.get(key), kind):
            raise CheckpointError(f"checkpoint {path} is damaged: its {key!r} is missing or not a {kind.__name__}")


def _why_unreadable(path: Path, error: Exception) -> str:
    """A one-line reason a checkpoint failed to load; never torch's advice to load unsafely."""
    with path.open("rb") as handle:
        head = handle.read(4)
    if not head:
        return "empty file"
    if not head.startswith(b"PK"):
        text = all(32 <= byte < 127 or byte in (9, 10, 13) for byte in head)
        return f"not a PyTorch checkpoint ({'text' if text else 'unknown format'}, {path.stat().st_size} bytes)"
    if "weights_only" in str(error) or "Unsupported global" in str(error):
        return "it holds objects other than tensors and plain values, which handgen never loads"
    first_sentence = str(error).strip().split(". ")[0] if str(error).strip() else type(error).__name__
    return f"damaged file ({first_sentence})"


def config_of(path: str | os.PathLike, state: dict[str, Any]) -> Any:
    """The family config a checkpoint describes; one line if its fields no longer exist or do not check."""
    family = FAMILIES[state["kind"]]
    unknown = set(state["config"]) - {field.name for field in dataclasses.fields(family.config)}
    if unknown:
        raise CheckpointError(f"checkpoint {path} was written by another version of handgen (config fields "
                              f"{', '.join(sorted(unknown))} no longer exist); retrain it")
    try:
        return family.config(**{**getattr(family.config, "SINCE", {}), **state["config"]})
    except (TypeError, ValueError) as error:
        raise CheckpointError(f"checkpoint {path} has an invalid config: {error}") from None


def load_weights(path: str | os.PathLike, model: nn.Module, weights: dict[str, torch.Tensor]) -> None:
    """`model.load_state_dict(weights)`, or one line naming the first weight that does not fit."""
    try:
        model.load_state_dict(weights)
    except RuntimeError:
        expected = model.state_dict()
        misfits = [f"{name} {tuple(weights[name].shape)} where the network has {tuple(tensor.shape)}"
                   for name, tensor in expected.items() if name in weights and weights[name].shape != tensor.shape]
        missing = sorted(set(expected) - set(weights)) + sorted(set(weights) - set(expected))
        detail = misfits[0] if misfits else f"weights missing or unexpected: {', '.join(missing[:3])}"
        raise CheckpointError(f"checkpoint {path}: its weights do not fit the network its config describes "
                              f"({detail}); it was written by another version of handgen, retrain it") from None


def load_model(path: str | os.PathLike, device: torch.device | str = "cpu") -> tuple[nn.Module, Any]:
    """Rebuild the model of a checkpoint from its config and weights; returns (model, config)."""
    state = read_checkpoint(path)
    config = config_of(path, state)
    model = FAMILIES[state["kind"]].model(config)
    load_weights(path, model, state["model"])
    return model.to(device).eval(), config


def data_digest(*tensors: torch.Tensor) -> str:
    """A short hash of a run's training tensors: a run resumed on other images is another run."""
    digest = hashlib.blake2b(digest_size=8)
    for tensor in tensors:
        digest.update(str((tensor.dtype, tuple(tensor.shape))).encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def check_same_run(path: Path, state: dict[str, Any], model: nn.Module, config: Any, recipe: Any = None,
                   data: str | None = None) -> None:
    """Refuse to resume from a checkpoint of another model kind, another configuration, another data recipe or other
    training images (a checkpoint written before the digest existed is not checked for them)."""
    if state["kind"] != family_of(model):
        raise CheckpointError(f"checkpoint {path} holds a {state['kind']} model, not a {family_of(model)}; "
                              "choose another checkpoint path")
    changed = _changes(type(config), state["config"], config)
    if recipe is not None:
        changed += _changes(type(recipe), state.get("recipe") or {}, recipe)
    if changed:
        raise CheckpointError(f"checkpoint {path} belongs to a run with another config ({'; '.join(changed)}); "
                              "choose another checkpoint path or delete it to start afresh")
    if data is not None and state.get("data") not in (None, data):
        raise CheckpointError(f"checkpoint {path} was trained on other images than these (a generator or data "
                              "folder changed since); choose another checkpoint path or delete it to start afresh")


def _changes(config_class: type, stored: dict[str, Any], current: Any) -> list[str]:
    """`field: stored -> current` for every field that differs; fields added since compare at their defaults."""
    stored = {**dataclasses.asdict(config_class()), **stored}
    resumable = RESUMABLE_FIELDS | getattr(config_class, "RESUMABLE", set())
    return [f"{key}: {stored.get(key)!r} -> {value!r}" for key, value in dataclasses.asdict(current).items()
            if key not in resumable and stored.get(key) != value]
