"""The code's layers and owners, as STYLE.md promises them: imports run one way, one module owns the model
folder's files, the evaluator does not pull in the training loop, and functions stay short enough to read."""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT

SOURCES = sorted(path for folder in ("vit", "tabs", "bench", "proxies") for path in (ROOT / folder).glob("*.py")) + [
    ROOT / name for name in ("app.py", "api.py", "train.py")] + [ROOT / "docs" / "figures.py"]
LONGEST = 60  # lines in one function
PARSERS = {("train.py", "build_parser")}  # one line per command-line option: longer, and still read at once


def imported(path: Path) -> set[str]:
    """Every module a file imports, absolute (a relative import inside a package gets its package's name)."""
    package = path.parent.name
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = f"{package}.{node.module or ''}".rstrip(".") if node.level else node.module
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names)
    return names


def test_the_library_imports_no_ui_and_the_api_no_tab():
    for path in (ROOT / "vit").glob("*.py"):
        above = {name for name in imported(path) if name.split(".")[0] in ("gradio", "tabs", "bench", "app", "api")}
        assert not above, f"{path.name} imports {sorted(above)}"
    assert not {name for name in imported(ROOT / "api.py") if name.split(".")[0] == "tabs"}


def test_no_tab_imports_another_tab():
    """What tabs share (the current picture, menus, pictures two tabs show, the glossary's links) lives in
    tabs.picture, tabs.shared and the other modules that are no tab; only tabs/__init__ assembles the tabs."""
    helpers = {"__init__", "shared", "picture", "pad", "pad_model", "images", "glossary", "lesson", "link"}
    tabs = {path.stem for path in (ROOT / "tabs").glob("*.py")} - helpers
    for path in (ROOT / "tabs").glob("*.py"):
        if path.stem != "__init__":
            others = {name.split(".")[1] for name in imported(path) if name.startswith("tabs.")} & tabs
            assert not others - {path.stem}, f"{path.name} imports the tab(s) {sorted(others)}"


def test_only_the_folders_owner_names_its_json_files():
    owner = ROOT / "vit" / "bundle.py"
    for path in SOURCES:
        tree = ast.parse(path.read_text())
        docstrings = {id(node.body[0].value) for node in ast.walk(tree)
                      if isinstance(node, (ast.Module, ast.FunctionDef, ast.ClassDef)) and node.body
                      and isinstance(node.body[0], ast.Expr) and isinstance(node.body[0].value, ast.Constant)}
        named = [node.value for node in ast.walk(tree) if isinstance(node, ast.Constant) and id(node) not in docstrings
                 and node.value in ("evaluation.json", "calibration.json")]
        assert path == owner or not named, f"{path.relative_to(ROOT)} names {named}: read them through vit.bundle"


def test_the_evaluator_and_the_api_load_no_training_loop():
    code = "import sys, vit.evaluate, api; print(sorted(m for m in sys.modules if m in ('vit.training', 'vit.pacing', 'tabs')))"
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


@pytest.mark.parametrize("path", SOURCES, ids=lambda path: str(path.relative_to(ROOT)))
def test_every_function_reads_at_once(path):
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and (path.name, node.name) not in PARSERS:
            length = node.end_lineno - node.lineno + 1
            assert length <= LONGEST, f"{path.name}: {node.name} is {length} lines"
