"""Teaching a trained model symbols of a visitor's own (vit.teach): a new head on the committed mnist-tiny's features,
fitted on five drawings of each symbol made with the pad's pen, reads new drawings right; the folder it is written to
loads as a trained model's; input it cannot learn from gets a sentence."""

import json

import numpy as np
import pytest
import torch

from conftest import MNIST_TINY
from picture_files import drawn_on_pad, symbol_strokes
from vit import registry, teach
from vit.bundle import CALIBRATION, EVALUATION_JSON, load_folder
from vit.preprocess import to_model_input

SYMBOLS = ["star", "heart", "arrow"]


def drawings(base, count: int, seed: int) -> tuple[list[np.ndarray], list[int]]:
    """`count` drawings of each symbol, as the pad sends them and framed as `base` frames its pictures."""
    rng = np.random.default_rng(seed)
    pictures, labels = [], []
    for label, name in enumerate(SYMBOLS):
        for _ in range(count):
            pictures.append(to_model_input(drawn_on_pad(symbol_strokes(name, rng)), base.framing).numpy())
            labels.append(label)
    return pictures, labels


@pytest.fixture(scope="module")
def base():
    model = load_folder(MNIST_TINY)
    model.model.eval().requires_grad_(False)
    return model


@pytest.fixture(scope="module")
def learned(base):
    return teach.teach(base, teach.lesson(SYMBOLS, *drawings(base, 5, seed=0)))


def test_three_symbols_taught_from_five_drawings_each_read_new_drawings_of_each_right(learned, base):
    pictures, labels = drawings(base, 4, seed=1)  # another hand's day: drawings it was not taught on
    with torch.no_grad():
        answers = learned.model(torch.from_numpy(np.stack(pictures))[:, None]).argmax(-1)
    assert answers.tolist() == labels
    assert learned.model.class_names == SYMBOLS and learned.model.head.out_features == 3


def test_the_encoder_is_the_base_models_unchanged_and_only_the_head_is_new(learned, base):
    taught, trained = learned.model.state_dict(), base.model.state_dict()
    assert taught.keys() == trained.keys()
    assert all(torch.equal(taught[key], trained[key]) for key in trained if not key.startswith("head."))
    assert learned.model.config == base.model.config | {"num_classes": 3, "class_names": SYMBOLS}


def test_it_is_measured_on_held_out_drawings_never_on_a_test_set(learned):
    evaluation, held_out = learned.evaluation, learned.held_out
    assert evaluation.split == "held-out drawings" and evaluation.n == 15 and evaluation.taught.drawings == [5, 5, 5]
    assert evaluation.taught.base == "mnist-tiny" and evaluation.taught.rounds == teach.ROUNDS
    matrix = np.array(evaluation.confusion_matrix)
    assert matrix.sum(axis=1).tolist() == [5, 5, 5]
    right = float((held_out.predictions == held_out.labels).float().mean())
    assert evaluation.accuracy == np.trace(matrix) / 15 == right
    # held out: the head that read a drawing never saw it, so its reading differs from the taught model's
    with torch.no_grad():
        taught = learned.model(held_out.images.float()[:, :1] / 255).softmax(-1)
    assert not torch.allclose(taught, held_out.probabilities, atol=1e-3)


def test_each_drawing_is_left_out_of_exactly_one_round(monkeypatch):
    labels = torch.tensor([0] * 7 + [1] * 5)
    lesson = teach.Lesson(("a", "b"), torch.zeros(12, 28, 28), labels)
    fitted, fit = [], teach.fit_head
    monkeypatch.setattr(teach, "fit_head", lambda found, *rest: fitted.append(len(found)) or fit(found, *rest))
    probabilities = teach.held_out(torch.randn(12, 2, 4), lesson)
    # a's drawings 6 and 7 are left out with its 1 and 2: rounds of 3, 3, 2, 2 and 2 drawings, 2 copies each
    assert sorted(fitted) == sorted(2 * (12 - left_out) for left_out in (3, 3, 2, 2, 2))
    assert probabilities.shape == (12, 2) and torch.allclose(probabilities.sum(-1), torch.ones(12))


