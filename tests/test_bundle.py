"""The model folder as vit.bundle.load_folder reads it: every way a folder breaks is a ValueError naming the file and
why, and nothing in the code can read a model as a pickle (safetensors and JSON only).

test_model.py covers ViT.from_pretrained for a missing or extra tensor, another embed_size, zeroed bytes and float16;
these are the other ways a folder breaks, through the loader the app uses.
"""

import io
import re
import subprocess
import tokenize

import pytest

from conftest import MNIST_TINY, ROOT
from model_files import broken_copy, config_with, truncated, weights_with

BROKEN_FOLDERS = {  # case -> (the changes to the committed mnist-tiny, made when the test runs; words the error holds)
    "truncated weights": (lambda: {"model.safetensors": truncated(MNIST_TINY, "model.safetensors", 12000)},
                          "model.safetensors"),
    "empty weights": (lambda: {"model.safetensors": b""}, "model.safetensors"),
    "weights missing": (lambda: {"model.safetensors": None}, "model.safetensors is missing"),
    "weights damaged into NaN": (lambda: {"model.safetensors": weights_with(MNIST_TINY, lambda tensors: tensors | {
        "head.bias": tensors["head.bias"] * float("nan")})}, "head.bias holds values that are not numbers"),
    "config missing": (lambda: {"config.json": None}, "config.json"),
    "config not JSON": (lambda: {"config.json": b"{'tile_size': 7"}, "config.json"),
    "config a list": (lambda: {"config.json": b"[7, 16]"}, "config.json"),
    "evaluation.json not JSON": (lambda: {"evaluation.json": b'{"accuracy": 0.98,'}, "evaluation.json"),
    "evaluation tensors truncated": (lambda: {"evaluation.safetensors": truncated(MNIST_TINY, "evaluation.safetensors",
                                                                                  5000)}, "evaluation.safetensors"),
}
BAD_CONFIG_VALUES = {"tile size 5": dict(tile_size=5), "3 heads for 16 wide": dict(num_heads=3),
                     "unknown position embedding": dict(pos_embedding="rope"),
                     "tile size as text": dict(tile_size="7x7"),
                     "embed size null": dict(embed_size=None),
                     "class names for 2 of 10 outputs": dict(class_names=["zero", "one"])}


@pytest.mark.parametrize("case", list(BROKEN_FOLDERS))
def test_load_folder_names_the_broken_file(tmp_path, case):
    from vit.bundle import load_folder
    changes, words = BROKEN_FOLDERS[case]
    with pytest.raises(ValueError, match=re.escape(words)):
        load_folder(broken_copy(MNIST_TINY, tmp_path / "model", changes()))


@pytest.mark.parametrize("case", list(BAD_CONFIG_VALUES))
def test_a_config_the_model_refuses_is_named(tmp_path, case):
    from vit.bundle import load_folder
    with pytest.raises(ValueError, match="config.json"):
        load_folder(broken_copy(MNIST_TINY, tmp_path / "model",
                                {"config.json": config_with(MNIST_TINY, **BAD_CONFIG_VALUES[case])}))


@pytest.mark.parametrize("command", [["vit.evaluate"], ["proxies", "--limit", "5"]])
def test_a_command_given_a_folder_without_a_model_says_so_in_one_line(tmp_path, command):
    import sys
    result = subprocess.run([sys.executable, "-m", *command, str(tmp_path)], cwd=ROOT, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    assert result.stderr.strip().splitlines()[-1].endswith(f"error: {tmp_path / 'config.json'} "
                                                           + ("cannot be read (No such file or directory)"
                                                              if command[0] == "vit.evaluate" else "is missing"))


# -- no pickles ------------------------------------------------------------------------------------------------

def unsafe_loads(source: str) -> list[str]:
    """Code (not comments or prose) that can unpickle: torch.load, pickle, joblib, weights_only=False and kin."""
    found = []
    tokens = [t for t in tokenize.generate_tokens(io.StringIO(source).readline)
              if t.type not in (tokenize.COMMENT, tokenize.NL, tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT)]
    modules = ("pick" + "le", "job" + "lib", "di" + "ll", "cloudpick" + "le", "shel" + "ve", "mar" + "shal")
    for index, token in enumerate(tokens):
        text, following = token.string, [t.string for t in tokens[index + 1:index + 3]]
        where = f"line {token.start[0]}: "
        if token.type == tokenize.NAME and ("pick" + "le" in text.lower() or text in modules):
            found.append(where + text)  # import pickle, cPickle, allow_pickle=..., _load_as_pickle, joblib, ...
        elif token.type == tokenize.STRING and text.strip("'\"") in modules:
            found.append(where + text)  # importlib.import_module("pickle")
        elif token.type == tokenize.NAME and text == "torch" and following in ([".", "lo" + "ad"],
                                                                                [".", "serialization"]):
            found.append(where + "torch." + following[1])
        elif token.type == tokenize.NAME and text == "weights_only" and following == ["=", "False"]:
            found.append(where + "weights_only=False")
    return found


def test_no_unsafe_deserialisation_in_any_tracked_python_file():
    planted = "import " + "pick" + "le\nx = torch." + "load(f, weights_only" + "=False)\n"
    assert len(unsafe_loads(planted)) == 3  # the search finds what it looks for
    listing = subprocess.run(["git", "ls-files", "*.py"], cwd=ROOT, capture_output=True, text=True, check=True)
    files = listing.stdout.split()
    assert "vit/model.py" in files and "app.py" in files  # the listing worked
    found = {name: hits for name in files if (ROOT / name).is_file()
             and (hits := unsafe_loads((ROOT / name).read_text(encoding="utf-8")))}
    assert found == {}, f"code that can load a pickle: {found}"
