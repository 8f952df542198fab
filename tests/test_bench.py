"""The benchmark's baseline pipeline and FLOP count are correct (its speeds are reported, never asserted)."""

from __future__ import annotations

import torch
from bench import NaiveJpegDataset, flops_of

from handgen.data import list_image_files, load_folder, to_float


def test_naive_pipeline_gives_the_same_batches_as_the_decoded_once_path(hands_folder):
    decoded = load_folder("real_hands", hands_folder)
    files = list_image_files(hands_folder)
    labels = torch.arange(len(files)) % 3
    naive = NaiveJpegDataset(files, labels)
    loader = torch.utils.data.DataLoader(naive, batch_size=32, shuffle=False)
    images, batch_labels = next(iter(loader))
    assert torch.equal(images, to_float(decoded.images[:32]))
    assert torch.equal(batch_labels, labels[:32])


def test_flop_count_follows_the_layer_shapes():
    layer, inputs = torch.nn.Linear(10, 20, bias=False), torch.randn(8, 10)
    assert flops_of(lambda: layer(inputs)) == 2 * 8 * 10 * 20
    conv = torch.nn.Conv2d(3, 4, 3, padding=1, bias=False)
    image = torch.randn(2, 3, 16, 16, requires_grad=True)
    forward = 2 * 2 * 3 * 4 * 9 * 16 * 16
    assert flops_of(lambda: conv(image)) == forward
    assert flops_of(lambda: conv(image).sum().backward()) == 3 * forward  # backward: input and weight gradients


def test_make_run_timer_reads_stages_from_makes_echoed_commands(tmp_path):
    from time_make_run import run_logged, stage_of, stage_seconds

    assert stage_of("/tmp/x/venv/bin/python -m handgen train-vqvae --checkpoint runs/vae.pt") == "generators"
    assert stage_of("python3 -m handgen sample --checkpoint runs/gan.pt --out GAN_hands --n 300") == "samples"
    assert stage_of("{ python -m handgen train-vqvae --threads 1 && \\") == "generators"  # a group of commands
    assert stage_of("epoch 3/70: the last python -m handgen classify") is None  # not make's echo of a command
    marks = [(10.0, "VAE"), (20.0, "GAN"), (30.0, "samples"), (31.0, "samples"), (33.0, "detector")]
    assert stage_seconds(marks, 0.0, 50.0) == {"install": 10.0, "VAE": 10.0, "GAN": 10.0, "samples": 3.0,
                                               "detector": 17.0}
    script = "printf 'one\\rtwo\\npython -m handgen train-gan --epochs 1\\n'; exit 3"
    code, marks = run_logged(["sh", "-c", script], tmp_path, {}, tmp_path / "log")
    lines = (tmp_path / "log").read_text().splitlines()
    assert code == 3 and [line.split(" ", 1)[1] for line in lines] == [
        "one", "two", "python -m handgen train-gan --epochs 1"]
    assert [stage for _, stage in marks] == ["generators"]


def test_prior_task_trains_the_prior_alone():
    from bench import prior_task

    from handgen import VQVAEConfig

    task = prior_task(VQVAEConfig(width=8, codebook_size=16, code_dim=8, prior_width=16, prior_layers=1,
                                  prior_heads=2))
    before = {name: p.detach().clone() for name, p in task.model.named_parameters()}
    logs = task.step(torch.rand(4, 1, 32, 32) * 2 - 1, None, 0)
    assert set(logs) == {"prior_nll"}
    changed = {name for name, p in task.model.named_parameters() if not torch.equal(p, before[name])}
    assert changed and all(name.startswith("prior.") for name in changed)


def test_detector_augmentation_rows_time_the_step_with_and_without_re_saving():
    from bench import detector_augmentation_rows

    threads = torch.get_num_threads()
    rows = detector_augmentation_rows(torch.randint(0, 256, (128, 1, 32, 32), dtype=torch.uint8), repeats=1)
    assert [row["variant"] for row in rows] == [
        f"detector step, re-saved share 1.0, {threads} thread(s)", "detector step, re-saved share 1.0, 1 thread(s)",
        f"detector step, re-saved share 0.0, {threads} thread(s)", "detector step, re-saved share 0.0, 1 thread(s)"]
    assert all(row["img/s"] > 0 for row in rows) and torch.get_num_threads() == threads  # threads restored


def test_jpeg_rows_time_one_file_per_image_against_strips():
    from bench import jpeg_rows

    rows = jpeg_rows(torch.randint(0, 256, (256, 1, 32, 32), dtype=torch.uint8), repeats=1)
    assert [row["task"] for row in rows] == [
        f"JPEG round trip of 256 hands, {name}, {way}" for name in ("quality 75", "qualities 60-100 drawn per image")
        for way in ("one file per image", "batches of 128, in strips")]
    assert all(row["seconds"] > 0 for row in rows)


def test_gan_epoch_rows_time_the_steps_and_each_end_of_epoch_task_apart():
    from bench import gan_epoch_rows

    rows = gan_epoch_rows(torch.randint(0, 256, (700, 1, 32, 32), dtype=torch.uint8), repeats=1)
    assert rows[0]["task"] == "GAN steps of one epoch (3 x 64 images)"
    assert [row["task"].split(",")[0] for row in rows[1:]] == ["GAN end of epoch"] * 2 + ["GAN checkpoint"]
    assert all(row["seconds"] > 0 for row in rows)
