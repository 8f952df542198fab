"""Bad input and output paths: one line naming the path and the reason, exit 1 (data, checkpoint, output) or 2
(arguments); bad files skipped and counted; nothing left half-written."""

from __future__ import annotations

import io
import os
import stat
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import synthetic_hands, write_jpegs
from PIL import Image

from handgen.checkpoint import CheckpointError, read_checkpoint
from handgen.cli import main
from handgen.data import MAX_PIXELS, SkippedFileWarning, decode_image, load_folder
from handgen.detection import write_predictions_csv
from handgen.files import OutputError
from handgen.sample import write_images

ROOT = Path(__file__).resolve().parents[1]
DETECTOR = str(ROOT / "checkpoints" / "detector.pt")


def one_line_error(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err and "Traceback" not in err, err
    return err


# --- decoding -------------------------------------------------------------------------------------------------

def test_a_decompression_bomb_is_refused_unread(tmp_path):
    path = tmp_path / "bomb.png"
    Image.new("L", (5000, 5000)).save(path)  # 25 M pixels, a few KB on disk
    assert 5000 * 5000 > MAX_PIXELS
    with pytest.raises(ValueError, match="too large"):
        decode_image(path)


def test_pillows_own_bomb_error_is_a_skip_too(tmp_path, monkeypatch):
    path = tmp_path / "wide.png"
    Image.new("L", (300, 300)).save(path)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # Pillow refuses at open beyond twice its limit
    with pytest.raises(ValueError, match="too large"):
        decode_image(path)


def test_sixteen_bit_grayscale_is_scaled_not_clipped_to_white(tmp_path):
    values = (synthetic_hands(1)[0].astype(np.uint16) * 257)  # the same picture on the 16-bit scale
    path = tmp_path / "deep.png"
    Image.fromarray(values).save(path)
    assert Image.open(path).mode.startswith("I")
    decoded = decode_image(path).astype(int)
    assert np.abs(decoded - synthetic_hands(1)[0].astype(int)).max() <= 1


def test_a_one_pixel_image_is_refused(tmp_path):
    path = tmp_path / "dot.png"
    Image.new("L", (1, 1), 128).save(path)
    with pytest.raises(ValueError, match="too small"):
        decode_image(path)


def test_folders_links_and_unfit_names_are_named_and_counted(tmp_path):
    folder = tmp_path / "input"
    write_jpegs(folder, synthetic_hands(2))
    (folder / "x.jpeg").mkdir()
    os.symlink(folder / "gone.jpeg", folder / "dangling.jpeg")
    Image.fromarray(synthetic_hands(1)[0]).save(folder / "a,b.jpeg")
    with pytest.warns(SkippedFileWarning, match="skipped 3 of 5"):
        data = load_folder("input", folder)
    assert len(data) == 2
    assert "not a file" in data.skipped["x.jpeg"]
    assert "broken link" in data.skipped["dangling.jpeg"]
    assert "comma" in data.skipped["a,b.jpeg"]


FORMATS_OF_MODE = {"L": ["PNG", "BMP", "TIFF", "GIF", "JPEG"], "RGB": ["PNG", "BMP", "TIFF", "GIF", "JPEG"],
                   "RGBA": ["PNG", "TIFF"], "CMYK": ["JPEG", "TIFF"], "P": ["PNG", "GIF", "BMP"],
                   "1": ["PNG", "BMP", "TIFF"], "LA": ["PNG"], "I;16": ["PNG", "TIFF"], "F": ["TIFF"]}


def random_image_bytes(rng: np.random.Generator) -> bytes:
    """A valid image file of a random mode, size and format."""
    mode = str(rng.choice(list(FORMATS_OF_MODE)))
    width, height = int(rng.integers(1, 80)), int(rng.integers(1, 80))
    image = Image.fromarray(rng.integers(0, 255, (height, width, 3)).astype(np.uint8), "RGB")
    if mode == "I;16":
        image = Image.fromarray(rng.integers(0, 65535, (height, width)).astype(np.uint16))
    elif mode != "RGB":
        image = image.convert(mode)
    buffer = io.BytesIO()
    image.save(buffer, format=str(rng.choice(FORMATS_OF_MODE[mode])))
    return buffer.getvalue()


def test_fuzz_decoder_returns_a_hand_array_or_raises_its_own_error(tmp_path):
    rng = np.random.default_rng(0)
    for index in range(150):
        data = random_image_bytes(rng) if index % 3 else rng.bytes(int(rng.integers(0, 400)))
        if index % 5 == 4:  # a valid image cut short
            data = random_image_bytes(rng)[: int(rng.integers(1, 60))]
        path = tmp_path / f"fuzz_{index}.jpeg"
        path.write_bytes(data)
        try:
            decoded = decode_image(path)
        except ValueError:
            continue
        assert decoded.shape == (32, 32) and decoded.dtype == np.uint8


# --- checkpoints ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("content, reason", [(b"", "empty file"), (b"epoch 3\n", "not a PyTorch checkpoint (text"),
                                             (bytes(range(200, 256)) * 8, "not a PyTorch checkpoint (unknown")])
