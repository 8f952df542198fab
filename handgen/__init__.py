"""handgen: generate 32x32 hand X-rays with a VAE and a DCGAN, trained from scratch.

Public API (each name lives in the module that owns its concern):
    data:        load_folder, find_folder, generator_split, ImageSet, IMAGE_SIZE, CHANNELS
    models:      VAE, VAEConfig, GAN, GANConfig, HandClassifier, ClassifierConfig
    training:    train_vae, train_gan, train_classifier, fit, TrainingDiverged
    detection:   predict_proba, classify_folder, write_predictions_csv, prepare_detector_data
    checkpoints: load_model, read_checkpoint
    sampling:    generate, sample_to_folder, image_grid
    runtime:     pick_device, seed_everything, quick_mode, output_root
"""

from .checkpoint import CheckpointError, load_model, read_checkpoint
from .classifier import ClassifierConfig, HandClassifier, classify_folder, predict_proba, write_predictions_csv
from .data import CHANNELS, IMAGE_SIZE, DataError, ImageSet, find_folder, generator_split, load_folder
from .detection import prepare_detector_data
from .gan import GAN, GANConfig
from .runtime import output_root, pick_device, quick_mode, seed_everything
from .sample import generate, image_grid, sample_to_folder
from .train import TrainingDiverged, fit, train_classifier, train_gan, train_vae
from .vae import VAE, VAEConfig

__all__ = [
    "CHANNELS", "CheckpointError", "ClassifierConfig", "classify_folder", "DataError", "find_folder", "fit",
    "GAN", "GANConfig", "generate", "generator_split", "HandClassifier", "image_grid", "IMAGE_SIZE",
    "ImageSet", "load_folder", "load_model", "output_root", "pick_device", "predict_proba",
    "prepare_detector_data", "quick_mode", "read_checkpoint", "sample_to_folder", "seed_everything",
    "train_classifier", "train_gan", "train_vae", "TrainingDiverged", "VAE", "VAEConfig",
    "write_predictions_csv",
]
__version__ = "0.1.0"
