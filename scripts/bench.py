"""Speed benchmark: `python scripts/bench.py` prints one table; every comparison is measured in the same run.

The machine may be shared and noisy, so each figure is the median of several repeats after a warm-up,
and the conclusions are read from ratios between rows measured side by side, never from seconds alone.

* training steps of the VQ-VAE (its autoencoder, then its prior), the GAN (D and G) and the detector at their
  default configs, fed three ways:
  bare steps on one batch already in memory; `fit`'s epoch path (decoded once, batches indexed from a
  uint8 tensor); and the naive course-code pipeline (a `Dataset` that opens each JPEG with PIL in
  `__getitem__`, through a `DataLoader`);
* each step's floating-point work (counted from the layer shapes by `torch.utils.flop_counter`) per second,
  against the machine's ceiling measured in the same run (a large convolution and a large matrix product);
* what might move the speed: channels-last layout, thread count, batch size of inference, fused Adam, the
  detector's JPEG re-saving;
* the data path: decoding the 8000 real hands, labelling the test hands, writing 300 samples, and the JPEG round
  trip one file per image against strips of images;
* `--only epoch`: what a GAN epoch does besides its steps (batch-norm recalibration, held-out scores, checkpoint),
  against its steps, on the thread count given;
* the code prior's step at other shapes than the adopted one (what a cheaper prior would save), with its attention
  dropout moved to the output, and over the 16x16 grid of `scripts/fine_grid.py`.

* bfloat16 autocast against float32 for each family's step (does this CPU's bfloat16 hardware pay?);
* each family's step with its networks compiled by `torch.compile`, against eager, and the compilation's time.

`--only SECTION` times one section alone (training, variants, data, epoch, prior, precision, compile).

`--make-run` also runs `make run` and reports its wall time and peak memory (slow: the whole job).
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import functools
import resource
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from fine_grid import FineGridVQVAE, output_dropout
from torch.utils.data import DataLoader, Dataset
from torch.utils.flop_counter import FlopCounterMode

from handgen import (
    GAN,
    HOLDOUT_IMAGES,
    REAL_HANDS,
    REENCODE_QUALITIES,
    VQVAE,
    Detector,
    DetectorConfig,
    GANConfig,
    Task,
    VQVAEConfig,
    append_rows,
    cpu_facts,
    decode_image,
    detector_task,
    discriminator_loss,
    fast_bfloat16,
    find_folder,
    fold_batch_norms,
    format_table,
    gan_task,
    generator_loss,
    jpeg_round_trip,
    list_image_files,
    load_folder,
    load_model,
    mixed_precision,
    predict_proba,
    recalibrate_batchnorm,
    sample_to_folder,
    save_checkpoint,
    to_float,
    train_one_epoch,
    vqvae_task,
)


def median_seconds(work: Callable[[], object], repeats: int = 5, warmup: int = 1) -> float:
    """Median wall time of `work()` over `repeats` runs, after `warmup` untimed runs."""
    for _ in range(warmup):
        work()
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        work()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def interleaved_median_seconds(first: Callable[[], object], second: Callable[[], object],
                               repeats: int = 5) -> tuple[float, float]:
    """Median wall times of two pieces of work timed in alternation (after one warm-up run of each)."""
    first(), second()
    times: tuple[list[float], list[float]] = ([], [])
    for _ in range(repeats):
        for work, record in ((first, times[0]), (second, times[1])):
            started = time.perf_counter()
            work()
            record.append(time.perf_counter() - started)
    return statistics.median(times[0]), statistics.median(times[1])


def ceiling_gflops(repeats: int = 5) -> dict[str, float]:
    """The machine's own peak, measured now: a large 3x3 convolution and a large matrix product (fp32)."""
    images, conv = torch.randn(64, 128, 32, 32), torch.nn.Conv2d(128, 128, 3, padding=1, bias=False)
    a, b = torch.randn(2048, 2048), torch.randn(2048, 2048)
    with torch.inference_mode():
        conv_seconds = median_seconds(lambda: conv(images), repeats)
        matmul_seconds = median_seconds(lambda: a @ b, repeats)
    conv_flops = 2 * 128 * 128 * 9 * 32 * 32 * 64
    return {"conv": conv_flops / conv_seconds / 1e9, "matmul": 2 * 2048 ** 3 / matmul_seconds / 1e9}


def flops_of(work: Callable[[], object]) -> int:
    """Floating-point operations of one call (forward and backward), counted from the layer shapes."""
    with FlopCounterMode(display=False) as counter:
        work()
    return counter.get_total_flops()


