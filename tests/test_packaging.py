"""The install is declared once and locked: requirements.txt, pyproject.toml and requirements.lock agree."""

import re
from pathlib import Path

import tomllib

ROOT = Path(__file__).resolve().parents[1]


def requirement_lines(path: Path) -> list[str]:
    return [line.strip() for line in path.read_text().splitlines() if line.strip() and not line.startswith("#")]


def name_of(requirement: str) -> str:
    return re.split(r"[<>=!~\[ ]", requirement, maxsplit=1)[0].lower().replace("_", "-")


def declared() -> list[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = [requirement for group in project["optional-dependencies"].values() for requirement in group]
    return project["dependencies"] + [requirement for requirement in extras if name_of(requirement) != "handgen"]


def test_requirements_txt_lists_exactly_what_pyproject_declares():
    assert sorted(requirement_lines(ROOT / "requirements.txt")) == sorted(declared())


def test_dev_extra_holds_what_the_tests_and_notebooks_need():
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    assert "handgen[notebooks,tune]" in extras["dev"] and {name_of(r) for r in extras["tune"]} == {"optuna"}


def test_the_lock_pins_every_declared_package_once():
    pins = [line.split("==") for line in requirement_lines(ROOT / "requirements.lock")]
    assert all(len(pin) == 2 and pin[1] for pin in pins), "every line is name==version"
    names = [name_of(name) for name, _ in pins]
    assert len(names) == len(set(names))
    assert {name_of(requirement) for requirement in declared()} <= set(names)
    assert "handgen" not in names