def test_unreadable_checkpoints_say_why_without_unsafe_advice(tmp_path, content, reason):
    path = tmp_path / "bad.pt"
    path.write_bytes(content)
    with pytest.raises(CheckpointError) as caught:
        read_checkpoint(path)
    assert reason in str(caught.value) and "weights_only" not in str(caught.value)


def test_a_pickled_object_checkpoint_is_refused_without_unsafe_advice(tmp_path):
    path = tmp_path / "pickled.pt"
    torch.save({"version": 1, "thing": Path("x")}, path)
    with pytest.raises(CheckpointError) as caught:
        read_checkpoint(path)
    assert "weights_only" not in str(caught.value) and "never loads" in str(caught.value)


def test_a_detector_checkpoint_is_refused_by_sample(tmp_path, capsys):
    assert main(["sample", "--checkpoint", DETECTOR, "--out", str(tmp_path / "out")]) == 1
    assert "not a generator" in one_line_error(capsys)
    assert not (tmp_path / "out").exists()


# --- arguments --------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("flags", [["--epochs", "0"], ["--epochs", "-3"], ["--lr-generator", "nan"],
                                   ["--lr-discriminator", "inf"]])
def test_out_of_range_config_values_exit_2(tmp_path, hands_folder, capsys, flags):
    checkpoint = tmp_path / "gan.pt"
    assert main(["train-gan", "--data", str(hands_folder), "--checkpoint", str(checkpoint), *flags]) == 2
    assert flags[0].lstrip("-").replace("-", "_") in one_line_error(capsys)
    assert not checkpoint.exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_cuda_on_a_cpu_only_machine_exits_2(tmp_path, hands_folder, capsys):
    assert main(["classify", "--input", str(hands_folder), "--out", str(tmp_path / "o.csv"),
                 "--device", "cuda"]) == 2
    assert "no CUDA" in one_line_error(capsys)


# --- outputs ----------------------------------------------------------------------------------------------------

def test_csv_onto_a_folder_under_a_file_or_read_only_is_one_line_and_leaves_nothing(tmp_path, hands_folder, capsys):
    folder = tmp_path / "existing"
    folder.mkdir()
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(stat.S_IRUSR | stat.S_IXUSR)
    targets = [folder, blocker / "out.csv", Path("/proc/out.csv")]
    if os.geteuid() != 0:  # root writes into read-only folders anyway
        targets.append(locked / "out.csv")
    for target in targets:
        assert main(["classify", "--input", str(hands_folder), "--checkpoint", DETECTOR, "--out", str(target)]) == 1
        assert str(target) in one_line_error(capsys)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a_file", "existing", "locked", "real_hands"]
    assert list(folder.iterdir()) == []


def test_sample_into_an_unwritable_place_is_one_line(tmp_path, capsys):
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    vae = tmp_path / "vae.pt"
    hands = tmp_path / "hands"
    write_jpegs(hands, synthetic_hands(64))
    assert main(["train-vae", "--data", str(hands), "--checkpoint", str(vae), "--epochs", "1", "--width", "8",
                 "--batch-size", "16"]) == 0
    capsys.readouterr()
    for target in [blocker / "VAE_hands", Path("/proc/VAE_hands"), blocker]:
        assert main(["sample", "--checkpoint", str(vae), "--out", str(target), "--n", "3"]) == 1
        assert str(target) in one_line_error(capsys)
    assert blocker.read_text() == "x"


def test_names_a_csv_line_cannot_carry_are_refused(tmp_path):
    with pytest.raises(ValueError, match="comma or a line break"):
        write_predictions_csv([("a,b.jpeg", 0)], tmp_path / "out.csv")
    with pytest.raises(ValueError, match="comma or a line break"):
        write_predictions_csv([("a\nb.jpeg", 0)], tmp_path / "out.csv")
    assert list(tmp_path.iterdir()) == []


def test_a_folder_as_csv_target_raises_output_error(tmp_path):
    with pytest.raises(OutputError, match="is a folder"):
        write_predictions_csv([("a.jpeg", 0)], tmp_path)


def test_written_sets_get_ordinary_permissions(tmp_path):
    write_images(torch.zeros(3, 1, 32, 32, dtype=torch.uint8), tmp_path / "GAN_hands", "GAN")
    mode = stat.S_IMODE((tmp_path / "GAN_hands").stat().st_mode)
    umask = os.umask(0)
    os.umask(umask)
    assert mode == 0o777 & ~umask


def test_a_stale_staging_folder_of_a_killed_run_is_removed(tmp_path):
    stale = tmp_path / ".GAN_hands.staging-abc123"
    stale.mkdir()
    (stale / "GAN_hand_001.jpeg").write_bytes(b"half")
    foreign = tmp_path / ".GAN_hands.staging-keep"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    write_images(torch.zeros(2, 1, 32, 32, dtype=torch.uint8), tmp_path / "GAN_hands", "GAN")
    assert not stale.exists() and (foreign / "notes.txt").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == [".GAN_hands.staging-keep", "GAN_hands"]
