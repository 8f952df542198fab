"""One self-describing checkpoint format for every model family, written atomically."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .families import FAMILIES, family_of

FORMAT_VERSION = 1

# config fields that may change between a run and its resumption
RESUMABLE_FIELDS = {"epochs"}


class CheckpointError(Exception):
    """A checkpoint cannot be read, or belongs to a different run."""


def atomic_torch_save(state: Any, path: str | os.PathLike) -> None:
    """torch.save into a temporary sibling, then rename: an interrupted write never leaves a torn file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.tmp")
    torch.save(state, temporary)
    os.replace(temporary, path)


def save_checkpoint(path: str | os.PathLike, model: nn.Module, config: Any, *, epoch: int,
                    history: list[dict[str, float]], optimizers: dict[str, torch.optim.Optimizer],
                    rng_state: torch.Tensor | None = None) -> None:
    """Write {model, optimizers, config, epoch, history, version} to a temporary file, then rename."""
    state = {
        "version": FORMAT_VERSION,
        "kind": family_of(model),
        "config": dataclasses.asdict(config),
        "epoch": epoch,
        "history": history,
        "model": model.state_dict(),
        "optimizers": {name: opt.state_dict() for name, opt in optimizers.items()},
        "rng_state": rng_state if rng_state is not None else torch.get_rng_state(),
    }
    atomic_torch_save(state, path)


def strip_optimizer_state(path: str | os.PathLike) -> None:
    """Turn a finished run's checkpoint into a small final one: weights, config and history only.

    It still loads for sampling and counts as complete, but can no longer be trained further.
    """
    state = read_checkpoint(path)
    state["optimizers"] = {}
    atomic_torch_save(state, path)


def read_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """The raw checkpoint dictionary, loaded safely on CPU."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises many types for a damaged file
        raise CheckpointError(f"checkpoint {path} cannot be read: {_why_unreadable(path, error)}") from None
    if not isinstance(state, dict) or state.get("version") != FORMAT_VERSION:
        raise CheckpointError(f"checkpoint {path} is not a handgen checkpoint (version {FORMAT_VERSION})")
    return state


def _why_unreadable(path: Path, error: Exception) -> str:
    """A one-line reason a checkpoint failed to load; never torch's advice to load unsafely."""
    head = path.read_bytes()[:4]
    if not head:
        return "empty file"
    if not head.startswith(b"PK"):
        text = all(32 <= byte < 127 or byte in (9, 10, 13) for byte in head)
        return f"not a PyTorch checkpoint ({'text' if text else 'unknown format'}, {path.stat().st_size} bytes)"
    if "weights_only" in str(error) or "Unsupported global" in str(error):
        return "it holds objects other than tensors and plain values, which handgen never loads"
    first_sentence = str(error).strip().split(". ")[0] if str(error).strip() else type(error).__name__
    return f"damaged file ({first_sentence})"


def load_model(path: str | os.PathLike, device: torch.device | str = "cpu") -> tuple[nn.Module, Any]:
    """Rebuild the model of a checkpoint from its config and weights; returns (model, config)."""
    state = read_checkpoint(path)
    family = FAMILIES[state["kind"]]
    unknown = set(state["config"]) - {field.name for field in dataclasses.fields(family.config)}
    if unknown:
        raise CheckpointError(f"checkpoint {path} was written by another version of handgen (config fields "
                              f"{', '.join(sorted(unknown))} no longer exist); retrain it")
    config = family.config(**state["config"])
    model = family.model(config)
    model.load_state_dict(state["model"])
    return model.to(device).eval(), config


def check_same_run(path: Path, state: dict[str, Any], model: nn.Module, config: Any) -> None:
    """Refuse to resume from a checkpoint of another model kind or another configuration."""
    if state["kind"] != family_of(model):
        raise CheckpointError(f"checkpoint {path} holds a {state['kind']} model, not a {family_of(model)}; "
                              "choose another checkpoint path")
    current = dataclasses.asdict(config)
    stored = {**dataclasses.asdict(type(config)()), **state["config"]}  # fields added since: their defaults
    changed = [f"{key}: {stored.get(key)!r} -> {value!r}" for key, value in current.items()
               if key not in RESUMABLE_FIELDS and stored.get(key) != value]
    if changed:
        raise CheckpointError(f"checkpoint {path} belongs to a run with another config ({'; '.join(changed)}); "
                              "choose another checkpoint path or delete it to start afresh")
