"""Vector-quantised VAE for 1x32x32 hands, with a learned autoregressive prior over its codes.

The Gaussian VAE's decoder turns one 64-dimensional code into a whole hand, and that bottleneck is what makes its
samples soft: even decoded posterior means of held-out hands rarely pass for real. Here the encoder keeps an 8x8
grid of codes, each one of `codebook_size` learned vectors (van den Oord et al. 2017), so the decoder sees where
things are; the codebook follows the encoder by moving averages, and a commitment term pulls the encoder towards
its codes. The prior is learned afterwards: a small causal transformer predicts each code of the grid from those
before it (raster order), and sampling draws a grid code by code, then decodes it. Network and loss only: the
training step is in `train`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import nn
from torch.nn import functional as F

from .data import CHANNELS, IMAGE_SIZE, check_image_batch
from .runtime import check_config, seeded

GRID = IMAGE_SIZE // 4  # the code grid is 8x8: two stride-2 convolutions


@dataclass
class VQVAEConfig:
    """The autoencoder, its codebook and its prior; `epochs` train the autoencoder, then `prior_epochs` the prior.
    Width, lengths, depth and temperature from the realism curves and the VAE study of `Hypertuning.ipynb`."""

    width: int = 32               # channels at 16x16; twice that at 8x8
    codebook_size: int = 256      # how many code vectors
    code_dim: int = 32            # their size
    commitment: float = 0.25      # beta: weight of the pull of encoder outputs towards their codes
    codebook_decay: float = 0.99  # the codebook's moving average
    lr: float = 1e-3              # Adam, the autoencoder
    batch_size: int = 64
    epochs: int = 40              # of the autoencoder
    prior_epochs: int = 30        # of the prior, after the autoencoder's (the copy-share guard's choice)
    prior_width: int = 128        # the transformer's model width
    prior_layers: int = 3         # the study's 4 read alike, at 4/3 of the step time (EXPERIMENTS, "A cheaper prior")
    prior_heads: int = 4
    prior_dropout: float = 0.17
    prior_lr: float = 2.5e-3      # AdamW, the prior
    prior_temperature: float = 1.0  # sampling: divides the prior's logits (below 1: the likelier codes, and copies)
    seed: int = 0
    mixed_precision: bool = True  # bfloat16 autocast where the device runs it fast (`runtime.fast_bfloat16`)
    # the prior trains at a constant rate, so a finished prior can be trained on for more epochs
    RESUMABLE: ClassVar[frozenset] = frozenset({"prior_epochs"})

    def __post_init__(self) -> None:
        check_config(self, positive=("width", "codebook_size", "code_dim", "lr", "batch_size", "epochs",
                                     "prior_width", "prior_layers", "prior_heads", "prior_lr", "prior_temperature"),
                     fractions=("codebook_decay", "prior_dropout"),
                     limits={"lr": 1.0, "prior_lr": 1.0, "commitment": 100.0, "prior_temperature": 10.0})
        if self.prior_width % self.prior_heads:
            raise ValueError(f"VQVAEConfig.prior_width ({self.prior_width}) must be a multiple of prior_heads "
                             f"({self.prior_heads})")


class _Residual(nn.Module):
    """x + conv1x1(relu(conv3x3(relu(x)))): keeps the shape."""

    def __init__(self, channels: int):
        super().__init__()
        self.body = nn.Sequential(nn.ReLU(), nn.Conv2d(channels, channels, 3, 1, 1), nn.ReLU(),
                                  nn.Conv2d(channels, channels, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class Quantizer(nn.Module):
    """Nearest-code quantisation with a moving-average codebook; codes left unused are moved to encoder outputs."""

    def __init__(self, size: int, dim: int, decay: float):
        super().__init__()
        self.decay = decay
        self.register_buffer("codebook", torch.randn(size, dim) * 0.1)
        self.register_buffer("usage", torch.zeros(size))        # moving count of vectors per code
        self.register_buffer("sums", self.codebook.clone())     # moving sum of those vectors

    def forward(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Encoder output (B, D, H, W) -> quantised (B, D, H, W) with straight-through gradients, codes (B, H, W)
        and the commitment loss."""
        batch, dim, height, width = z.shape
        flat = z.permute(0, 2, 3, 1).reshape(-1, dim).float()
        distances = flat.pow(2).sum(1, keepdim=True) - 2 * flat @ self.codebook.t() + self.codebook.pow(2).sum(1)
        codes = distances.argmin(1)
        if self.training:
            self._follow(flat, codes)
        quantized = self.codebook[codes].view(batch, height, width, dim).permute(0, 3, 1, 2)
        commitment = F.mse_loss(z.float(), quantized)
        return z + (quantized - z).detach(), codes.view(batch, height, width), commitment

    @torch.no_grad()
    def _follow(self, flat: torch.Tensor, codes: torch.Tensor) -> None:
        onehot = F.one_hot(codes, len(self.codebook)).to(flat.dtype)
        self.usage.mul_(self.decay).add_(onehot.sum(0), alpha=1 - self.decay)
        self.sums.mul_(self.decay).add_(onehot.t() @ flat, alpha=1 - self.decay)
        total = self.usage.sum()
        smoothed = (self.usage + 1e-5) / (total + len(self.usage) * 1e-5) * total  # no division by zero
        self.codebook.copy_(self.sums / smoothed.unsqueeze(1))
        unused = (self.usage < 1e-3).nonzero().squeeze(1)
        if len(unused):
            picked = flat[torch.randint(len(flat), (len(unused),), device=flat.device)]
            self.codebook[unused], self.sums[unused], self.usage[unused] = picked, picked, 1.0

    def lookup(self, codes: torch.Tensor) -> torch.Tensor:
        """Codes (B, H, W) -> their vectors (B, D, H, W)."""
        return self.codebook[codes].permute(0, 3, 1, 2)


