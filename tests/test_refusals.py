"""Nothing the user owns is overwritten, every failure is one line before the work starts, writers never tear.

Each case runs the command line (or the library call it makes) against a hostile or faulty condition and checks the
exit code, the one-line message, and that every file the user had is still there, byte for byte.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from conftest import synthetic_hands, write_jpegs

from handgen.checkpoint import CheckpointError, load_model, read_checkpoint, save_checkpoint
from handgen.classifier import Detector, DetectorConfig
from handgen.cli import main
from handgen.data import SkippedFileWarning, load_folder
from handgen.detection import write_predictions_csv
from handgen.files import OutputError, check_output, kind_of
from handgen.gan import GAN, GANConfig
from handgen.results import append_rows, read_rows
from handgen.train import TrainingDiverged, train_vae
from handgen.vae import VAE, VAEConfig

SMALL_VAE = ["--epochs", "1", "--width", "8", "--latent-dim", "8", "--batch-size", "16", "--prior-components", "2"]


def one_line_error(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err and "Traceback" not in err, err
    assert "weights_only" not in err
    return err


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture
def vae_checkpoint(tmp_path, hands_folder, capsys) -> Path:
    path = tmp_path / "vae.pt"
    assert main(["train-vae", "--data", str(hands_folder), "--checkpoint", str(path), *SMALL_VAE]) == 0
    capsys.readouterr()
    return path


@pytest.fixture
def detector_checkpoint(tmp_path) -> Path:
    path = tmp_path / "detector.pt"
    model = Detector(DetectorConfig(width=4))
    save_checkpoint(path, model, model.config, epoch=20, history=[], optimizers={})
    return path


# --- nothing the user owns is overwritten ---------------------------------------------------------------------

def test_the_csv_cannot_replace_its_own_detector(tmp_path, hands_folder, detector_checkpoint, capsys):
    before = detector_checkpoint.read_bytes()
    assert main(["classify", "--input", str(hands_folder), "--checkpoint", str(detector_checkpoint),
                 "--out", str(detector_checkpoint)]) == 1
    assert "also an input" in one_line_error(capsys)
    assert detector_checkpoint.read_bytes() == before


@pytest.mark.parametrize("content", ["my notes\n", "a,b,c\n1,2,3\n"])
def test_the_csv_never_replaces_a_file_handgen_did_not_write(tmp_path, hands_folder, detector_checkpoint, capsys,
                                                             content):
    target = tmp_path / "notes.csv"
    target.write_text(content)
    assert main(["classify", "--input", str(hands_folder), "--checkpoint", str(detector_checkpoint),
                 "--out", str(target)]) == 1
    assert "handgen did not write" in one_line_error(capsys)
    assert target.read_text() == content


def test_the_csv_replaces_a_csv_of_its_own(tmp_path, hands_folder, detector_checkpoint, capsys):
    target, real = tmp_path / "out.csv", tmp_path / "other_real_hands"  # the copy check's real hands
    write_jpegs(real, synthetic_hands(8, seed=7))
    for _ in range(2):
        assert main(["classify", "--input", str(hands_folder), "--checkpoint", str(detector_checkpoint),
                     "--out", str(target), "--real", str(real)]) == 0
    assert len(target.read_text().splitlines()) == 96 and kind_of(target) == "predictions"


def test_a_vae_checkpoint_is_never_taken_for_the_zoo_cache(tmp_path, vae_checkpoint, capsys):
    before = vae_checkpoint.read_bytes()
    started = time.perf_counter()
    assert main(["train-detector", "--zoo-cache", str(vae_checkpoint), "--own-generators",
                 "--checkpoint", str(tmp_path / "detector.pt")]) == 1
    assert "not a zoo cache" in one_line_error(capsys)
    assert vae_checkpoint.read_bytes() == before and not (tmp_path / "detector.pt").exists()
    assert time.perf_counter() - started < 30  # refused before any zoo member trained


def test_the_zoo_command_refuses_a_checkpoint_as_its_cache(vae_checkpoint, capsys):
    before = vae_checkpoint.read_bytes()
    started = time.perf_counter()
    assert main(["zoo", "--zoo-cache", str(vae_checkpoint), "--threads", "1"]) == 1
    assert "not a zoo cache" in one_line_error(capsys)
    assert vae_checkpoint.read_bytes() == before
    assert time.perf_counter() - started < 30  # refused before any zoo member trained


@pytest.mark.parametrize("content", [b"junk", b"", b"PK\x03\x04 a truncated zip"])
def test_a_zoo_cache_that_is_not_one_is_refused_or_replaced_only_when_empty(tmp_path, content, capsys):
    cache = tmp_path / "zoo.pt"
    cache.write_bytes(content)
    if content:
        with pytest.raises(OutputError, match="handgen did not write"):
            check_output(cache, "zoo cache")
        assert cache.read_bytes() == content
    else:
        assert check_output(cache, "zoo cache") == cache


@pytest.mark.parametrize("payload", [[1, 2, 3], {"key": "k"}])
def test_torch_files_of_other_shapes_are_no_zoo_cache(tmp_path, payload):
    cache = tmp_path / "zoo.pt"
    torch.save(payload, cache)
    before = cache.read_bytes()
    with pytest.raises(OutputError):
        check_output(cache, "zoo cache")
    assert cache.read_bytes() == before


def test_a_detector_is_refused_as_one_of_our_generators_before_the_zoo_trains(tmp_path, detector_checkpoint,
                                                                               capsys):
    started = time.perf_counter()
    assert main(["train-detector", "--own-generators", str(detector_checkpoint), "--zoo-cache",
                 str(tmp_path / "zoo.pt"), "--checkpoint", str(tmp_path / "new.pt")]) == 1
    assert "not a generator" in one_line_error(capsys)
    assert time.perf_counter() - started < 30 and not (tmp_path / "zoo.pt").exists()


def test_a_symlinked_sample_folder_keeps_its_link(tmp_path, vae_checkpoint):
    real, link = tmp_path / "elsewhere" / "VAE_hands", tmp_path / "VAE_hands"
    real.mkdir(parents=True)
    link.symlink_to(real, target_is_directory=True)
    for n in (3, 2):
        assert main(["sample", "--checkpoint", str(vae_checkpoint), "--out", str(link), "--n", str(n)]) == 0
    assert link.is_symlink() and len(list(real.glob("*.jpeg"))) == 2
    assert not [p for p in (tmp_path / "elsewhere").iterdir() if p.name.startswith(".")]  # no .old debris


# --- every failure is one line, before the work starts ---------------------------------------------------------

@pytest.mark.parametrize("flags, field", [
    (["--decision-offsets", "nan", "0", "0"], "decision_offsets"), (["--dropout", "1.5"], "dropout"),
    (["--label-smoothing", "5"], "label_smoothing"), (["--provided-repeats", "100000"], "provided_repeats"),
    (["--validation-fold", "7"], "validation_fold"),
])
def test_detector_values_out_of_range_exit_2_before_any_data_is_read(tmp_path, flags, field, capsys):
    assert main(["train-detector", "--checkpoint", str(tmp_path / "d.pt"), "--zoo-cache", str(tmp_path / "z.pt"),
                 *flags]) == 2
    assert field in one_line_error(capsys)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("command, flags, field", [
    ("train-gan", ["--beta1", "1.5"], "beta1"), ("train-gan", ["--loss", "foo"], "loss"),
    ("train-gan", ["--discriminator", "foo"], "discriminator"), ("train-gan", ["--augment", "blur"], "augment"),
    ("train-gan", ["--width", "100000"], "width"), ("train-gan", ["--lr-generator", "1e30"], "lr_generator"),
    ("train-gan", ["--seed", "100000000000000000000000"], "seed"), ("train-gan", ["--epochs", "1e3"], "epochs"),
    ("train-vae", ["--prior-components", "10000000"], "prior_components"),
    ("train-vae", ["--lr", "1e30"], "lr"), ("train-vqvae", ["--codebook-size", "1000000"], "codebook_size"),
    ("sample", ["--checkpoint", "x.pt", "--out", "o", "--n", "1000000000"], "--n"),
    ("sample", ["--checkpoint", "x.pt", "--out", "o", "--seed", "1e23"], "--seed"),
])
def test_arguments_out_of_range_exit_2_with_the_field_named(tmp_path, command, flags, field, capsys):
    argv = [command, *flags] if command == "sample" else [command, "--checkpoint", str(tmp_path / "m.pt"), *flags]
    assert exit_code(argv) == 2
    err = capsys.readouterr().err
    assert field.lstrip("-").replace("-", "_") in err.replace("-", "_") and "Traceback" not in err
    assert not (tmp_path / "m.pt").exists()


def exit_code(argv: list[str]) -> int:
    """What `python -m handgen ARGV` exits with: main's return value, or argparse's own exit."""
    try:
        return main(argv)
    except SystemExit as leaving:
        return leaving.code


@pytest.mark.parametrize("target", ["README.md/x.pt", "/proc/x.pt", "a folder"])
def test_an_impossible_checkpoint_path_fails_before_the_first_epoch(tmp_path, hands_folder, target, capsys):
    (tmp_path / "README.md").write_text("readme")
    (tmp_path / "a folder").mkdir()
    path = Path(target) if target.startswith("/") else tmp_path / target
    assert main(["train-vae", "--data", str(hands_folder), "--checkpoint", str(path), *SMALL_VAE]) == 1
    assert str(path) in one_line_error(capsys)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["README.md", "a folder", "real_hands"]


def test_a_json_target_that_is_a_folder_fails_before_the_evaluation(tmp_path, capsys):
    (tmp_path / "rows").mkdir()
    started = time.perf_counter()
    assert main(["evaluate", str(tmp_path / "VAE_hands"), "--json", str(tmp_path / "rows")]) == 1
    assert "is a folder" in one_line_error(capsys) and time.perf_counter() - started < 10


@pytest.mark.parametrize("make", ["text", "folder"])
def test_a_storage_that_cannot_hold_a_study_fails_before_the_objective_is_built(tmp_path, make, capsys):
    pytest.importorskip("optuna")
    storage = tmp_path / "studies.db"
    storage.mkdir() if make == "folder" else storage.write_text("not a database")
    assert main(["tune", "detector", "--storage", str(storage), "--zoo-cache", str(tmp_path / "zoo.pt")]) == 1
    assert str(storage) in one_line_error(capsys)
    assert not (tmp_path / "zoo.pt").exists()


def test_an_older_checkpoint_whose_weights_do_not_fit_is_one_line(tmp_path, hands_folder, capsys):
    old = GAN(GANConfig(width=8, latent_dim=16, discriminator="dcgan", batch_size=16))
    path = tmp_path / "old_gan.pt"
    save_checkpoint(path, old, old.config, epoch=1, history=[], optimizers={})
    state = torch.load(path, weights_only=True)
    del state["config"]["discriminator"]  # written before the field existed: read at today's default, "deep"
    torch.save(state, path)
    assert main(["train-gan", "--data", str(hands_folder), "--checkpoint", str(path), "--width", "8",
                 "--latent-dim", "16", "--epochs", "2", "--batch-size", "16"]) == 1
    assert "do not fit" in one_line_error(capsys)


@pytest.mark.parametrize("change, reason", [
    (lambda s: s.update(kind="transformer"), "of kind 'transformer'"),
    (lambda s: s.update(config="width=8"), "'config' is missing"),
    (lambda s: s.pop("config"), "'config' is missing"),
    (lambda s: s["config"].update(width="wide"), "invalid config"),
    (lambda s: s["config"].update(width=9), "do not fit"),
    (lambda s: s.update(version=7), "format version 7"),
])
def test_checkpoints_explain_why_they_do_not_fit(tmp_path, vae_checkpoint, change, reason):
    state = torch.load(vae_checkpoint, weights_only=True)
    change(state)
    torch.save(state, vae_checkpoint)
    with pytest.raises(CheckpointError, match=reason):
        load_model(vae_checkpoint)


def test_a_huge_sparse_file_is_sniffed_not_read(tmp_path):
    folder = tmp_path / "hands"
    write_jpegs(folder, synthetic_hands(3))
    for name in ("huge.jpeg", "huge.pt"):
        with (folder / name).open("wb") as handle:
            handle.truncate(16 * 1024 ** 3)  # 16 GB of nothing, on disk almost no space
    started = time.perf_counter()
    with pytest.warns(SkippedFileWarning, match="huge.jpeg"):
        data = load_folder(folder)
    assert len(data) == 3 and "huge.jpeg" in data.skipped
    with pytest.raises(CheckpointError, match="not a PyTorch checkpoint"):
        read_checkpoint(folder / "huge.pt")
    assert time.perf_counter() - started < 20


def test_a_name_that_is_not_utf8_is_named_skipped_and_the_csv_is_written(tmp_path, detector_checkpoint, capsys):
    folder = tmp_path / "hands"
    write_jpegs(folder, synthetic_hands(3))
    odd = os.path.join(os.fsencode(folder), b"caf\xe9.jpeg")
    with open(odd, "wb") as handle:
        handle.write((folder / "img_0000.jpeg").read_bytes())
    out, real = tmp_path / "out.csv", tmp_path / "real_hands"  # the copy check's real hands
    write_jpegs(real, synthetic_hands(8, seed=7))
    with pytest.warns(SkippedFileWarning, match=r"caf\\xe9"):
        assert main(["classify", "--input", str(folder), "--checkpoint", str(detector_checkpoint),
                     "--out", str(out), "--real", str(real)]) == 0
    assert [line.split(",")[0] for line in out.read_text(encoding="utf-8").splitlines()] == [
        "img_0000.jpeg", "img_0001.jpeg", "img_0002.jpeg"]


def test_a_divergence_says_no_checkpoint_was_kept_when_none_was_written(hands_folder):
    images = load_folder(hands_folder).images
    config = VAEConfig(latent_dim=4, width=4, batch_size=16, epochs=1, lr=0.9, prior_components=0)
    model = VAE(config)
    with torch.no_grad():
        model.decoder.project.weight.fill_(float("inf"))
    with pytest.raises(TrainingDiverged, match="no checkpoint had been written yet"):
        train_vae(model, images, config, progress=False)


# --- writers never tear -----------------------------------------------------------------------------------------

def test_a_failed_append_leaves_no_partial_line_and_a_torn_one_is_skipped(tmp_path, monkeypatch):
    rows = tmp_path / "rows.jsonl"
    append_rows([{"a": 1}], rows)
    before = rows.read_bytes()
    real_write = os.write

    def half_then_full(descriptor, data):
        real_write(descriptor, data[: len(data) // 2])
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "write", half_then_full)
    with pytest.raises(OutputError, match="No space left"):
        append_rows([{"b": 2}, {"c": 3}], rows)
    monkeypatch.setattr(os, "write", real_write)
    assert rows.read_bytes() == before
    with rows.open("a") as handle:
        handle.write('{"torn": ')  # a writer killed mid-line
    with pytest.warns(UserWarning, match="incomplete"):
        assert read_rows(rows) == [{"time": json.loads(before)["time"], "a": 1}]


RACE = """
import sys, torch
from handgen.checkpoint import save_checkpoint
from handgen.detection import write_predictions_csv
from handgen.gan import GAN, GANConfig
kind, path, tag = sys.argv[1], sys.argv[2], int(sys.argv[3])
model = GAN(GANConfig(width=8, latent_dim=16, seed=tag))
for i in range(40):
    if kind == "checkpoint":
        save_checkpoint(path, model, model.config, epoch=tag, history=[{"i": float(i)}], optimizers={})
    else:
        write_predictions_csv([(f"img_{k:04d}.jpeg", tag) for k in range(2000)], path)
