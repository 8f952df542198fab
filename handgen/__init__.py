"""handgen: generate 32x32 hand X-rays with a VAE and a DCGAN, and detect generated ones, all trained from scratch.

Modules, by what they are for (each owns one concern; none imports one listed after it in its group's direction):
    core:       data (images, labels, folders), runtime (device, seeds, paths, atomic writes),
                checkpoint (the format and the family registry), train (one loop, a step per family),
                results (JSON lines, tables)
    generators: vae, gan, sample (codes to images to JPEG sets)
    detector:   classifier (the network), detection (its data, the folder labels, the CSV), zoo (our varied
                generators' samples), crossval (out-of-fold predictions by student model)
    yardstick:  metrics (pure functions), realism (the judge, the two-sample test, pixel statistics)
    faces:      cli (`python -m handgen`), tuning (Optuna studies), plots (notebook figures)

The names below are the public API: what the notebooks and scripts import.
"""

from .checkpoint import (
    FAMILIES,
    GENERATOR_FAMILIES,
    CheckpointError,
    load_model,
    read_checkpoint,
    save_checkpoint,
    strip_optimizer_state,
)
from .classifier import Detector, DetectorConfig, fold_batch_norms, predict_labels, predict_proba
from .crossval import (
    cross_fitted_balanced_accuracy,
    fit_decision_offsets,
    offset_table,
    read_out_of_fold,
    schemes_in,
)
from .data import (
    CHANNELS,
    GAN_LABEL,
    HOLDOUT_IMAGES,
    IMAGE_SIZE,
    LABELS,
    REAL,
    REAL_HANDS,
    VAE_LABEL,
    DataError,
    ImageSet,
    LabelledSet,
    data_summary,
    decode_image,
    describe_folder,
    find_folder,
    generator_split,
    jpeg_round_trip,
    list_image_files,
    load_folder,
    real_hands_split,
    to_float,
    to_uint8,
)
from .detection import (
    PROVIDED_FOLDERS,
    RESAVES,
    CopyCheck,
    DataRecipe,
    DetectorSources,
    classify_folder,
    classify_images,
    detector_sources,
    load_detector,
    provided_examples,
    resave_changes,
    write_predictions_csv,
)
from .gan import GAN, GANConfig, discriminator_loss, generator_loss, recalibrate_batchnorm
from .metrics import confusion_matrix, copy_share, nearest_distances, per_class_recall
from .plots import LiveLosses, plot_confusions, plot_curves, plot_study, show_grids
from .realism import (
    REAL_FLOOR,
    TWO_SAMPLE_CONFIG,
    TWO_SAMPLE_SIZE,
    PixelStatistics,
    Yardstick,
    blurred,
    build_yardstick,
    fool_rate,
    images_of,
    train_judge,
    two_sample_test,
)
from .results import append_rows, format_table, read_rows, with_cpu_minutes
from .runtime import (
    CHECKPOINTS,
    RESULTS,
    RUNS,
    VERSION,
    cpu_facts,
    device_summary,
    fast_bfloat16,
    mixed_precision,
    output_root,
    pick_device,
    quick_mode,
    seed_everything,
)
from .sample import generate, image_grid, sample_to_folder
from .train import (
    REENCODE_QUALITIES,
    Task,
    TrainingDiverged,
    detector_task,
    fit,
    fit_detector,
    gan_task,
    mean_score,
    train_detector,
    train_gan,
    train_generator,
    train_one_epoch,
    train_prior,
    train_vae,
    train_vqvae,
    vae_task,
    vqvae_task,
)
from .vae import VAE, VAEConfig
from .vqvae import VQVAE, VQVAEConfig

__version__ = VERSION
__all__ = [
    "append_rows", "blurred", "build_yardstick", "CHANNELS", "CheckpointError", "CHECKPOINTS", "classify_folder",
    "classify_images", "confusion_matrix", "copy_share", "CopyCheck", "cpu_facts", "cross_fitted_balanced_accuracy",
    "data_summary", "DataError", "DataRecipe", "decode_image", "describe_folder", "Detector", "detector_sources",
    "detector_task", "DetectorConfig", "DetectorSources", "device_summary", "discriminator_loss", "FAMILIES",
    "fast_bfloat16", "find_folder", "fit", "fit_decision_offsets", "fit_detector", "fold_batch_norms", "fool_rate",
    "format_table", "GAN", "GAN_LABEL", "gan_task", "GANConfig", "generate", "GENERATOR_FAMILIES", "generator_loss",
    "generator_split", "HOLDOUT_IMAGES", "image_grid", "IMAGE_SIZE", "images_of", "ImageSet", "jpeg_round_trip",
    "LabelledSet", "LABELS", "list_image_files", "LiveLosses", "load_detector", "load_folder", "load_model",
    "mean_score", "mixed_precision", "nearest_distances", "offset_table", "output_root", "per_class_recall",
    "pick_device", "PixelStatistics", "plot_confusions", "plot_curves", "plot_study", "predict_labels", "predict_proba",
    "provided_examples", "PROVIDED_FOLDERS", "quick_mode", "read_checkpoint", "read_out_of_fold", "read_rows", "REAL",
    "REAL_FLOOR", "REAL_HANDS", "real_hands_split", "recalibrate_batchnorm", "REENCODE_QUALITIES", "resave_changes",
    "RESAVES", "RESULTS", "RUNS", "sample_to_folder", "save_checkpoint", "schemes_in", "seed_everything", "show_grids",
    "strip_optimizer_state", "Task", "to_float", "to_uint8", "train_detector", "train_gan", "train_generator",
    "train_judge", "train_one_epoch", "train_prior", "train_vae", "train_vqvae", "TrainingDiverged",
    "TWO_SAMPLE_CONFIG", "TWO_SAMPLE_SIZE", "two_sample_test", "VAE", "VAE_LABEL", "vae_task", "VAEConfig", "VERSION",
    "VQVAE", "vqvae_task", "VQVAEConfig", "with_cpu_minutes", "write_predictions_csv", "Yardstick",
]
