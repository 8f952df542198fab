"""handgen: generate 32x32 hand X-rays with a VAE and a DCGAN, trained from scratch.

Public API (each name lives in the module that owns its concern):
    data:        load_folder, find_folder, generator_split, ImageSet, IMAGE_SIZE, CHANNELS
    models:      VAE, VAEConfig, GAN, GANConfig, HandClassifier, ClassifierConfig
    training:    train_vae, train_gan, train_generator, train_classifier, fit, TrainingDiverged
    detection:   predict_proba, classify_folder, write_predictions_csv, detector_sources, fit_detector
    realism:     build_yardstick, fool_rate, two_sample_test, train_judge
    checkpoints: load_model, read_checkpoint
    sampling:    generate, sample_to_folder, image_grid
    runtime:     pick_device, seed_everything, quick_mode, output_root
"""

from .checkpoint import CheckpointError, load_model, read_checkpoint
from .classifier import ClassifierConfig, HandClassifier, classify_folder, predict_proba, write_predictions_csv
from .data import CHANNELS, IMAGE_SIZE, DataError, ImageSet, find_folder, generator_split, load_folder
from .evaluation import build_yardstick
from .gan import GAN, GANConfig
from .realism import fool_rate, train_judge, two_sample_test
from .runtime import VERSION, output_root, pick_device, quick_mode, seed_everything
from .sample import generate, image_grid, sample_to_folder
from .train import TrainingDiverged, fit, fit_detector, train_classifier, train_gan, train_generator, train_vae
from .vae import VAE, VAEConfig
from .zoo import detector_sources

__all__ = [
    "CHANNELS", "CheckpointError", "ClassifierConfig", "classify_folder", "DataError", "find_folder", "fit",
    "GAN", "GANConfig", "generate", "generator_split", "HandClassifier", "image_grid", "IMAGE_SIZE",
    "ImageSet", "load_folder", "load_model", "output_root", "pick_device", "predict_proba",
    "build_yardstick", "detector_sources", "fit_detector", "fool_rate", "quick_mode", "train_generator",
    "train_judge", "two_sample_test", "read_checkpoint", "sample_to_folder", "seed_everything",
    "train_classifier", "train_gan", "train_vae", "TrainingDiverged", "VAE", "VAEConfig",
    "write_predictions_csv",
]
__version__ = VERSION