print("wrote", path)
"""


@pytest.mark.parametrize("kind", ["checkpoint", "csv"])
def test_two_processes_racing_for_one_target_leave_one_whole_result(tmp_path, kind):
    target = tmp_path / ("run.pt" if kind == "checkpoint" else "out.csv")
    racers = [subprocess.Popen([sys.executable, "-c", RACE, kind, str(target), str(tag)], stdout=subprocess.PIPE,
                               text=True) for tag in (1, 2)]
    outputs = [racer.communicate(timeout=120)[0] for racer in racers]
    assert [racer.returncode for racer in racers] == [0, 0] and all("wrote" in out for out in outputs)
    if kind == "checkpoint":
        state = read_checkpoint(target)
        model, config = load_model(target)
        assert state["epoch"] == config.seed in (1, 2)  # weights, config and epoch from one writer
    else:
        labels = {line.split(", ")[1] for line in target.read_text().splitlines()}
        assert len(target.read_text().splitlines()) == 2000 and len(labels) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == [target.name]  # no temporary left


def test_write_predictions_is_utf8_whatever_the_locale(tmp_path, monkeypatch):
    monkeypatch.setenv("LC_ALL", "C")
    path = write_predictions_csv([("main_\u00e9.jpeg", 1)], tmp_path / "out.csv")
    assert path.read_bytes() == "main_\u00e9.jpeg, 1\n".encode()
