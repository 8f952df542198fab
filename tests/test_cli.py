import subprocess
import sys
from pathlib import Path

import pytest

from handgen.cli import main

ROOT = Path(__file__).resolve().parents[1]


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "handgen", *args], capture_output=True, text=True, timeout=120)


def test_help_lists_commands_and_config_flags():
    result = run_cli("--help")
    assert result.returncode == 0
    for command in ("train-vae", "train-gan", "sample"):
        assert command in result.stdout
    sub = run_cli("train-gan", "--help")
    assert sub.returncode == 0 and "--latent-dim" in sub.stdout and "--no-spectral-norm" in sub.stdout


def test_crossval_and_train_detector_take_the_data_recipe_from_config_flags(capsys):
    helps = {}
    for command in ("crossval", "train-detector", "train-classifier"):
        with pytest.raises(SystemExit):
            main([command, "--help"])
        helps[command] = capsys.readouterr().out
        assert all(flag in helps[command] for flag in ("--provided-repeats", "--no-generated-fakes", "--zoo-cache"))
    assert "--validation-fold" in helps["train-classifier"]
    assert "--validation-fold" not in helps["crossval"]  # a cross-validation run names its fold with --fold
    with pytest.raises(SystemExit) as exit_info:
        main(["crossval", "--fold", "4"])
    assert exit_info.value.code == 2


def test_bad_flag_exits_2_with_a_message(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["train-vae", "--latent-dim", "many"])
    assert exit_info.value.code == 2
    assert "invalid int value: 'many'" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:
        main(["sample", "--checkpoint", "x.pt", "--out", "o", "--n", "0"])
    assert exit_info.value.code == 2


def test_missing_data_is_exit_1_with_where_it_looked(tmp_path, capsys):
    code = main(["train-vae", "--data", str(tmp_path / "nowhere"), "--checkpoint", str(tmp_path / "v.pt")])
    assert code == 1
    assert "not found" in capsys.readouterr().err


def test_a_generator_checkpoint_is_refused_as_a_detector(tmp_path, hands_folder, capsys):
    checkpoint = str(tmp_path / "vae.pt")
    assert main(["train-vae", "--data", str(hands_folder), "--checkpoint", checkpoint, "--epochs", "1"]) == 0
    capsys.readouterr()
    assert main(["classify", "--input", str(hands_folder), "--checkpoint", checkpoint,
                 "--out", str(tmp_path / "out.csv")]) == 1
    assert "holds a VAE, not a detector" in capsys.readouterr().err and not (tmp_path / "out.csv").exists()
    detector = str(ROOT / "checkpoints" / "detector.pt")
    assert main(["evaluate", detector, "--real", str(hands_folder)]) == 1
    assert f"{detector} holds a Detector, not a generator" in capsys.readouterr().err


def test_train_then_sample_end_to_end(tmp_path, hands_folder, capsys):
    checkpoint = tmp_path / "vae.pt"
    assert main(["train-vae", "--data", str(hands_folder), "--checkpoint", str(checkpoint), "--epochs", "1",
                 "--width", "8", "--latent-dim", "4", "--batch-size", "16"]) == 0
    out = tmp_path / "VAE_hands"
    assert main(["sample", "--checkpoint", str(checkpoint), "--out", str(out), "--n", "7"]) == 0
    assert len(list(out.glob("VAE_hand_*.jpeg"))) == 7
    assert main(["sample", "--checkpoint", str(tmp_path / "missing.pt"), "--out", str(out)]) == 1
    assert "does not exist" in capsys.readouterr().err