class NaiveJpegDataset(Dataset):
    """What most course code does: open and decode one JPEG per `__getitem__` (the baseline)."""

    def __init__(self, files: list[Path], labels: torch.Tensor):
        self.files, self.labels = files, labels

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        image = torch.tensor(decode_image(self.files[index]))[None]
        return to_float(image), self.labels[index]


def prior_task(config: VQVAEConfig, model: VQVAE | None = None) -> Task:
    """The VQ-VAE's prior stage, entered (its steps train the prior from the first one); `model` built from
    `config` unless given."""
    task = vqvae_task(model if model is not None else VQVAE(config), config, "cpu", prior_only=True)
    task.begin_epoch(0)
    return task


def family_tasks(images: int) -> dict[str, Callable[[], Task]]:
    """Fresh tasks at the default configs: the VQ-VAE's two stages apart (its prior's step also encodes)."""
    steps = images // DetectorConfig().batch_size
    return {
        "VQ-VAE autoencoder": lambda: vqvae_task(VQVAE(VQVAEConfig()), VQVAEConfig(), "cpu"),
        "VQ-VAE prior": lambda: prior_task(VQVAEConfig()),
        "GAN": lambda: gan_task(GAN(GANConfig()), GANConfig(), "cpu"),
        "detector": lambda: detector_task(Detector(DetectorConfig()), DetectorConfig(), steps, "cpu"),
    }


