"""The glossary (tabs/glossary.py) and the suggested path (tabs/lesson.py): every term the app links is defined,
every link into the glossary has an entry to land on, a term the app writes is linked, and the documents are
written from the modules."""

import ast
import re
from pathlib import Path

import pytest

from tabs import glossary, lesson

ROOT = Path(__file__).resolve().parent.parent
SOURCES = [ROOT / "app.py", *sorted((ROOT / "tabs").glob("*.py"))]
# The words a class asks about first: each must have its entry.
ASKED = ("evidence", "log-odds", "logit", "logit lens", "CLS token", "token", "word", "tile", "strip", "embedding",
         "positional embedding", "attention", "head", "block", "MLP", "residual stream", "attention rollout",
         "saliency", "occlusion", "relevance", "calibration", "temperature", "ECE", "not a digit", "faithfulness",
         "deletion curve", "insertion curve", "sanity check", "confusion matrix", "loss", "epoch", "preset",
         "the notebook", "the seed's recipe")


def is_term_call(node: ast.AST) -> bool:
    return isinstance(node, ast.Call) and (getattr(node.func, "id", None) == "term"
                                           or getattr(node.func, "attr", None) == "term")


def term_calls() -> list[tuple[str, ast.Call]]:
    """(file, call) for every call of glossary.term in the app's code."""
    return [(path.name, node) for path in SOURCES if path.name != "glossary.py"
            for node in ast.walk(ast.parse(path.read_text())) if is_term_call(node)]


def linked_names() -> set[str]:
    return {call.args[0].value for _, call in term_calls()}


def shown_text(path: Path) -> str:
    """The string constants of a module that can reach the page: not docstrings, not the glossary's own words."""
    tree = ast.parse(path.read_text())
    docstrings = {id(node.body[0].value) for node in ast.walk(tree)
                  if isinstance(node, (ast.Module, ast.FunctionDef, ast.ClassDef)) and node.body
                  and isinstance(node.body[0], ast.Expr) and isinstance(node.body[0].value, ast.Constant)}
    inside_terms = {id(argument) for node in ast.walk(tree) if is_term_call(node) for argument in node.args}
    return "\n".join(node.value for node in ast.walk(tree) if isinstance(node, ast.Constant)
                     and isinstance(node.value, str) and id(node) not in docstrings | inside_terms)


def test_every_term_the_app_links_is_defined_by_name():
    calls = term_calls()
    assert len(calls) >= 30, "the scan finds the links the tabs make"
    for file, call in calls:
        assert isinstance(call.args[0], ast.Constant), f"{file}:{call.lineno}: name the term literally"
        assert call.args[0].value in glossary.BY_NAME, f"{file}:{call.lineno}: {call.args[0].value!r} is not defined"


def test_every_link_into_the_glossary_lands_on_an_entry():
    anchors = re.findall(r'<a id="(glossary-[\w-]+)"></a>', glossary.section_text())
    assert len(anchors) == len(set(anchors)) == len(glossary.TERMS)
    written = {match for path in SOURCES for match in re.findall(r"#(glossary-[\w-]+)", path.read_text())}
    assert written <= set(anchors), written - set(anchors)  # a link written by hand, not through term()
    for entry in glossary.TERMS:
        target = re.search(r"\]\(#([\w-]+) ", glossary.term(entry.name))[1]
        assert target in anchors


def test_a_term_the_app_writes_is_linked_somewhere():
    text = "\n".join(shown_text(path) for path in SOURCES if path.name != "glossary.py")
    linked = linked_names()
    for entry in glossary.TERMS:
        name = entry.name.split(" (")[0]  # "Vision Transformer (ViT)" is written "Vision Transformer"
        flags = 0 if any(letter.isupper() for letter in name[1:]) else re.IGNORECASE  # MNIST is not "mnist"
        if re.search(rf"(?<![\w-]){re.escape(name)}(?![\w-])", text, flags):
            assert entry.name in linked, f"the app writes {name!r} but never links it to its entry"


@pytest.mark.parametrize("name", ASKED)
def test_the_terms_a_class_asks_about_are_defined(name):
    assert name in glossary.BY_NAME


def test_each_entry_is_one_plain_sentence():
    for entry in glossary.TERMS:
        assert entry.meaning[0].isupper() or entry.meaning[0].isdigit() or entry.meaning.startswith("ln("), entry
        assert entry.meaning.endswith(".") and not re.search(r"[.!?] [A-Z]", entry.meaning), entry
        assert '"' not in glossary.plain(entry.meaning)  # a link's title is written in double quotes


def test_docs_glossary_is_written_from_the_module():
    assert glossary.DOCUMENT.read_text() == glossary.document(), "run `python docs/classroom.py`"


def test_docs_app_holds_the_suggested_path():
    text = lesson.DOCUMENT.read_text()
    assert text.count(lesson.START) == text.count(lesson.END) == 1
    assert lesson.placed(text) == text, "run `python docs/classroom.py`"


def test_the_suggested_path_takes_every_tab_by_its_own_name_in_order():
    import tabs
    labels = {}
    for module in tabs.TABS:
        label, tab_id = re.search(r'gr\.Tab\("([^"]+)", id="([^"]+)"\)', Path(module.__file__).read_text()).groups()
        labels[tab_id] = label
    assert [(tab_id, name) for tab_id, name, _ in lesson.PATH] == list(labels.items())
    assert all(prompt.endswith("?") or prompt.endswith(".") for _, _, prompt in lesson.PATH)
