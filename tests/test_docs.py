"""The documentation: README.md is a first page, every relative link in it and in docs/ leads somewhere, and every
measured figure in them is what docs/figures.py generates from the model folders (it owns those blocks)."""

import importlib.util
import re
import shutil
import subprocess
import sys

import pytest

from conftest import ROOT

README = ROOT / "README.md"
DOCUMENTS = [README, *sorted((ROOT / "docs").glob("*.md"))]
APP_COMMAND = "python3 -m venv .venv && . .venv/bin/activate && pip install -r requirements.txt && python app.py"
TEST_COMMAND = ("python3 -m venv .venv && . .venv/bin/activate && pip install -r requirements-test.txt "
                "&& python -m pytest -q")
CPU_TORCH = "--index-url https://download.pytorch.org/whl/cpu"


def load_figures():
    spec = importlib.util.spec_from_file_location("docs_figures", ROOT / "docs" / "figures.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


figures = load_figures()


@pytest.fixture(scope="module")
def blocks() -> dict[str, str]:
    """Every block as generated from the committed model folders (loaded once for the module)."""
    return figures.render(ROOT / "weights")


def placed_blocks() -> list[tuple[str, str]]:
    """(document, block name) for every generated block in README.md and docs/."""
    return [(str(path.relative_to(ROOT)), match.group(1))
            for path in DOCUMENTS for match in figures.MARKER.finditer(path.read_text())]


# -- the figures --------------------------------------------------------------------------------------------

def test_the_figures_are_the_model_folders():
    result = subprocess.run([sys.executable, str(ROOT / "docs" / "figures.py"), "--check"], cwd=ROOT,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr


def test_the_headline_figures_are_generated():
    placed = {name for _, name in placed_blocks()}
    assert {"headline", "models", "trust", "faithfulness"} <= placed
    assert placed == set(figures.BLOCKS), "a renderer whose block no document shows, or the reverse"
    assert ("README.md", "headline") in placed_blocks()


@pytest.mark.parametrize("document, name", placed_blocks())
def test_a_figure_edited_by_hand_fails_the_check(document, name, blocks, tmp_path, capsys):
    shutil.copy(README, tmp_path / "README.md")
    shutil.copytree(ROOT / "docs", tmp_path / "docs", ignore=shutil.ignore_patterns("screenshots", "__pycache__"))
    path = tmp_path / document
    text = path.read_text()
    block = next(m for m in figures.MARKER.finditer(text) if m.group(1) == name)
    digit = re.search(r"\d", block.group(2))
    at = block.start(2) + digit.start()
    path.write_text(text[:at] + str((int(text[at]) + 1) % 10) + text[at + 1:])

    assert figures.main(["--check", "--root", str(tmp_path)], blocks=blocks) == 1
    report = capsys.readouterr().err
    assert f"{document}: block '{name}' differs from the model folders" in report
    assert report.count("differs") == 1, report

    assert figures.main(["--root", str(tmp_path)], blocks=blocks) == 0  # regenerating puts it right
    assert path.read_text() == text


def test_an_unknown_or_unclosed_block_fails_the_check(blocks, tmp_path, capsys):
    (tmp_path / "docs").mkdir()
    (tmp_path / "README.md").write_text("<!-- figures:nonsense -->\n1 %\n<!-- /figures:nonsense -->\n"
                                        "<!-- figures:models -->\n")
    assert figures.main(["--check", "--root", str(tmp_path)], blocks=blocks) == 1
    report = capsys.readouterr().err
    assert "README.md: unknown block 'nonsense'" in report
    assert "README.md: block 'models' has no closing" in report


# -- the README as a first page -----------------------------------------------------------------------------

def test_the_readme_is_a_first_page():
    assert README.stat().st_size <= 12 * 1024
    top = README.read_text().splitlines()[:60]
    assert APP_COMMAND in top
    marker = top.index("<!-- test-command -->")  # what .ci/run runs: the code block after the marker
    fence = next(i for i in range(marker + 1, len(top)) if top[i].startswith("```"))
    end = next(i for i in range(fence + 1, len(top)) if top[i].startswith("```"))
    assert top[fence + 1:end] == [TEST_COMMAND]
    assert top.index(APP_COMMAND) < marker
    assert any(CPU_TORCH in line for line in top[end:]), "the CPU-only PyTorch note comes right after the commands"


# -- links --------------------------------------------------------------------------------------------------

def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def prose(text: str) -> str:
    """The text without code blocks and inline code, where brackets are not links."""
    return re.sub(r"`[^`\n]*`", "", re.sub(r"^```.*?^```", "", text, flags=re.S | re.M))


def anchors(path) -> set[str]:
    return {slug(line.lstrip("#")) for line in re.sub(r"^```.*?^```", "", path.read_text(), flags=re.S | re.M)
            .splitlines() if line.startswith("#")}


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_leads_somewhere(document):
    text = prose(document.read_text())
    targets = re.findall(r"\]\(([^)\s]+)\)", text) + re.findall(r'src="([^"]+)"', text)
    broken = []
    for target in targets:
        if re.match(r"[a-z]+:", target):  # http(s), mailto: not ours to check
            continue
        file, _, anchor = target.partition("#")
        path = (document.parent / file).resolve() if file else document
        if not path.exists() or ROOT not in path.parents:
            broken.append(target)
        elif anchor and path.suffix == ".md" and anchor not in anchors(path):
            broken.append(target)
    assert not broken, f"{document.name}: {broken}"


def test_the_readme_links_every_page_in_docs():
    linked = {(ROOT / target).resolve() for target in re.findall(r"\]\((docs/[^)#\s]+)", prose(README.read_text()))}
    assert set(DOCUMENTS[1:]) <= linked, sorted(str(p) for p in set(DOCUMENTS[1:]) - linked)
