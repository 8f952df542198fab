"""Every notebook executes top to bottom in quick mode, without touching the committed outputs."""

import hashlib
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