def test_the_folder_loads_as_a_trained_models_without_calibration(learned, tmp_path):
    teach.write(learned, tmp_path / "taught")
    loaded = load_folder(tmp_path / "taught")
    pictures = learned.held_out.images.float()[:, 0] / 255
    with torch.no_grad():
        assert torch.equal(loaded.model(pictures[:, None]), learned.model(pictures[:, None]))
    assert not (tmp_path / "taught" / CALIBRATION).exists() and loaded.limits is None and loaded.temperature == 1
    assert json.loads((tmp_path / "taught" / EVALUATION_JSON).read_text())["taught"]["copies"] == teach.COPIES
    assert loaded.noun == "symbol" and loaded.data.class_names == tuple(SYMBOLS)
    assert loaded.framing == load_folder(MNIST_TINY).framing  # drawings are framed as the base model's dataset's
    card = (tmp_path / "taught" / "README.md").read_text()
    assert "taught 3 symbols: star, heart, arrow" in card and "read right by a head fitted without them" in card
    assert "test accuracy" not in card.lower()
    assert {image.label for image in loaded.worst()} <= {0, 1, 2} and len(loaded.examples()[0]) >= 12


def test_a_taught_model_is_kept_for_its_visitor_under_a_name_nobody_else_is_given(base):
    kept = teach.taught_model(base, teach.lesson(["heart", "arrow"], *drawings_of(base, ["heart", "arrow"])))
    name = kept.model.name
    assert name.startswith("taught-heart-arrow-") and kept.folder.name == name
    assert registry.bundle(name) is kept.model and name not in registry.model_names()
    assert (kept.folder / "model.safetensors").is_file()


def drawings_of(base, names: list[str]) -> tuple[list[np.ndarray], list[int]]:
    rng = np.random.default_rng(2)
    pairs = [(to_model_input(drawn_on_pad(symbol_strokes(name, rng)), base.framing).numpy(), label)
             for label, name in enumerate(names) for _ in range(5)]
    return [picture for picture, _ in pairs], [label for _, label in pairs]


@pytest.mark.parametrize("names, counts, words", [
    (["star"], [5], "at least 2 symbols"),
    (["a", "b", "c", "d", "e", "f"], [5] * 6, "at most 5 symbols"),
    (["star", " "], [5, 5], "one of them is empty"),
    (["star", "Star"], [5, 5], "“star” and “Star” are one name"),
    (["star", "heart", "star"], [5, 5, 5], "“star” is named twice"),
    (["star", "x" * 30], [5, 5], "too long for a name"),
    (["star", "heart"], [5, 4], "at least 5 times; so far: heart (4)"),
    (["star", "heart"], [5, 13], "at most 12 drawings of a symbol; heart has more"),
])
def test_what_cannot_be_taught_gets_a_sentence(names, counts, words):
    said = teach.problem(names, counts)
    assert words in said and said.endswith(".")
    pictures = [np.ones((28, 28), np.float32)] * sum(counts)
    labels = [index for index, count in enumerate(counts) for _ in range(count)]
    with pytest.raises(teach.TeachError, match=words.split("“")[-1][:12]):
        teach.lesson(names, pictures, labels)


def test_an_empty_drawing_is_refused_and_good_input_is_not():
    pictures, labels = [np.ones((28, 28), np.float32)] * 10, [0] * 5 + [1] * 5
    assert teach.problem(["star", "heart"], [5, 5]) is None
    teach.lesson(["star", "heart"], pictures, labels)
    with pytest.raises(teach.TeachError, match="One of the drawings is empty"):
        teach.lesson(["star", "heart"], [np.zeros((28, 28), np.float32)] + pictures[1:], labels)


@pytest.mark.parametrize("names, expected", [(("star", "heart"), "taught-star-heart"),
                                             (("Cœur ♥", "→"), "taught-c-ur"), (("♥", "★"), "taught")])
def test_a_taught_models_name_is_made_of_its_symbols_safe_words(names, expected):
    assert teach.slug(names) == expected
