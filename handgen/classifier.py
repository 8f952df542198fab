"""The detector: a CNN classifier, trained from scratch, that labels a hand 0 real, 1 VAE-made, 2 GAN-made.

Only the network and its probabilities live here, as `gan.py` and `vae.py` hold theirs: its training step is in
`train`, its data, the folder prediction and the CSV in `detection`.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

from .data import CHANNELS, LABELS, check_image_batch, jpeg_round_trip, to_float
from .runtime import check_config, seeded

ARCHITECTURES = ("plain", "residual")


@dataclass
class DetectorConfig:
    """The network, its training and its decision rule. Values from the Optuna study of `Hypertuning.ipynb`; the
    decision offsets from cross-validation (`crossval`). The data it learns from is `detection.DataRecipe`."""

    architecture: str = "plain"  # "plain": three VGG-style blocks; "residual": a small ResNet (the confirmation judge)
    width: int = 32             # channels of the first block; doubles at each of the three blocks
    dropout: float = 0.47       # before the linear head
    lr: float = 1.7e-3          # AdamW learning rate (one-cycle schedule peak)
    weight_decay: float = 1.8e-4
    batch_size: int = 128
    epochs: int = 20
    seed: int = 0
    max_shift: int = 1          # training augmentation: random shift (pixels) and horizontal flip
    label_smoothing: float = 0.077
    mirror: bool = True         # prediction also averages over the left-right mirror image (seen in training)
    # added to log-probabilities (real, VAE, GAN): a GAN prior shift, picked by cross-fitting on the
    # seen-models folds (`crossval.cross_fitted_balanced_accuracy`)
    decision_offsets: tuple[float, float, float] = (0.0, 0.0, 1.0)
    # an image closer than this to a real training hand (pixel L2, 0-1 scale, over mirrors and one-pixel shifts)
    # is a memorised copy, so generated (`detection.CopyCheck`); 0 turns the check off
    copy_threshold: float = 0.55
    reencode: float = 1.0       # training augmentation: share of images re-saved as JPEG at a random quality
    # prediction averages over the image re-saved as JPEG at these qualities, and over the image as given if
    # `as_given`: a label must not hinge on how a file was last saved (`detection.resave_changes`). Re-saving at the
    # dataset's own quality puts a file saved otherwise back on its grid (`scripts/views_check.py`)
    views: tuple[int, ...] = (75,)
    as_given: bool = False

    # how a checkpoint written before a field existed behaves (`checkpoint.config_of`)
    SINCE: ClassVar[dict] = {"views": (), "as_given": True}
    # the decision rule: training never reads these, so a run may resume (or be re-read) with others
    RESUMABLE: ClassVar[frozenset] = frozenset({"decision_offsets", "copy_threshold", "views", "as_given"})

    def __post_init__(self) -> None:
        self.decision_offsets = tuple(float(offset) for offset in self.decision_offsets)  # lists from a CLI or file
        self.views = tuple(self.views)
        check_config(self, positive=("width", "lr", "batch_size", "epochs", "views"), signed=("decision_offsets",),
                     fractions=("dropout", "label_smoothing"),
                     limits={"lr": 1.0, "weight_decay": 1.0, "decision_offsets": 100.0, "reencode": 1.0,
                             "views": 100})
        if not (self.views or self.as_given):
            raise ValueError("DetectorConfig needs a view to predict on: views or as_given")
        if self.architecture not in ARCHITECTURES:
            raise ValueError(f"DetectorConfig.architecture must be one of {', '.join(ARCHITECTURES)}, "
                             f"got {self.architecture!r}")
        if len(self.decision_offsets) != len(LABELS):
            raise ValueError(f"decision_offsets needs {len(LABELS)} values (real, VAE, GAN), "
                             f"got {self.decision_offsets}")


def _block(c_in: int, c_out: int) -> nn.Sequential:
    """Two 3x3 convs with batch norm and ReLU, then 2x2 max-pooling (halves the resolution)."""
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True),
        nn.Conv2d(c_out, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True),
        nn.MaxPool2d(2),
    )


class _Residual(nn.Module):
    """Two 3x3 convs with batch norm added to the input (projected by a 1x1 conv where the shape changes), ReLU."""

    def __init__(self, c_in: int, c_out: int, stride: int):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True),
            nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False), nn.BatchNorm2d(c_out),
        )
        self.skip = nn.Identity() if stride == 1 and c_in == c_out else nn.Sequential(
            nn.Conv2d(c_in, c_out, 1, stride, bias=False), nn.BatchNorm2d(c_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.body(x) + self.skip(x))


def _features(config: DetectorConfig) -> nn.Sequential:
    """The convolutional trunk: image (B, 1, 32, 32) -> features (B, 4w)."""
    w = config.width
    if config.architecture == "residual":
        return nn.Sequential(
            nn.Conv2d(CHANNELS, w, 3, 1, 1, bias=False), nn.BatchNorm2d(w), nn.ReLU(inplace=True),  # (B, w, 32, 32)
            _Residual(w, w, 1),
            _Residual(w, 2 * w, 2),        # (B, 2w, 16, 16)
            _Residual(2 * w, 4 * w, 2),    # (B, 4w, 8, 8)
            _Residual(4 * w, 4 * w, 2),    # (B, 4w, 4, 4)
            nn.AdaptiveAvgPool2d(1), nn.Flatten(),
        )
    return nn.Sequential(
        _block(CHANNELS, w),       # (B, w, 16, 16)
        _block(w, 2 * w),          # (B, 2w, 8, 8)
        _block(2 * w, 4 * w),      # (B, 4w, 4, 4)
        nn.AdaptiveAvgPool2d(1), nn.Flatten(),
    )


class Detector(nn.Module):
    """Image (B, 1, 32, 32) in [-1, 1] -> decision scores (B, 3) for real, VAE, GAN: a convolutional trunk, global
    average pooling and a linear head; the scores are the log of the softmax probability (averaged over the image
    and, with `config.mirror`, its mirror) plus `config.decision_offsets`. Weights drawn from `config.seed`."""

    def __init__(self, config: DetectorConfig):
        super().__init__()
        self.config = config
        w = config.width
        with seeded(config.seed):
            self.features = _features(config)
            self.head = nn.Sequential(nn.Dropout(config.dropout), nn.Linear(4 * w, len(LABELS)))
        self.register_buffer("offsets", torch.tensor(config.decision_offsets, dtype=torch.float32),
                             persistent=False)

    def logits(self, images: torch.Tensor) -> torch.Tensor:
        """Raw class logits (B, 3) of one view, as trained."""
        check_image_batch(images)
        return self.head(self.features(images))

    def probabilities(self, images: torch.Tensor) -> torch.Tensor:
        """Class probabilities (B, 3) before the decision offsets, averaged with the mirror's (`config.mirror`)."""
        if not self.config.mirror:
            return self.logits(images).softmax(dim=1)
        both = self.logits(torch.cat([images, images.flip(-1)])).softmax(dim=1)  # one pass over image and mirror
        return both.view(2, len(images), -1).mean(dim=0)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.probabilities(images).log() + self.offsets


