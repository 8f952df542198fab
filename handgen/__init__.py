"""handgen: generate 32x32 hand X-rays with a VAE and a DCGAN, trained from scratch.

Public API (each name lives in the module that owns its concern):
    data:        load_folder, find_folder, generator_split, ImageSet, IMAGE_SIZE, CHANNELS
    models:      VAE, VAEConfig, GAN, GANConfig
    training:    train_vae, train_gan, fit, TrainingDiverged
    checkpoints: load_model, read_checkpoint
    sampling:    generate, sample_to_folder, image_grid
    runtime:     pick_device, seed_everything, quick_mode, output_root
"""

from .checkpoint import CheckpointError, load_model, read_checkpoint
from .data import CHANNELS, IMAGE_SIZE, DataError, ImageSet, find_folder, generator_split, load_folder
from .gan import GAN, GANConfig
from .runtime import output_root, pick_device, quick_mode, seed_everything
from .sample import generate, image_grid, sample_to_folder
from .train import TrainingDiverged, fit, train_gan, train_vae
from .vae import VAE, VAEConfig

__all__ = [
    "CHANNELS", "IMAGE_SIZE", "CheckpointError", "DataError", "GAN", "GANConfig", "ImageSet", "TrainingDiverged",
    "VAE", "VAEConfig", "find_folder", "fit", "generate", "generator_split", "image_grid", "load_folder",
    "load_model", "output_root", "pick_device", "quick_mode", "read_checkpoint", "sample_to_folder",
    "seed_everything", "train_gan", "train_vae",
]
__version__ = "0.1.0"
