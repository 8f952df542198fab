"""Every notebook executes top to bottom in quick mode, without touching the committed outputs."""

import hashlib
import os
import shutil
import subprocess
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from handgen.data import REAL_HANDS, DataError, find_folder

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ["GenAI Models.ipynb", "Classifier.ipynb", "Hypertuning.ipynb"]
COMMITTED_OUTPUTS = ["VAE_hands", "GAN_hands", "checkpoints", "results", "Classification Result.csv"]


def fingerprint(folders: list[str]) -> dict[str, str]:
    """Hash of every file under the committed output folders."""
    paths = [path for folder in folders for path in
             ([ROOT / folder] if (ROOT / folder).is_file() else sorted((ROOT / folder).rglob("*")))]
    return {str(path.relative_to(ROOT)): hashlib.sha256(path.read_bytes()).hexdigest()
            for path in paths if path.is_file()}


@pytest.mark.notebook
@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_executes_in_quick_mode(name, monkeypatch):
    try:
        find_folder(REAL_HANDS)
    except DataError as error:
        pytest.skip(f"dataset not available: {error}")
    monkeypatch.setenv("HANDGEN_QUICK", "1")
    notebook = nbformat.read(ROOT / name, as_version=4)
    before = fingerprint(COMMITTED_OUTPUTS)
    NotebookClient(notebook, timeout=600, kernel_name="python3",
                   resources={"metadata": {"path": str(ROOT)}}).execute()
    errors = [output for cell in notebook.cells if cell.cell_type == "code"
              for output in cell.get("outputs", []) if output.get("output_type") == "error"]
    assert not errors
    assert all(cell.get("execution_count") for cell in notebook.cells
               if cell.cell_type == "code" and cell.source.strip())
    assert fingerprint(COMMITTED_OUTPUTS) == before


def setup_cell(name: str) -> str:
    """The first code cell of a notebook: the Colab setup."""
    notebook = nbformat.read(ROOT / name, as_version=4)
    return next(cell.source for cell in notebook.cells if cell.cell_type == "code")


def a_repository_to_clone(folder: Path) -> Path:
    """A git repository holding the working tree's package and lock, as a Colab user's clone would get them."""
    for item in ["handgen", "requirements.lock", "pyproject.toml", "README.md"]:
        copy = shutil.copytree if (ROOT / item).is_dir() else shutil.copy
        copy(ROOT / item, folder / item)
    for command in (["init", "-q"], ["add", "-A"], ["-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "x"]):
        subprocess.run(["git", *command], cwd=folder, check=True)
    return folder


@pytest.mark.notebook
@pytest.mark.parametrize("name", NOTEBOOKS)
def test_setup_cell_brings_a_colab_kernel_into_the_repository(name, tmp_path, monkeypatch):
    source = a_repository_to_clone(tmp_path / "source")
    fake_bin, outside, checkout = tmp_path / "bin", tmp_path / "content", tmp_path / "content" / "handgen"
    fake_bin.mkdir(), outside.mkdir()
    pip = fake_bin / "pip"  # records what the cell would install, so the test's environment stays untouched
    pip.write_text('#!/bin/sh\necho "$@" >> "$PIP_LOG"\n')
    pip.chmod(0o755)
    monkeypatch.setenv("PATH", f"{fake_bin}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("PIP_LOG", str(tmp_path / "pip.log"))
    monkeypatch.setenv("HANDGEN_REPOSITORY", str(source))
    monkeypatch.setenv("HANDGEN_CHECKOUT", str(checkout))
    cells = ["import sys, types\nsys.modules['google.colab'] = types.ModuleType('google.colab')  # as Colab has it",
             setup_cell(name),
             "import os, handgen\nprint(os.getcwd())\nprint(handgen.__file__)"]
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(cell) for cell in cells])
    NotebookClient(notebook, timeout=120, kernel_name="python3",
                   resources={"metadata": {"path": str(outside)}}).execute()
    printed = "".join(output.get("text", "") for cell in notebook.cells for output in cell.get("outputs", []))
    where, module = printed.strip().splitlines()[-2:]
    assert Path(where) == checkout and Path(module).is_relative_to(checkout)
    assert "device " in printed and "real_hands" in printed
    installed = (tmp_path / "pip.log").read_text()
    assert "-c /tmp/handgen-constraints.txt" in installed and "-e" in installed
    constraints = Path("/tmp/handgen-constraints.txt").read_text()
    assert "numpy==" in constraints and "torch==" not in constraints  # Colab's own torch stays


@pytest.mark.notebook
@pytest.mark.parametrize("name", NOTEBOOKS)
def test_setup_cell_does_nothing_outside_colab(name, tmp_path):
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(setup_cell(name)),
                                               nbformat.v4.new_code_cell("import os\nprint(os.getcwd())")])
    NotebookClient(notebook, timeout=60, kernel_name="python3",
                   resources={"metadata": {"path": str(tmp_path)}}).execute()
    printed = "".join(output.get("text", "") for cell in notebook.cells for output in cell.get("outputs", []))
    assert printed.split() == ["not", "in", "Colab:", "nothing", "to", "set", "up", str(tmp_path)]
