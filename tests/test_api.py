"""The public API is the one used, and the library's docstrings point at things that exist."""

from __future__ import annotations

import ast
import importlib
import json
import pkgutil
import re
from pathlib import Path

import handgen

ROOT = Path(__file__).resolve().parents[1]
MODULES = sorted(info.name for info in pkgutil.iter_modules(handgen.__path__) if not info.name.startswith("_"))
OPTIONAL = {"tuning"}  # needs the "tune" extra (optuna), so `import handgen` does not import it


def docstrings(tree: ast.AST) -> list[str]:
    nodes = [tree, *(n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.ClassDef, ast.AsyncFunctionDef)))]
    return [text for text in map(ast.get_docstring, nodes) if text]


def test_every_backticked_module_name_in_the_docstrings_resolves():
    broken = []
    for name in MODULES:
        source = (ROOT / "handgen" / f"{name}.py").read_text()
        for text in docstrings(ast.parse(source)):
            for module, attribute in re.findall(r"`(\w+)\.(\w+)`", text):
                known = attribute == "py" or module not in MODULES  # a file name, or not one of ours
                if not known and not hasattr(importlib.import_module(f"handgen.{module}"), attribute):
                    broken.append(f"handgen/{name}.py: `{module}.{attribute}`")
    assert not broken


def imports_of(source: str) -> list[str]:
    """The handgen modules a piece of code imports from (`handgen` itself for the public API)."""
    modules = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "handgen":
            modules.append(node.module)
        elif isinstance(node, ast.Import):
            modules += [alias.name for alias in node.names if alias.name.split(".")[0] == "handgen"]
    return modules


def notebook_code(path: Path) -> str:
    cells = json.loads(path.read_text())["cells"]
    lines = [line for cell in cells if cell["cell_type"] == "code" for line in "".join(cell["source"]).splitlines()]
    magic = lambda line: line.lstrip().startswith(("!", "%"))  # noqa: E731  shell and magics
    return "\n".join(line[:len(line) - len(line.lstrip())] + "pass" if magic(line) else line for line in lines)


def test_notebooks_and_scripts_import_the_public_api_only():
    sources = {path.name: path.read_text() for path in (ROOT / "scripts").glob("*.py")}
    sources.update({path.name: notebook_code(path) for path in ROOT.glob("*.ipynb")})
    inside = {name: [m for m in imports_of(source) if m not in ("handgen", *(f"handgen.{o}" for o in OPTIONAL))]
              for name, source in sources.items()}
    assert not {name: modules for name, modules in inside.items() if modules}


def test_the_public_api_exports_what_it_lists():
    assert all(hasattr(handgen, name) for name in handgen.__all__)
    assert len(set(handgen.__all__)) == len(handgen.__all__)