def fold_batch_norms(model: nn.Module) -> nn.Module:
    """Fold every batch norm that follows a convolution into it, in place, for eval mode only: the same function
    with one pass over memory fewer per layer."""
    for block in model.modules():
        if isinstance(block, nn.Sequential):
            for index in range(len(block) - 1):
                if isinstance(block[index], nn.Conv2d) and isinstance(block[index + 1], nn.BatchNorm2d):
                    block[index] = fuse_conv_bn_eval(block[index], block[index + 1])
                    block[index + 1] = nn.Identity()
    return model


@torch.inference_mode()
def predict_proba(model: Detector, images: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
    """Class probabilities (N, 3) for uint8 images (N, 1, 32, 32), as the model decides: the network's probabilities
    averaged over its `config.views` re-saves (and the image as given, with `config.as_given`) and their mirrors,
    then the decision offsets. Deterministic:
    eval mode, no random augmentation.

    Runs a copy of the model with its batch norms folded, in channels-last layout, on batches of 256: on CPU each
    of those is faster (`scripts/bench.py`); the model passed in is left untouched.
    """
    device = next(model.parameters()).device
    fast = fold_batch_norms(copy.deepcopy(model).eval()).to(memory_format=torch.channels_last)
    views = [*([images] if model.config.as_given else []),
             *(jpeg_round_trip(images.cpu(), quality) for quality in model.config.views)]
    mean = sum(_probabilities(fast, view, batch_size, device) for view in views) / len(views)
    return (mean.clamp_min(1e-12).log() + fast.offsets.cpu()).softmax(dim=1)


def _probabilities(model: Detector, images: torch.Tensor, batch_size: int, device: torch.device) -> torch.Tensor:
    """`model.probabilities` (N, 3) of uint8 images, in batches."""
    chunks = [model.probabilities(to_float(chunk.to(device)).contiguous(memory_format=torch.channels_last)).cpu()
              for chunk in images.split(batch_size)]
    return torch.cat(chunks) if chunks else torch.empty(0, len(LABELS))


def predict_labels(model: Detector, images: torch.Tensor) -> list[int]:
    """Labels 0 real, 1 VAE, 2 GAN for uint8 images (N, 1, 32, 32)."""
    return predict_proba(model, images).argmax(dim=1).tolist()
