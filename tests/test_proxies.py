"""The proxy evaluation sets (proxies/): fixed draws, choose and report apart, every non-digit kind drawn in ink,
measured through the app's path with figures that can fail, and selective prediction's curve computed right."""

import ast
import json

import numpy as np
import pytest

from conftest import MNIST_TINY, ROOT
from proxies import nondigits, photos, writers
from proxies.__main__ import main
from proxies.measure import Answer, selective
from proxies.shapes import KINDS
from proxies.store import cached
from vit.answer import SURE
from vit.data import load_split


TRAINING_PICTURES = {"vit.probes", "vit.rendered", "vit.augment", "vit.outliers"}  # what models learn or fit on


def test_the_sets_share_no_code_with_the_training_pictures():
    for path in (ROOT / "proxies").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module:
                names = {node.module} | {f"{node.module}.{a.name}" for a in node.names}
                assert not names & TRAINING_PICTURES, path.name
            if isinstance(node, ast.Import):
                assert not {a.name for a in node.names} & TRAINING_PICTURES, path.name


def test_drawn_non_digits_are_fixed_and_the_draws_differ():
    choose, again, report = nondigits.build("choose", 8), nondigits.build("choose", 8), nondigits.build("report", 8)
    assert choose.fingerprint == again.fingerprint
    assert choose.fingerprint != report.fingerprint
    assert not {p.data for p in choose.pictures} & {p.data for p in report.pictures}
    assert nondigits.build("choose", 4).pictures == choose.pictures[:4]  # a slice is the start of the draw


def test_writers_draws_are_fixed_and_disjoint():
    choose, report = writers.build("choose", 6), writers.build("report", 6)
    assert choose.fingerprint == writers.build("choose", 6).fingerprint
    assert not {p.data for p in choose.pictures} & {p.data for p in report.pictures}
    assert all(p.label in range(10) for p in choose.pictures + report.pictures)
    choose, report = writers.indices("choose", 1797), writers.indices("report", 1797)
    assert sorted(choose + report) == list(range(1797)) and max(choose) < min(report)


def test_photos_are_fixed_rgb_jpegs_of_their_digit(data_dir):
    test = load_split("mnist", "test", data_dir)
    first, again = photos.build("report", 1, test), photos.build("report", 1, test)
    assert first.fingerprint == again.fingerprint
    assert first.kinds() == list(photos.KINDS)
    for picture in first.pictures:
        image = picture.image()
        assert image.format == "JPEG" and image.mode == "RGB" and 400 <= min(image.size) <= max(image.size) <= 900
    chosen = np.random.default_rng(photos.SEEDS["report"]).choice(len(test), 6, replace=False)
    assert [p.label for p in first.pictures] == test.labels[chosen].tolist()


@pytest.mark.parametrize("kind", list(KINDS))
def test_every_non_digit_kind_is_drawn_in_ink(kind):
    grey = np.asarray(nondigits.picture(kind, np.random.default_rng(0)).image().convert("L"), dtype=np.float32)
    inked = (grey < 0.5 * np.median(grey)).mean()
    assert 0.003 < inked < 0.5, f"{kind}: {inked:.3%} of the page is ink"


def answer(label, best, confidence, refused=False):
    return Answer("k", "g", label, refused, best, confidence, not refused and confidence >= SURE)


def test_selective_ranks_refused_last_and_counts_an_answered_non_digit_as_an_error():
    digits = [answer(3, 3, 0.99), answer(5, 5, 0.9), answer(7, 1, 0.95, refused=True)]
    result = selective(digits, [answer(None, 4, 0.6)])
    # order: 3 (right), 5 (right), the non-digit (an error), the refused 7 (misread): risk 0, 0, 1/3, 2/4
    assert result.risk == pytest.approx([0, 0, 1 / 3, 0.5], abs=1e-4)
    assert result.aurc == pytest.approx((1 / 3 + 0.5) / 4, abs=1e-4)
    assert result.accepted == 0.75 and result.risk_accepted == pytest.approx(1 / 3, abs=1e-4)


def test_the_command_measures_the_tiny_model_through_the_app(data_dir, tmp_path, capsys):
    out = tmp_path / "proxies.json"
    fashion = ROOT / "weights" / "fashion" / "fashion-mnist"
    assert main([str(MNIST_TINY), str(fashion), "--draw", "choose", "--limit", "24", "--json", str(out),
                 "--fresh"]) == 0
    printed = capsys.readouterr().out
    assert "writers: read right" in printed and "models of other things" in printed
    record = json.loads(out.read_text())
    (garments,) = record["other_models"]  # nothing in the sets is a garment: all of it is for turning away
    assert [s["kind"] for s in garments["sets"]] == ["writers", "photos", "nondigits"]
    assert all(s["n"] == 24 and 0 <= s["turned_away"] <= 1 for s in garments["sets"])
    assert record["sizes"] == {"writers": 24, "photos": 24, "nondigits": 24}
    (model,) = record["models"]
    assert model["writers"]["read_right"] > 0.5
    assert 0 <= model["selective"]["aurc"] <= 1
    assert model["nondigits"]["n"] == 24 and 0 <= model["nondigits"]["turned_away"] <= 1
    refused = round(model["writers"]["refused"] * 24)
    assert refused <= sum(model["writers"]["reasons"].values()) <= 4 * refused  # each refused picture says why
    sharp = next(k for k in model["photo_kinds"] if k["kind"] == photos.KINDS[0])
    assert sharp["read_right"] >= 0.75  # a pen on white paper in even light is what any model reads


def test_a_stored_draw_comes_back_as_built_and_a_damaged_one_is_built_again(tmp_path):
    builds = []

    def build():
        builds.append(1)
        return nondigits.build("report", 3)
    first = cached("nondigits", "report", 3, build, tmp_path)
    again = cached("nondigits", "report", 3, build, tmp_path)
    assert len(builds) == 1 and again.pictures == first.pictures and again.fingerprint == first.fingerprint
    (stored,) = tmp_path.glob("*.npz")
    stored.write_bytes(stored.read_bytes()[:-40])
    assert cached("nondigits", "report", 3, build, tmp_path).pictures == first.pictures and len(builds) == 2