def step_row(name: str, task: Task, real: torch.Tensor, files: list[Path], ceiling: float, repeats: int) -> dict:
    """Images per second of one family's step: bare, through `fit`'s epoch path, through the naive pipeline."""
    labels = torch.arange(len(real)) % 3
    batch_size = task.config.batch_size
    batch, batch_labels, counter = to_float(real[:batch_size]), labels[:batch_size], iter(range(10 ** 9))

    def bare() -> None:
        task.step(batch, batch_labels, next(counter))

    def naive() -> None:
        loader = DataLoader(NaiveJpegDataset(files, labels), batch_size=batch_size, shuffle=True, drop_last=True)
        for images, image_labels in loader:
            task.step(images, image_labels, next(counter))

    def bare_epoch() -> None:  # as many bare steps as an epoch has, on the one batch
        for _ in range(len(real) // batch_size):
            bare()

    step_flops = flops_of(bare)
    # bare and epoch-path passes alternate, so a slow spell of a shared machine hits both alike
    bare_seconds, epoch_seconds = interleaved_median_seconds(
        bare_epoch, lambda: train_one_epoch(task, real, labels, 0, progress=False), repeats)
    naive_seconds = median_seconds(naive, max(2, repeats // 2))
    epoch_images = len(real) // batch_size * batch_size
    step_seconds = bare_seconds * batch_size / epoch_images
    bare_rate, epoch_rate, naive_rate = (epoch_images / bare_seconds, epoch_images / epoch_seconds,
                                         epoch_images / naive_seconds)
    return {"step": name, "batch": batch_size, "bare img/s": round(bare_rate),
            "epoch img/s": round(epoch_rate), "epoch/bare": round(epoch_rate / bare_rate, 3),
            "naive img/s": round(naive_rate), "epoch/naive": round(epoch_rate / naive_rate, 2),
            "GFLOP/step": round(step_flops / 1e9, 2), "GFLOP/s": round(step_flops / step_seconds / 1e9, 1),
            "share of ceiling": round(step_flops / step_seconds / 1e9 / ceiling, 3)}


def training_rows(real: torch.Tensor, files: list[Path], ceiling: float, repeats: int, images: int) -> list[dict]:
    """One `step_row` per family, on the first `images` real hands."""
    return [step_row(name, make_task(), real[:images], files[:images], ceiling, repeats)
            for name, make_task in family_tasks(images).items()]


def inference_layout_rows(model: Detector, images: torch.Tensor, repeats: int) -> list[dict]:
    """Detector inference over `images` in each memory layout and batch size, with and without its batch norms
    folded into the convolutions (what `predict_proba` chose: folded, channels-last, 256)."""
    rows = []
    for folded in (False, True):
        for layout in (torch.contiguous_format, torch.channels_last):
            network = copy.deepcopy(model).eval()
            network = (fold_batch_norms(network) if folded else network).to(memory_format=layout)
            for batch_size in (1024, 256):
                seconds = median_seconds(lambda: _predict(network, images, batch_size, layout), repeats)  # noqa: B023
                rows.append({"variant": f"predict, {str(layout).split('.')[-1]}, batch {batch_size}"
                                        + (", batch norms folded" if folded else ""),
                             "img/s": round(len(images) / seconds)})
    return rows


@torch.inference_mode()
def _predict(network: torch.nn.Module, images: torch.Tensor, batch_size: int, layout: torch.memory_format) -> None:
    for chunk in images.split(batch_size):
        network(to_float(chunk).contiguous(memory_format=layout))


def training_variant_rows(real: torch.Tensor, repeats: int) -> list[dict]:
    """Training steps in channels-last layout, and with 1 thread instead of all, against the defaults."""
    rows = []
    threads = torch.get_num_threads()
    for name, make_task in family_tasks(len(real)).items():
        for variant in ("default", "channels_last", "1 thread"):
            task = make_task()
            layout = torch.channels_last if variant == "channels_last" else torch.contiguous_format
            task.model.to(memory_format=layout)
            batch = to_float(real[:task.config.batch_size]).contiguous(memory_format=layout)
            labels = torch.arange(len(batch)) % 3
            torch.set_num_threads(1 if variant == "1 thread" else threads)
            seconds = median_seconds(lambda: task.step(batch, labels, 10), repeats * 4, warmup=3)  # noqa: B023
            rows.append({"variant": f"{name} step, {variant}", "img/s": round(len(batch) / seconds)})
        torch.set_num_threads(threads)
    return rows


def former_gan_step(config: GANConfig):
    """The GAN step as it was before the speed work: contiguous layout, and D's weight gradients computed in G's
    step too (then thrown away). Same maths as `gan_task`'s step, so the two compare on speed alone."""
    gan = GAN(config)
    betas = (config.beta1, config.beta2)
    opt_d = torch.optim.Adam(gan.discriminator.parameters(), lr=config.lr_discriminator, betas=betas)
    opt_g = torch.optim.Adam(gan.generator.parameters(), lr=config.lr_generator, betas=betas)

    def step(real: torch.Tensor, _labels, _step: int) -> None:
        noise = torch.randn(2, real.shape[0], config.latent_dim)
        fake = gan.generator(noise[0])
        loss_d = discriminator_loss(gan.discriminator(real), gan.discriminator(fake.detach()), config.loss)
        opt_d.zero_grad(set_to_none=True)
        loss_d.backward()
        opt_d.step()
        loss_g = generator_loss(gan.discriminator(gan.generator(noise[1])), None, config.loss)
        opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        opt_g.step()

    return step


def gan_step_rows(real: torch.Tensor, repeats: int) -> list[dict]:
    """Images per second of the GAN step before and after the speed work, timed in alternation in one run."""
    config = GANConfig()
    batch = to_float(real[:config.batch_size])
    former, current = former_gan_step(config), gan_task(GAN(config), config, "cpu").step

    def timed(step) -> Callable[[], None]:
        def work() -> None:
            with mixed_precision(torch.device("cpu"), config.mixed_precision):
                for index in range(4):
                    step(batch, None, index)
        return work

    before, after = interleaved_median_seconds(timed(former), timed(current), repeats)
    wide = GANConfig(discriminator_width=32)
    _, wider = interleaved_median_seconds(timed(current), timed(gan_task(GAN(wide), wide, "cpu").step), repeats)
    rate = lambda seconds: round(4 * len(batch) / seconds)  # noqa: E731
    return [{"variant": "GAN step before: contiguous, D weight gradients in G's step", "img/s": rate(before)},
            {"variant": f"GAN step now: channels-last, D frozen in G's step ({before / after:.2f}x)",
             "img/s": rate(after)},
            {"variant": f"GAN step now, discriminator width 32 ({wider / after:.2f}x the time)", "img/s": rate(wider)}]


def _moved_dropout(config: VQVAEConfig) -> VQVAE:
    model = VQVAE(config)
    output_dropout(model.prior, config.prior_dropout)
    return model


# name: (config changes, the model they build); the fine grid's prior is over 256 codes (`scripts/fine_grid.py`)
PRIOR_SHAPES = {"4x128 (adopted)": ({}, VQVAE), "3x128": ({"prior_layers": 3}, VQVAE),
                "4x96": ({"prior_width": 96}, VQVAE),
                "4x128, dropout on attention's output": ({}, _moved_dropout),
                "16x16 grid, 4x64, dropout on attention's weights": (
                    {"prior_width": 64}, lambda config: FineGridVQVAE(config, move_dropout=False)),
                "16x16 grid, 4x64, dropout on attention's output": ({"prior_width": 64}, FineGridVQVAE)}


def four_steps(task: Task, batch: torch.Tensor, labels: torch.Tensor | None,
               bfloat16: bool | None = None) -> Callable[[], None]:
    """Work of four training steps of `task` on one batch: under bfloat16 autocast where the task would use it, or
    as `bfloat16` forces."""
    def work() -> None:
        enabled = task.mixed_precision and fast_bfloat16(torch.device("cpu")) if bfloat16 is None else bfloat16
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=enabled):
            for index in range(4):
                task.step(batch, labels, index)
    return work


def prior_shape_rows(real: torch.Tensor, repeats: int) -> list[dict]:
    """Images per second of the prior's step at each shape of `PRIOR_SHAPES`, timed in alternation with the
    adopted one (its time over theirs: how much of the prior's stage a shape would save or add)."""
    def timed(settings: dict, build: Callable[[VQVAEConfig], VQVAE] = VQVAE) -> Callable[[], None]:
        config = VQVAEConfig(**settings)
        return four_steps(prior_task(config, build(config)), to_float(real[:config.batch_size]), None)

    adopted, rows = timed({}), []
    for name, (settings, build) in PRIOR_SHAPES.items():
        base, seconds = interleaved_median_seconds(adopted, timed(settings, build), repeats)
        rows.append({"variant": f"prior step, {name} ({seconds / base:.2f}x the adopted time)",
                     "img/s": round(4 * VQVAEConfig().batch_size / seconds)})
    return rows


def precision_rows(real: torch.Tensor, repeats: int) -> list[dict]:
    """Each family's step under bfloat16 autocast against float32, timed in alternation: whether this CPU's
    bfloat16 units pay (`runtime.fast_bfloat16` turns autocast on wherever they exist)."""
    rows = []
    for name, make_task in family_tasks(len(real)).items():
        task = make_task()
        batch = to_float(real[:task.config.batch_size])
        labels = torch.arange(len(batch)) % 3
        float32, bfloat16 = interleaved_median_seconds(four_steps(task, batch, labels, bfloat16=False),
                                                       four_steps(task, batch, labels, bfloat16=True), repeats)
        rows.append({"variant": f"{name} step, bfloat16 autocast ({bfloat16 / float32:.2f}x the float32 time)",
                     "img/s": round(4 * len(batch) / bfloat16)})
        rows.append({"variant": f"{name} step, float32", "img/s": round(4 * len(batch) / float32)})
    return rows


def compile_rows(real: torch.Tensor, repeats: int) -> list[dict]:
    """Each family's step with its networks compiled (`torch.compile`, inductor) against eager, timed in alternation
    after the compiled one's warm-up, whose time (the compilation) is reported beside it."""
    rows = []
    for name, make_task in family_tasks(len(real)).items():
        eager, compiled = make_task(), make_task()
        for network in compiled.model.children():
            network.compile()
        batch = to_float(real[:eager.config.batch_size])
        labels = torch.arange(len(batch)) % 3
        started = time.perf_counter()
        four_steps(compiled, batch, labels)()
        warmup = time.perf_counter() - started
        eager_seconds, compiled_seconds = interleaved_median_seconds(four_steps(eager, batch, labels),
                                                                     four_steps(compiled, batch, labels), repeats)
        rows.append({"variant": f"{name} step, compiled ({compiled_seconds / eager_seconds:.2f}x the eager time; "
                                f"first 4 steps {warmup:.0f} s)", "img/s": round(4 * len(batch) / compiled_seconds)})
        rows.append({"variant": f"{name} step, eager", "img/s": round(4 * len(batch) / eager_seconds)})
        print(format_table(rows[-2:]), flush=True)
    return rows


def detector_augmentation_rows(real: torch.Tensor, repeats: int) -> list[dict]:
    """The detector's step with and without its augmentation's JPEG re-saving (every image, on the CPU through
    Pillow), on all threads and on one: how much of the step is the re-saving, which a second thread cannot share."""
    rows = []
    threads = torch.get_num_threads()
    for reencode in (DetectorConfig().reencode, 0.0):
        config = dataclasses.replace(DetectorConfig(), reencode=reencode)
        for count in (threads, 1):
            task = detector_task(Detector(config), config, 1000, "cpu")
            batch = to_float(real[:config.batch_size])
            labels = torch.arange(len(batch)) % 3
            torch.set_num_threads(count)
            seconds = median_seconds(lambda: task.step(batch, labels, 10), repeats * 4, warmup=3)  # noqa: B023
            rows.append({"variant": f"detector step, re-saved share {reencode}, {count} thread(s)",
                         "img/s": round(len(batch) / seconds)})
    torch.set_num_threads(threads)
    return rows


def optimizer_rows(repeats: int) -> list[dict]:
    """Adam's update for the GAN's parameters: the default multi-tensor version against the fused kernel."""
    gan, rows = GAN(GANConfig()), []
    for fused in (False, True):
        parameters = list(gan.parameters())
        for parameter in parameters:
            parameter.grad = torch.randn_like(parameter)
        optimizer = torch.optim.Adam(parameters, lr=1e-4, fused=fused)
        seconds = median_seconds(optimizer.step, repeats * 4, warmup=3)
        rows.append({"variant": f"GAN Adam update, {'fused' if fused else 'default (foreach)'}",
                     "img/s": round(GANConfig().batch_size / seconds)})
    return rows


def data_path_rows(repeats: int, detector_checkpoint: str, generator_checkpoint: str) -> list[dict]:
    """Decoding the real hands, labelling the test hands (decode + predict), writing 300 samples."""
    rows = []
    real_seconds = median_seconds(lambda: load_folder(REAL_HANDS, warn=False), repeats, warmup=1)
    rows.append({"task": f"decode {len(load_folder(REAL_HANDS, warn=False))} real hands", "seconds": real_seconds})
    if Path(detector_checkpoint).is_file():
        model, _ = load_model(detector_checkpoint, "cpu")
        test = load_folder("test_hands", warn=False)
        decode = median_seconds(lambda: load_folder("test_hands", warn=False), repeats)
        predict = median_seconds(lambda: predict_proba(model, test.images), repeats)
        rows += [{"task": f"decode {len(test)} test hands", "seconds": decode},
                 {"task": f"predict {len(test)} test hands", "seconds": predict},
                 {"task": f"label {len(test)} test hands (decode + predict)", "seconds": decode + predict}]
    if Path(generator_checkpoint).is_file():
        generator, _ = load_model(generator_checkpoint, "cpu")
        with tempfile.TemporaryDirectory() as scratch:
            seconds = median_seconds(lambda: sample_to_folder(generator, Path(scratch) / "GAN_hands", 300), repeats)
        rows.append({"task": "generate and write 300 GAN samples", "seconds": seconds})
    return [{"task": row["task"], "seconds": round(row["seconds"], 3)} for row in rows]


def jpeg_rows(real: torch.Tensor, repeats: int) -> list[dict]:
    """`jpeg_round_trip` of batches of 128 (strips of images, one file per quality) against one call, so one file,
    per image: at the data's quality and at the detector's re-saving qualities (drawn per image)."""
    images = real[:1024]
    drawn = torch.randint(REENCODE_QUALITIES[0], REENCODE_QUALITIES[1] + 1, (len(images),),
                          generator=torch.Generator().manual_seed(0)).tolist()
    rows = []
    for name, qualities in (("quality 75", [75] * len(images)), ("qualities 60-100 drawn per image", drawn)):
        for way, size in (("one file per image", 1), ("batches of 128, in strips", 128)):
            work = functools.partial(_round_trips, images, qualities, size)
            rows.append({"task": f"JPEG round trip of {len(images)} hands, {name}, {way}",
                         "seconds": round(median_seconds(work, repeats), 3)})
    return rows


def _round_trips(images: torch.Tensor, qualities: list[int], batch: int) -> None:
    for start in range(0, len(images), batch):
        jpeg_round_trip(images[start:start + batch], qualities[start:start + batch])


def gan_epoch_rows(real: torch.Tensor, repeats: int) -> list[dict]:
    """A GAN epoch's work besides its steps, timed apart: `gan_task`'s own end of epoch, whole (the EMA generator's
    batch-norm recalibration, then D's mean score on the held-out and as many training hands), the recalibration
    alone beside it, and `fit`'s checkpoint. Timing `end_epoch` itself keeps the row true when it changes."""
    config = GANConfig()
    gan = GAN(config)
    train, held_out = real[HOLDOUT_IMAGES:], real[:HOLDOUT_IMAGES]
    task = gan_task(gan, config, "cpu", validation=held_out)
    batch = to_float(train[:config.batch_size])

    def step() -> None:  # as `fit` takes it: under bfloat16 autocast where that is fast
        with mixed_precision(torch.device("cpu"), task.mixed_precision):
            task.step(batch, None, 1)

    step_seconds = median_seconds(step, repeats * 4, warmup=3)
    steps = len(train) // config.batch_size
    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / "gan.pt"
        checkpoint = median_seconds(lambda: save_checkpoint(path, gan, config, epoch=1, history=[],
                                                            optimizers=task.optimizers), repeats)
    end_epoch = median_seconds(lambda: task.end_epoch(train, False), repeats)
    recalibration = median_seconds(lambda: recalibrate_batchnorm(gan.ema, seed=config.seed), repeats)
    rows = [(f"GAN steps of one epoch ({steps} x {config.batch_size} images)", step_seconds * steps),
            (f"GAN end of epoch, whole: recalibration, then D's mean score on {len(held_out)} held-out and as many "
             "training hands", end_epoch),
            ("GAN end of epoch, of which the batch-norm recalibration of the EMA generator", recalibration),
            ("GAN checkpoint", checkpoint)]
    return [{"task": task_name, "seconds": round(seconds, 3)} for task_name, seconds in rows]


def make_run_row() -> dict:
    """Wall time and peak resident memory of `make run` (the largest of its processes; they run one by one)."""
    started = time.perf_counter()
    subprocess.run(["make", "run"], check=True)
    peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return {"task": "make run", "minutes": round((time.perf_counter() - started) / 60, 1),
            "peak memory GB": round(peak_kib / 1024 ** 2, 2)}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python scripts/bench.py", description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7, help="timed repeats per figure (median reported)")
    parser.add_argument("--images", type=int, default=2560, help="images per timed epoch")
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's choice)")
    parser.add_argument("--detector", default="checkpoints/detector.pt")
    parser.add_argument("--generator", default="checkpoints/gan.pt")
    parser.add_argument("--make-run", action="store_true", help="also time `make run` end to end (slow)")
    parser.add_argument("--json", help="append the results to this JSON-lines file")
    parser.add_argument("--only", choices=("training", "variants", "data", "epoch", "prior", "precision", "compile"),
                        help="time one section alone")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    np.seterr(all="ignore")
    real = load_folder(REAL_HANDS, warn=False)
    files = [find_folder(REAL_HANDS) / name for name in real.names]
    assert files == list_image_files(find_folder(REAL_HANDS))[:len(files)], "every real hand decodes"
    wanted = lambda section: args.only in (None, section)  # noqa: E731
    # the vector unit torch dispatches to ("AVX2" when capped, as a plain CPU is) and the CPU's bfloat16 units
    result: dict = {"threads": torch.get_num_threads(), "cpu_capability": torch.backends.cpu.get_cpu_capability(),
                    "bfloat16_fast": fast_bfloat16(torch.device("cpu")), **cpu_facts()}
    if wanted("training"):
        ceiling = ceiling_gflops(args.repeats)
        print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; ceiling: conv {ceiling['conv']:.1f} "
              f"GFLOP/s, matmul {ceiling['matmul']:.1f} GFLOP/s")
        result["ceiling_gflops"] = ceiling
        result["training"] = training_rows(real.images, files, max(ceiling.values()), args.repeats, args.images)
        print(format_table(result["training"]))
    variants = []
    if wanted("variants"):
        variants += gan_step_rows(real.images, args.repeats) + training_variant_rows(real.images, args.repeats)
        variants += detector_augmentation_rows(real.images, args.repeats) + optimizer_rows(args.repeats)
        if Path(args.detector).is_file():
            variants += inference_layout_rows(load_model(args.detector, "cpu")[0], real.images[:2048], args.repeats)
    if wanted("prior"):
        variants += prior_shape_rows(real.images, args.repeats)
    if wanted("precision"):
        variants += precision_rows(real.images, args.repeats)
    if wanted("compile"):
        variants += compile_rows(real.images, args.repeats)
    if variants:
        result["variants"] = variants
        print(format_table(variants))
    if wanted("data"):
        result["data_path"] = data_path_rows(args.repeats, args.detector, args.generator) + jpeg_rows(real.images,
                                                                                                   args.repeats)
        print(format_table(result["data_path"]))
    if wanted("epoch"):
        result["gan_epoch"] = gan_epoch_rows(real.images, args.repeats)
        print(format_table(result["gan_epoch"]))
    if args.make_run:
        result["make_run"] = make_run_row()
        print(format_table([result["make_run"]]))
    if args.json:
        append_rows([result], args.json)


if __name__ == "__main__":
    main()