class _Attention(nn.Module):
    """Causal self-attention over the code sequence; with a cache it takes one new position at a time."""

    def __init__(self, width: int, heads: int, dropout: float):
        super().__init__()
        self.heads, self.dropout = heads, dropout
        self.qkv, self.out = nn.Linear(width, 3 * width), nn.Linear(width, width)

    def forward(self, x: torch.Tensor, cache: list | None = None) -> torch.Tensor:
        batch, length, width = x.shape
        q, k, v = (part.view(batch, length, self.heads, -1).transpose(1, 2) for part in self.qkv(x).chunk(3, -1))
        if cache is not None:  # sampling: keys and values of the earlier positions are kept, not recomputed
            if cache:
                k, v = torch.cat([cache[0], k], 2), torch.cat([cache[1], v], 2)
            cache[:] = [k, v]
        attended = F.scaled_dot_product_attention(q, k, v, is_causal=cache is None,
                                                  dropout_p=self.dropout if self.training else 0.0)
        return self.out(attended.transpose(1, 2).reshape(batch, length, width))


class _Block(nn.Module):
    """Pre-norm transformer block: attention and a 4x MLP, each added to its input."""

    def __init__(self, width: int, heads: int, dropout: float):
        super().__init__()
        self.norm1, self.norm2 = nn.LayerNorm(width), nn.LayerNorm(width)
        self.attention = _Attention(width, heads, dropout)
        self.mlp = nn.Sequential(nn.Linear(width, 4 * width), nn.GELU(), nn.Linear(4 * width, width),
                                 nn.Dropout(dropout))

    def forward(self, x: torch.Tensor, cache: list | None = None) -> torch.Tensor:
        x = x + self.attention(self.norm1(x), cache)
        return x + self.mlp(self.norm2(x))


class CodePrior(nn.Module):
    """p(codes) = prod_t p(code_t | codes_<t) over the `length` positions of the grid in raster order (64: 8x8)."""

    def __init__(self, config: VQVAEConfig, length: int = GRID * GRID):
        super().__init__()
        width, self.size = config.prior_width, config.codebook_size
        self.embed = nn.Embedding(config.codebook_size + 1, width)  # the last index is the start token
        self.position = nn.Parameter(torch.randn(1, length, width) * 0.02)
        self.blocks = nn.ModuleList(_Block(width, config.prior_heads, config.prior_dropout)
                                    for _ in range(config.prior_layers))
        self.norm, self.head = nn.LayerNorm(width), nn.Linear(width, config.codebook_size)

    def forward(self, codes: torch.Tensor) -> torch.Tensor:
        """Codes (B, L) -> logits (B, L, K): position t predicted from the codes before it."""
        start = torch.full_like(codes[:, :1], self.size)
        x = self.embed(torch.cat([start, codes[:, :-1]], 1)) + self.position
        for block in self.blocks:
            x = block(x)
        return self.head(self.norm(x))

    def nll(self, codes: torch.Tensor) -> torch.Tensor:
        """Mean negative log-likelihood per code (nats) of codes (B, L)."""
        return F.cross_entropy(self(codes).flatten(0, 1).float(), codes.flatten())

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator, temperature: float = 1.0) -> torch.Tensor:
        """n code sequences (n, L), drawn position by position; randomness from `generator` (CPU)."""
        device = self.position.device
        caches = [[] for _ in self.blocks]
        token = torch.full((n, 1), self.size, dtype=torch.long, device=device)
        codes = []
        for position in range(self.position.shape[1]):
            x = self.embed(token) + self.position[:, position:position + 1]
            for block, cache in zip(self.blocks, caches):
                x = block(x, cache)
            probabilities = (self.head(self.norm(x))[:, -1].float() / temperature).softmax(-1)
            token = torch.multinomial(probabilities.cpu(), 1, generator=generator).to(device)
            codes.append(token)
        return torch.cat(codes, 1)


