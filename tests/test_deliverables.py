"""The committed deliverables are what the assignment asks for, and say where they came from."""

import hashlib
import json
import re
from pathlib import Path

import pytest
from PIL import Image

from handgen.data import DataError, find_folder, list_image_files
from handgen.sample import PROVENANCE_FILE

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ["GenAI Models.ipynb", "Classifier.ipynb", "Hypertuning.ipynb"]


@pytest.mark.parametrize("family", ["VAE", "GAN"])
def test_each_sample_folder_holds_300_grayscale_32x32_jpegs_and_names_its_checkpoint(family):
    folder = ROOT / f"{family}_hands"
    jpegs = sorted(folder.glob("*.jpeg"))
    assert [p.name for p in jpegs] == [f"{family}_hand_{i:03d}.jpeg" for i in range(1, 301)]
    for path in jpegs[:: 37]:
        with Image.open(path) as image:
            assert (image.format, image.mode, image.size) == ("JPEG", "L", (32, 32)), path
    note = (folder / PROVENANCE_FILE).read_text()
    checkpoint = re.search(r"^checkpoint: (.+)$", note, re.M).group(1)
    digest = re.search(r"^checkpoint sha256: (\w+)$", note, re.M).group(1)
    assert not Path(checkpoint).is_absolute(), "the note must read the same on every clone"
    assert hashlib.sha256((ROOT / checkpoint).read_bytes()).hexdigest() == digest, f"{checkpoint} changed since"


def test_the_csv_has_one_sorted_line_per_test_image_in_the_asked_format():
    lines = (ROOT / "Classification Result.csv").read_text().splitlines()
    assert all(re.fullmatch(r"test_hand_\d{4}\.jpeg, [012]", line) for line in lines)
    names = [line.split(", ")[0] for line in lines]
    assert names == sorted(set(names))
    try:
        folder = find_folder("test_hands")
    except DataError:
        pytest.skip("test_hands/ is not on this machine")
    assert names == [path.name for path in list_image_files(folder)]


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebooks_are_committed_executed_without_errors(name):
    cells = [cell for cell in json.loads((ROOT / name).read_text())["cells"] if cell["cell_type"] == "code"]
    assert all(cell["execution_count"] is not None for cell in cells), f"{name} has cells that never ran"
    assert not [output for cell in cells for output in cell["outputs"] if output["output_type"] == "error"]