class VQVAE(nn.Module):
    """Encoder, quantiser, decoder and code prior for 1x32x32 images in [-1, 1]; weights drawn from config.seed."""

    def __init__(self, config: VQVAEConfig):
        super().__init__()
        self.config = config
        self.latent_dim = GRID * GRID  # a code is a grid of 64 indices
        w, d = config.width, config.code_dim
        with seeded(config.seed):
            self.encoder = nn.Sequential(
                nn.Conv2d(CHANNELS, w, 4, 2, 1), nn.ReLU(),           # (B, w, 16, 16)
                nn.Conv2d(w, 2 * w, 4, 2, 1), nn.ReLU(),              # (B, 2w, 8, 8)
                nn.Conv2d(2 * w, 2 * w, 3, 1, 1), _Residual(2 * w), _Residual(2 * w), nn.ReLU(),
                nn.Conv2d(2 * w, d, 1),                               # (B, d, 8, 8)
            )
            self.quantizer = Quantizer(config.codebook_size, d, config.codebook_decay)
            self.decoder = nn.Sequential(
                nn.Conv2d(d, 2 * w, 3, 1, 1), _Residual(2 * w), _Residual(2 * w), nn.ReLU(),
                nn.ConvTranspose2d(2 * w, w, 4, 2, 1), nn.ReLU(),      # (B, w, 16, 16)
                nn.ConvTranspose2d(w, CHANNELS, 4, 2, 1), nn.Tanh(),  # (B, 1, 32, 32)
            )
            self.prior = CodePrior(config)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Reconstruction (B, 1, 32, 32), codes (B, 8, 8) and the commitment loss of images (B, 1, 32, 32)."""
        check_image_batch(x)
        quantized, codes, commitment = self.quantizer(self.encoder(x))
        return self.decoder(quantized), codes, commitment

    @torch.no_grad()
    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Images (B, 1, 32, 32) -> code sequences (B, 64), quantiser left as it is."""
        check_image_batch(x)
        was_training = self.quantizer.training
        self.quantizer.eval()
        _, codes, _ = self.quantizer(self.encoder(x))
        self.quantizer.train(was_training)
        return codes.flatten(1)

    def sample_latent(self, n: int, generator: torch.Generator) -> torch.Tensor:
        """n code sequences (n, 64) drawn from the prior at `config.prior_temperature`."""
        return self.prior.sample(n, generator, self.config.prior_temperature)

    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        """Code sequences (B, 64) -> decoded images (B, 1, 32, 32) in [-1, 1]."""
        return self.decoder(self.quantizer.lookup(codes.view(-1, GRID, GRID)))


def vqvae_loss(x: torch.Tensor, reconstruction: torch.Tensor, commitment: torch.Tensor,
               beta: float) -> dict[str, torch.Tensor]:
    """Per image: the Gaussian negative log-likelihood with its optimal shared variance (nats, as the VAE's), plus the
    commitment, weighted `beta` against the squared error as in the plain VQ-VAE loss (the likelihood's gradient is
    the squared error's times D / (2 mse)); and the parts."""
    pixels = IMAGE_SIZE * IMAGE_SIZE * CHANNELS
    mse = F.mse_loss(reconstruction.float(), x)
    nll = 0.5 * pixels * (torch.log(2 * math.pi * mse.clamp_min(1e-6)) + 1.0)
    weight = beta * 0.5 * pixels / mse.detach().clamp_min(1e-6)
    return {"loss": nll + weight * commitment, "nll": nll, "commitment": commitment, "mse": mse}
