"""Every tab's view functions and handlers, called directly on the committed models: no server, no browser."""

import json
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

from conftest import registered
from vit import registry
from picture_files import (CANVAS, PICTURES, assert_friendly, dot_on, exif_rotated, pixels, sixteen_bit,
                           write_picture)
from vit.preprocess import data_url
from tabs import glossary, images, picture as current, shared


def rgb(picture) -> bool:
    """An RGB uint8 picture; one handed to a gradio image (tabs.images.described) must also say what it shows."""
    if isinstance(picture, dict):
        alt = picture.get("alt_text")
        picture = pixels(picture["value"]) if isinstance(alt, str) and len(alt) > 20 and picture.get("visible") else None
    return isinstance(picture, np.ndarray) and picture.ndim == 3 and picture.shape[2] == 3 and picture.dtype == np.uint8


def test_models_are_registered_default_first(models):
    # weights/ and its group folders (weights/fashion/), not the zoo (the Compare tab's)
    names = registry.model_names()
    assert names[0] == "mnist" and set(names) == {"mnist", "mnist-tiny", "mnist-fast", "fashion-mnist-tiny",
                                                  "fashion-mnist"}
    assert registry.bundle("no such model").name == "mnist"


@pytest.mark.parametrize("name", ["mnist", "mnist-tiny"])
def test_predict_reads_a_stored_seven_and_draws_every_map(models, name):
    from tabs import predict
    model = models[name]
    picture = current.start_picture(model)
    status, confidences = predict.answer(model, picture)
    assert max(confidences, key=confidences.get) == "7" and "reads **7**" in status
    seen, attention, rollout, saliency, occlusion, words = predict.maps(model, picture)
    assert all(rgb(p) for p in (seen, attention, rollout, saliency, occlusion)) and "log-odds" in words
    layers, heads = model.model.num_layers, model.model.num_heads
    height, width, _ = pixels(attention["value"]).shape
    assert width > layers * 112 and height > heads * 112  # a 112-px map per layer and head


def stroke(canvas: np.ndarray | None):
    """The event a stroke on the drawing pad sends: its canvas as a PNG data URL (None: the pad was cleared)."""
    from tabs import pad
    return pad.event(None if canvas is None else data_url(canvas))


def test_predict_drawing_then_maps_is_the_label_first_then_the_pictures(models):
    from tabs import predict
    example = models["mnist"].example(3)
    canvas = np.full((336, 336), 255, np.uint8)
    canvas[28:308, 28:308] = 255 - np.kron(example.pixels, np.ones((10, 10), np.uint8))  # black ink on white
    current, status, label, _ = predict.read_drawing("mnist", stroke(canvas))
    assert current.source == "your drawing" and current.original is not None
    assert max(label, key=label.get) == "3"
    *pictures, words = predict.show_maps(current, "mnist")
    assert all(rgb(p) for p in pictures) and "log-odds" in words


@pytest.mark.parametrize("canvas, words", [(np.full((CANVAS, CANVAS), 255, np.uint8), "Draw a digit first"),
                                           (None, "Draw a digit on the pad")], ids=["blank", "cleared"])
def test_predict_a_blank_or_cleared_pad_asks_for_a_digit_and_clears_the_maps(models, canvas, words):
    from tabs import predict
    current, status, label, _ = predict.read_drawing("mnist", stroke(canvas))
    assert current is None and words in status
    assert label == (predict.PROMPT if canvas is None else "digit not read")  # nothing sent, or nothing to read
    assert predict.show_maps(current, "mnist") == predict.no_maps()
    assert_friendly(status)


def test_predict_a_drawing_that_is_not_a_png_data_url_gets_a_message(models):
    # the pad's event is the page's to send: a hand-made request can put anything in it
    import gradio as gr
    from tabs import pad, predict
    for value in ["data:image/png;base64,!!!", "data:text/html;base64,PGI+", "data:image/png;base64,",
                  "data:image/png;base64," + "A" * 5_000_000, 42, ["a list"],
                  "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAA"]:  # a PNG cut off after its header
        current, status, label, _ = predict.read_drawing("mnist-tiny", pad.event(value))
        assert current is None and label == "digit not read", value
        assert_friendly(status)
    assert predict.read_drawing("mnist-tiny", gr.EventData(None, None))[0] is None  # an event without data


def test_predict_one_dot_on_the_pad_is_refused_as_too_small(models, digits):
    from tabs import predict
    drawing, label = digits[8]  # control: a real digit drawn on the same canvas is read right
    canvas = Image.new("L", (CANVAS, CANVAS), 255)
    canvas.paste(drawing, (28, 28))
    confidences = predict.read_drawing("mnist-tiny", stroke(np.asarray(canvas)))[2]
    assert max(confidences, key=confidences.get) == str(label)
    # one pen dot spans 27 of the pad's 336 pixels, under vit.preprocess.MIN_SPAN: a message, never a guess
    current, status, label, _ = predict.read_drawing("mnist-tiny", stroke(np.asarray(dot_on(CANVAS))))
    assert current is None and label == "digit not read" and "too small to be a digit" in status, status
    assert_friendly(status)


@pytest.mark.parametrize("name", list(PICTURES))
def test_predict_upload_gives_the_digit_or_a_clear_message(models, digits, tmp_path, name):
    """An upload feeds the Predict tab: a digit is read right; anything else leaves it empty with a message."""
    from tabs import predict
    current, status, label, pad = predict.read_upload(str(write_picture(name, digits, tmp_path)), "mnist-tiny")
    assert pad.startswith("wiped")  # an upload takes the drawing's place, read or not
    pictures = predict.show_maps(current, "mnist-tiny")
    kind, expected = PICTURES[name][1]
    if kind == "digit":
        assert max(label, key=label.get) == str(digits[expected][1]), status
        assert current.input.shape == (28, 28) and max(current.original.shape[:2]) <= 280
        assert all(rgb(picture) for picture in pictures[:-1]) and "log-odds" in pictures[-1]
    else:
        assert current is None and pictures == predict.no_maps()
        assert expected in status and label == "digit not read", status  # not "Draw a digit": one was sent
        assert_friendly(status)


def test_predict_your_image_of_an_exif_rotated_photo_is_upright(models, tmp_path):
    from tabs import predict
    upright = Image.new("L", (200, 300), 255)  # taller than wide, so a sideways thumbnail has another shape
    ImageDraw.Draw(upright).line([(40, 40), (160, 40), (80, 260)], fill=0, width=14)
    path = tmp_path / "photo.jpg"
    path.write_bytes(exif_rotated(upright))
    original = predict.read_upload(str(path), "mnist-tiny")[0].original
    assert original.shape[:2] == (280, 187)  # (height, width) of the upright picture fitted into 280x280


def test_predict_your_image_of_a_16_bit_png_shows_the_digit(models, digits, tmp_path):
    from tabs import predict
    drawing = digits[2][0]
    path = tmp_path / "sixteen.png"
    path.write_bytes(sixteen_bit(drawing))
    original = predict.read_upload(str(path), "mnist-tiny")[0].original
    grey = np.asarray(Image.fromarray(original).convert("L"), dtype=np.float32)
    assert np.abs(grey - np.asarray(drawing, dtype=np.float32)).mean() < 10  # grey levels, out of 255


def test_predict_refresh_gives_every_output_for_the_new_model(models):
    from tabs import predict
    outputs = predict.refresh("mnist-tiny", current.start_picture(models["mnist"]))
    # the picture, status, label, five maps, their words, ten examples, the words above the pad and the examples,
    # and what the maps show
    assert len(outputs) == 13 and len(outputs[9]) == 10 and outputs[0].source == "a test 7"
    assert "Draw a digit" in outputs[10] and outputs[11] == "or pick a test digit:" and "bar of a 7" in outputs[12]


def test_a_model_switch_reads_the_same_drawing_with_the_new_model(models, digits):
    """Never a pad showing one picture and an answer about another: a drawing (or an upload) is read again by the
    new model, framed as its dataset frames its own, and read as the same digit on the way back."""
    from tabs import predict
    four = current.picture_from_drawing(data_url(padded(digits[4][0])), models["mnist"])
    for name in ("fashion-mnist", "fashion-mnist-tiny", "mnist-tiny", "mnist-fast", "mnist"):
        picture, status, label = predict.refresh(name, four)[:3]
        assert picture.source == "your drawing" and picture.sent == four.sent and status.startswith("### "), name
        assert picture.dataset == models[name].dataset and "your drawing" in status, name
        if models[name].dataset == "mnist":
            assert max(label, key=label.get) == str(digits[4][1]), name
    assert np.array_equal(predict.refresh("mnist", predict.refresh("fashion-mnist", four)[0])[0].input, four.input)
    assert predict.refresh("fashion-mnist", None)[0] is None  # a cleared pad stays cleared


def test_an_example_or_a_sent_picture_empties_the_pad_and_the_upload(models):
    from tabs import predict
    picked = predict.read_example("mnist", gradio_select(3))
    assert picked[0].source == "a test 3" and picked[3].startswith("wiped") and picked[4] is None
    assert picked[3] != predict.read_example("mnist", gradio_select(3))[3]  # a new value each time: the page wipes
    sent = predict.show(picked[0], "mnist")
    assert sent[0].startswith("wiped") and sent[1] is None and "a test 3" in sent[2]
    removed, status, label = predict.remove_upload("mnist")
    assert removed is None and label == predict.PROMPT and "upload a picture" in status


def test_the_picture_a_model_of_another_dataset_reads(models, digits, tmp_path):
    fashion, mnist = models["fashion-mnist"], models["mnist"]
    stored = current.start_picture(fashion)
    assert current.picture_for(mnist, stored).source == "a test 7"  # a stored garment is no digit: the start
    assert current.picture_for(fashion, stored) is stored and current.picture_for(mnist, None).source == "a test 7"
    path = tmp_path / "four.png"
    path.write_bytes(data_url_bytes(padded(digits[4][0])))
    uploaded = current.picture_from_file(str(path), mnist)
    again = current.picture_for(fashion, uploaded)
    assert again.source == "your picture" and again.dataset == "fashion-mnist" and again.sent == str(path)
    path.unlink()  # gradio removed the upload's temporary file: the garment model starts from its own example
    assert current.picture_for(fashion, uploaded).source == "a test T-shirt/top"
    assert "no longer be read" in current.reread(uploaded, fashion)


def padded(digit: Image.Image) -> np.ndarray:
    """A test digit on the pad's white canvas, as a visitor would draw it."""
    canvas = Image.new("L", (CANVAS, CANVAS), 255)
    canvas.paste(digit, (28, 28))
    return np.asarray(canvas)


def data_url_bytes(canvas: np.ndarray) -> bytes:
    import base64
    return base64.b64decode(data_url(canvas).split(",", 1)[1])


def gradio_select(index: int):
    import gradio as gr
    return gr.SelectData(None, {"index": index, "value": None})


def test_a_fashion_model_has_its_own_examples_words_and_framing(models):
    from tabs import predict
    fashion = models["fashion-mnist-tiny"]
    assert fashion.class_names[0] == "T-shirt/top" and fashion.noun == "fashion item"
    outputs = predict.refresh(fashion.name, current.start_picture(models["mnist"]))  # from the digits' 7
    assert outputs[0].source == "a test T-shirt/top" and outputs[0].dataset == "fashion-mnist"
    assert "digit" not in outputs[10] and "Draw a fashion item" in outputs[10] and "fashion item" in outputs[11]
    assert "digit" not in outputs[12] and "sandal" in outputs[12]  # what is missing, told with garments
    assert "T-shirt/top" in outputs[1] and "digit" not in glossary.visible(outputs[1])  # a link's target may say it
    first, _ = fashion.examples(0)
    assert np.array_equal(np.asarray(outputs[9][0][0])[::4, ::4], first[0].numpy())  # its own test T-shirt
    # a drawn shape fills the frame, centred by its box, as Fashion-MNIST's pictures do (a digit: 20 px, by mass)
    pad = np.full((336, 336), 255, np.uint8)
    pad[100:300, 40:120] = 0  # a tall bar, low and to the left
    item = current.picture_from_drawing(data_url(pad), fashion).input
    digit = current.picture_from_drawing(data_url(pad)).input
    rows, cols = np.nonzero(item > 0.05)
    assert rows.max() - rows.min() + 1 == 28 and abs((cols.min() + cols.max()) / 2 - 13.5) <= 0.5
    assert np.ptp(np.nonzero(digit > 0.05)[0]) + 1 == 20


def test_a_class_from_before_a_model_switch_falls_back_to_the_models_example(models):
    import gradio as gr
    from tabs import confusion, labels, tiling
    from tabs.picture import default_label
    from tabs.shared import ClassBoxes, ClassDropdown, ClassRadio
    fashion = models["fashion-mnist-tiny"]
    names = fashion.class_names
    for ours, theirs, stale, fresh in [(ClassRadio, gr.Radio, "7", "Trouser"), (ClassDropdown, gr.Dropdown, "7", "Trouser"),
                                       (ClassBoxes, gr.CheckboxGroup, ["3", "7"], ["Trouser"])]:
        with pytest.raises(gr.Error, match="not in the list of choices"):  # what gradio's own menu does with it
            theirs(names).preprocess(stale)
        assert ours(names).preprocess(stale) == stale and ours(names).preprocess(fresh) == fresh, ours
    picture, text, code = tiling.tiling_view(fashion, "7", "tiles", 7, None)
    default = names[default_label(fashion)]
    assert f"cut from a test {default}" in text and picture is not None  # the default example, no error
    true, predicted = confusion.most_common_mistake(fashion)
    *_, pair_text = confusion.show_pair(fashion.name, "4", "9")  # the digits' pair, sent as garments came in
    assert pair_text == confusion.show_pair(fashion.name, names[true], names[predicted])[-1]
    assert names[true] in pair_text and "4 read as 9" not in pair_text
    started = labels.show_labels(fashion.name, labels.start_labels(fashion), list(labels.VIEWS)[0], False)
    assert np.array_equal(labels.show_labels(fashion.name, ["3", "7"], list(labels.VIEWS)[0], False)["value"],
                          started["value"])


def test_tiling_view_agrees_by_hand_and_with_einops_for_every_cut(models):
    from tabs import tiling
    # strips are sized in pixels as tiles are, and as the zoo names them: vertical-strips-2 is 14 strips 2 px wide
    for cut, size, strips, words, said in [("tiles", "4", "2", 49, "tiles of 4×4 pixels"),
                                           ("horizontal strips", "7", "2", 14, "horizontal strips 2 rows high"),
                                           ("vertical strips", "28", "4", 7, "vertical strips 4 columns wide")]:
        _, _, picture, text, code = tiling.show_tiling("mnist", "7", cut, size, strips, None)
        assert rgb(picture) and f"{words} words + 1 CLS token = {words + 1} tokens**: {said}" in text and "✓" in text
        assert f"({1}, {words}, 1" in code


def test_tiling_has_one_size_control_per_kind_of_cut_and_says_one_tile(models):
    from tabs import tiling
    tiles, strips = tiling.size_controls("horizontal strips")
    assert (tiles.visible, strips.visible) == (False, True)
    *_, text, code = tiling.show_tiling("mnist", "7", "tiles", "28", "7", None)
    assert "1 word + 1 CLS token = 2 tokens" in text and "1 words" not in text


def test_a_tile_size_set_for_another_model_becomes_the_new_models_own(models):
    """A redraw that waited while the menu changed reads the new model with the old model's tile size."""
    from tabs import tiling
    size, sized_for, _, text, _ = tiling.show_tiling("mnist-tiny", "7", "tiles", "4", "7", None, "mnist")
    assert size.value == "7" and sized_for == "mnist-tiny" and "16 words + 1 CLS token" in text
    size, _, _, text, _ = tiling.show_tiling("mnist-tiny", "7", "tiles", "4", "7", None, "mnist-tiny")
    assert size.value == "4" and "49 words" in text  # chosen on this model: kept


def test_the_warm_up_draws_the_tiling_a_new_page_opens_on(models, monkeypatch):
    import app
    from tabs import tiling
    with registered():  # build_demo registers the models (and forgets every drawing cached before)
        demo = app.build_demo(list(models.values()))
        opening = {block.elem_id: block.value for block in demo.blocks.values()
                   if getattr(block, "elem_id", None) in ("tiling-source", "tiling-cut", "tiling-size")}
        first = models["mnist"]
        tiling.warm(first)
        monkeypatch.setattr(tiling, "tiling_picture", lambda *args: pytest.fail("drawn again"))
        tiling.show_tiling(first.name, opening["tiling-source"], opening["tiling-cut"], opening["tiling-size"], "4",
                           None)


def test_tiling_of_the_predict_tabs_digit_and_without_one(models):
    from tabs import tiling
    *_, text, _ = tiling.show_tiling("mnist", tiling.YOURS, "tiles", "7", "7", None)
    assert "the Predict tab has no picture yet" in text
    *_, text, _ = tiling.show_tiling("mnist", tiling.YOURS, "tiles", "7", "7", current.start_picture(models["mnist"]))
    assert "the Predict tab's picture (a test 7" in text and "your digit" not in text


def test_confusion_opens_at_the_most_common_mistake_and_maps_clicks_to_cells(models):
    from tabs import confusion
    model = models["mnist"]
    picture, items, text = confusion.refresh("mnist")
    true, predicted = (menu.value for menu in confusion.pair_choices("mnist"))
    matrix = model.confusion
    t, p = model.class_names.index(true), model.class_names.index(predicted)
    assert t != p and matrix[t, p] == (matrix - np.diag(np.diag(matrix))).max()
    assert len(items) == matrix[t, p] and f"**{matrix[t, p]:,}**" in text
    _, (left, top, right, bottom) = confusion.matrix_picture("mnist", None)
    x, y = left + 7.5 * (right - left) / 10, top + 2.5 * (bottom - top) / 10
    assert confusion.cell_at(model, x, y) == (2, 7)
    assert confusion.cell_at(model, left - 5, top - 5) is None


def test_worst_losses_are_mistakes_highest_first_captioned_under_the_digit(models):
    from tabs import worst
    model = models["mnist"]
    stored = model.worst(model.mistakes)
    assert all(image.prediction != image.label for image in stored)  # the loss order puts every mistake first
    assert [image.loss for image in stored] == sorted((image.loss for image in stored), reverse=True)
    items = worst.show_worst("mnist", 1000)  # more than there are: capped at the mistakes
    assert len(items) == model.mistakes == worst.most(model)
    (picture, caption), (first, *_) = items[0], stored
    digit = np.asarray(picture)[:112 * 1]  # the enlarged 28×28 digit is the top 112 rows, untouched by text
    names = model.class_names  # the caption is the picture's alt text: the words drawn under it, as a sentence
    assert caption == f"a {names[first.label]} read as {names[first.prediction]}, loss {first.loss:.1f}"
    assert picture.height > 112 and np.array_equal(digit[..., 0], np.asarray(
        worst.captioned(stored[0].pixels, "x"))[:112, :, 0])
    slider, gallery, none = worst.refresh("mnist", 64)
    assert slider.maximum == model.mistakes and none == "" and gallery.visible and len(gallery.value) == model.mistakes


def test_positions_labels_and_about_draw(models):
    from tabs import about, labels, positions
    for name in ("mnist", "mnist-tiny"):  # figure 7 in full for every model
        components, grid, reach, raw, text = positions.show_positions(name)
        assert all(rgb(p) for p in (components, grid, reach, raw)) and "learned" in text
        assert "uniform attention over the tiles would reach" in text
    assert rgb(labels.show_labels("mnist", ["3", "7"], "CLS → tiles, in the tile layout", True))
    curve, diagram, text, selective = about.show_about("mnist")
    accuracy = f"{models['mnist'].accuracy * 100:.2f} %"
    assert rgb(curve) and rgb(diagram) and rgb(selective) and accuracy in text
    assert "Pictures people bring" in text and "Risk-coverage curve" in selective["alt_text"]
    assert "Expected calibration error" in text and "| tile side or strip width, pixels | 4 |" in text  # a row each
    # a fine-tune says so, with the command of the weights it began from; one trained for its epochs says no budget
    assert "Fine-tuned for another 8 epochs" in text and "--budget 105m" in text and "&& python train.py --start-from" in text
    _, _, text, _ = about.show_about("mnist-tiny")
    assert "Fine-tuned for another 20 epochs" in text and "`--budget`" not in text
    _, _, text, _ = about.show_about("fashion-mnist")  # a fine-tune of a --budget run names that budget
    assert "Fine-tuned for another 8 epochs" in text and "--budget 95m" in text
    # a --budget run says what it was given and what it took
    _, _, text, _ = about.show_about("fashion-mnist-tiny")
    assert "a budget of 1080 s (`--budget`), evaluation included: 341 epochs fitted, and the whole run took 1049 s" in text


def test_the_about_tab_shows_programs_the_address_the_page_was_opened_at():
    from types import SimpleNamespace
    from tabs import about
    def opened(headers: dict, scheme: str = "http"):
        return SimpleNamespace(headers=headers, request=SimpleNamespace(url=SimpleNamespace(scheme=scheme)))
    assert 'Client("http://127.0.0.1:7871/")' in about.program_for(opened({"host": "127.0.0.1:7871"}))
    behind_a_proxy = about.program_for(opened({"host": "10.0.0.2:7860", "x-forwarded-host": "me-vit.hf.space",
                                               "x-forwarded-proto": "https"}))
    assert 'Client("https://me-vit.hf.space/")' in behind_a_proxy
    assert "`https://me-vit.hf.space/gradio_api/mcp/`" in behind_a_proxy


def test_a_model_switch_sets_every_class_menu_to_the_new_models_classes(models):
    from tabs import confusion, labels, tiling
    fashion = models["fashion-mnist-tiny"]
    (boxes,) = labels.label_choices(fashion.name)
    true, predicted = confusion.pair_choices(fashion.name)
    (source,) = tiling.source_choices(fashion.name)
    names = fashion.class_names
    assert [c[0] for c in boxes.choices] == names and set(boxes.value) <= set(names) and boxes.value
    assert [c[0] for c in true.choices] == names and true.value in names and predicted.value in names
    assert [c[0] for c in source.choices] == names + [tiling.YOURS] and source.value == "T-shirt/top"


def test_one_model_switch_listener_skips_lazy_tabs_that_are_closed(models):
    import app
    from tabs.shared import TabWiring
    calls, header = [], ("info", "notice")
    eager = TabWiring("predict", None, lambda name, x: calls.append(("eager", name, x)) or ("a", "b"), [1], [1, 2])
    lazy = TabWiring("about", None, lambda name: calls.append(("lazy", name)) or "c", [], [3], lazy=True)
    updates = app.switch_model([eager, lazy], header, "mnist-tiny", "predict", "x")
    assert calls == [("eager", "mnist-tiny", "x")] and updates[1] == "a" and updates[2] == "b"
    assert 3 not in updates and "mnist-tiny" in updates["info"]  # the closed lazy tab is left as it is
    updates = app.switch_model([eager, lazy], header, "mnist-tiny", "about", "x")
    assert calls[-1] == ("lazy", "mnist-tiny") and updates[3] == "c"
    # a closed lazy tab's class menus are set all the same
    lazy.controls, lazy.control_outputs = (lambda name: calls.append(("menus", name)) or ("d",)), [4]
    updates = app.switch_model([eager, lazy], header, "mnist-tiny", "predict", "x")
    assert calls[-1] == ("menus", "mnist-tiny") and updates[4] == "d" and 3 not in updates


def test_predict_offers_the_numbers_behind_the_maps(models):
    import gradio as gr

    from tabs import predict
    model = models["mnist"]
    written = predict.export_numbers(current.start_picture(model), "mnist")
    numbers = json.loads(Path(written.value["path"]).read_text())
    grid = 28 // model.model.tile_size
    assert numbers["picture"] == "a test 7" and len(numbers["input"]) == 28 and len(numbers["rollout"]["values"]) == grid
    assert np.asarray(numbers["cls_attention"]["values"]).shape == (model.model.num_layers, model.model.num_heads, grid, grid)
    assert np.asarray(numbers["occlusion"]["two_by_two"]).shape == (grid, grid)
    assert max(range(10), key=numbers["probabilities"].__getitem__) == 7 and numbers["label"] == "7"
    layers, heads, tokens = model.model.num_layers, model.model.num_heads, grid * grid + 1
    assert np.asarray(numbers["attention"]["values"]).shape == (layers, heads, tokens, tokens)
    assert np.allclose(numbers["logit_lens"]["logits"][-1], numbers["logits"], atol=1e-5)
    with pytest.raises(gr.Error, match="Draw, upload or pick a digit first"):
        predict.export_numbers(None, "mnist")


def test_occlusion_says_how_much_blanking_moves_the_answer():
    from tabs import predict
    small = np.full((4, 4), 0.004)
    assert "no single tile decides" in predict.occlusion_words(small, small * 3, "7")
    big = small.copy()
    big[1, 2] = -2.5
    assert "the tile that matters most moves the answer *7* by 2.5 log-odds" in predict.occlusion_words(big, big, "7")


@pytest.mark.parametrize("name", ["mnist", "mnist-tiny"])
def test_which_map_to_trust_tests_the_picture_and_shows_the_scoreboard(models, name):
    from tabs import trust
    model = models[name]
    heading, target, maps, curves, words, chart, board = trust.show_trust(name, None, None)
    assert "a test 7" in heading and target.value == trust.ANSWER and rgb(maps) and rgb(curves)
    assert "on this picture **" in words and "was the most faithful" in glossary.visible(words)
    assert words.count("\n| ") == 9  # the header and its rule, six methods and the random orders
    assert rgb(chart) and "finds the tiles the answer needs best" in board
    best = model.evaluation.faithfulness.best
    assert f"**{best}** finds the tiles" in board
    _, _, _, _, why_not, _, _ = trust.show_trust(name, current.start_picture(model), "9")
    assert "why *9*" in why_not


def test_a_folder_without_a_scoreboard_says_how_to_measure_it(models):
    from dataclasses import replace

    from tabs import trust
    model = models["mnist"]
    bare = replace(model, evaluation=replace(model.evaluation, faithfulness=None))
    assert "--faithfulness --write" in trust.scoreboard_words(bare)
    assert "has no scoreboard, so only this picture's curves speak" in trust.bottom_line(bare, "occlusion", None)


@pytest.mark.parametrize("name, believe, faster", [("mnist", "relevance", "Rollout"),
                                                    ("mnist-tiny", "integrated gradients", None),
                                                    ("fashion-mnist-tiny", "occlusion", None)])
def test_which_map_to_trust_ends_in_a_bottom_line_from_both_tests(models, name, believe, faster):
    from tabs import trust
    heading = trust.show_trust(name, None, None)[0]
    assert f"**Bottom line for {name}:** believe **{believe}**" in heading
    assert "On this picture **" in heading and "refuses" not in heading
    # the method with the fastest deletion is named when it is not the one to believe, with the reason
    assert (f"{faster} finds them faster but fails the sanity check" in heading) if faster else "faster" not in heading


def test_a_strip_model_with_no_map_both_faithful_and_sane_says_so(models, zoo):
    from tabs import trust
    with registered([*models.values(), zoo["vertical-strips-2"]]):
        heading = glossary.visible(trust.show_trust("vertical-strips-2", None, None)[0])
    assert "no map is both faithful and sane on its 1,000 test digits; treat every map as a hint" in heading
    shown = trust.show_trust("mnist-fast", None, None)  # the menu's model of 7 strips of 4 rows
    assert "no map is both faithful and sane on its 1,000 test digits; treat every map as a hint" in \
        glossary.visible(shown[0])
    words = glossary.visible(shown[4]).split("\n\n")[0]  # the picture's sentence, before its table
    assert "Blanking the strips in its order" in words and "tile" not in words


def test_a_refused_picture_says_so_before_its_maps_are_explained(models):
    from vit import probes
    from tabs import trust
    model = models["mnist"]
    noise = np.asarray(probes.noise(np.random.default_rng(0)).convert("L").resize((28, 28)), np.float32) / 255
    picture = current.Picture(noise, "some noise")
    assert model.read(picture.input).refused  # the Predict tab gives no digit for it
    heading = trust.show_trust("mnist", picture, None)[0]
    assert heading.index("**The Predict tab refuses this picture.**") < heading.index("**Bottom line for mnist:**")


@pytest.mark.parametrize("component", ["Image", "Gallery"])
def test_a_picture_sent_twice_is_not_rewritten_under_the_browser(component, tmp_path, monkeypatch):
    # gradio rewrites its cached copy of an array on every send; a second send of the same picture could then
    # truncate the file while the browser fetches it (the Tiling tab's picture that never showed).
    import gradio as gr
    from gradio.processing_utils import move_files_to_cache
    from tabs import images
    # a cache of the test's own: a cache shared between runs may hold the file an earlier run overwrote
    monkeypatch.setenv("GRADIO_TEMP_DIR", str(tmp_path / "gradio"))
    picture = (np.arange(28 * 28 * 3, dtype=np.uint64).reshape(28, 28, 3) % 251).astype(np.uint8)
    block = getattr(images, component)()
    plain = getattr(gr, component)()

    def cached_copy(block) -> str:
        data = block.postprocess(picture if component == "Image" else [(picture, "a caption")])
        data = move_files_to_cache(data, block, postprocess=True)
        return data["path"] if component == "Image" else data[0]["image"]["path"]

    first = cached_copy(block)
    assert np.array_equal(np.asarray(Image.open(first).convert("RGB")), picture)
    for block_, rewritten in ((block, False), (plain, True)):
        first = cached_copy(block_)
        Path(first).write_bytes(b"what the browser is reading")  # stands in for a copy mid-fetch
        second = cached_copy(block_)
        assert second == first and (Path(second).read_bytes() != b"what the browser is reading") is rewritten


@pytest.fixture(scope="module")
def zoo():
    """The Compare tab's zoo, registered with the tab for the module; the previous registration is put back."""
    from tabs import compare
    bundles = compare.load_zoo()
    with registered():
        registry.use_zoo(bundles)
        yield {bundle.name: bundle for bundle in bundles}


def test_compare_lists_the_zoo_and_reads_the_picture_with_every_model(models, zoo):
    from tabs import compare
    assert list(zoo) == list(compare.ORDER)  # the six, in the table's order
    table, read, art, words, *experiments = compare.show_compare(current.start_picture(models["mnist"]), *NOTHING_RUN)
    assert experiments == [images.described(None, None), "", ""]  # no experiment run yet: its picture hidden
    for name, bundle in zoo.items():
        assert f"| **{name}** |" in table and f"{bundle.accuracy * 100:.2f} %" in table
        assert f"| {name} | **" in read
    assert "horizontal strips 2 rows high: 14 + CLS" in table and "tiles of 7×7 pixels: 16 + CLS" in table
    assert rgb(art) and "Taking the positions away costs" in words
    gap = (zoo["tiles-7"].accuracy - zoo["tiles-7-no-positions"].accuracy) * 100
    assert f"costs {gap:.2f} points" in words
    assert "the same recipe for the same 14 epochs" in words  # the zoo is trained for equal work
    assert "stands in" not in read  # the Predict tab's digit itself
    garment = current.start_picture(models["fashion-mnist-tiny"])
    read = compare.show_compare(garment, *NOTHING_RUN)[1]  # the zoo reads digits: a stored digit, and why
    assert "a test 7, read by every model (the zoo reads digits" in read and "a test T-shirt/top" in read


def test_the_zoo_words_name_unequal_training(zoo):
    from types import SimpleNamespace
    from tabs import compare
    trained = lambda name, epochs, tiles: SimpleNamespace(name=name, history=[{}] * epochs,  # noqa: E731
                                                          model=SimpleNamespace(num_tiles=tiles))
    unequal = compare.fairness([trained("tiles-7", 14, 16), trained("tiles-4", 4, 49)])
    assert unequal.startswith("**Not a fair race:**") and "tiles-7 14, tiles-4 4" in unequal
    equal = compare.fairness([trained("tiles-7", 14, 16), trained("tiles-4", 14, 49)])
    assert "same 14 epochs" in equal and "**tiles-4** reads 50 tokens where **tiles-7** reads 17" in equal


NOTHING_RUN = (0, frozenset(), "tiles-7", [], [])  # Compare's seed, experiments run, switch-off choices


def test_compare_reads_the_drawing_a_fashion_model_reads_and_reruns_the_experiments_on_it(models, zoo, digits):
    """A drawing stays the picture everywhere: framed as a garment for a fashion model, as a digit for the zoo; an
    experiment run before is run again on the picture now current, one never run stays empty."""
    from tabs import compare
    drawn = current.picture_from_drawing(data_url(padded(digits[4][0])), models["fashion-mnist"])
    assert drawn.dataset == "fashion-mnist"
    ran = (0, frozenset({"shuffle", "switch"}), "tiles-7", [], ["block 1"])
    table, read, art, words, mixed, mixed_text, switched = compare.show_compare(drawn, *ran)
    assert read.startswith("**your drawing, read by every model:**") and "stands in" not in read
    assert f"| tiles-7 | **{digits[4][1]}**" in read  # the zoo reads the digit that was drawn
    assert rgb(mixed) and "| tiles-7 |" in mixed_text and "your drawing" in switched and "block 1" in switched
    assert compare.refresh("fashion-mnist", drawn, *NOTHING_RUN) == (read, images.described(None, None), "", "")
    stored = current.start_picture(models["fashion-mnist"])  # a stored garment cannot be read as a digit
    assert "a test 7, read by every model (the zoo reads digits" in compare.refresh("mnist", stored, *ran)[0]


def test_compare_says_a_stored_digit_stands_in_for_an_upload_that_is_gone(models, zoo, digits, tmp_path):
    from tabs import compare
    path = tmp_path / "four.png"
    path.write_bytes(data_url_bytes(padded(digits[4][0])))
    uploaded = current.picture_from_file(str(path), models["fashion-mnist"])
    assert compare.zoo_picture(uploaded)[1] is None  # read again, as a digit: itself, no stand-in
    path.unlink()
    picture, instead_of = compare.zoo_picture(uploaded)
    assert picture.source == "a test 7" and instead_of is uploaded


def test_shuffling_the_tiles_changes_only_the_models_with_positions(models, zoo):
    from tabs import compare
    picture = current.start_picture(models["mnist"])
    mixed, order = compare.shuffled(picture.input, 3)
    assert sorted(order) == list(range(1, 17)) and not np.array_equal(mixed, picture.input)
    assert np.isclose(mixed.sum(), picture.input.sum())  # the same tiles, elsewhere
    both, text = compare.shuffle_view(list(zoo.values()), picture, 3)
    assert rgb(both)
    changes = {line.split(" | ")[0].strip("| "): float(line.rsplit("|", 2)[1]) for line in text.splitlines()
               if line.startswith("| tiles-7")}
    assert set(changes) == {"tiles-7", "tiles-7-sinusoidal", "tiles-7-no-positions"}
    assert changes["tiles-7-no-positions"] < 1e-4 and min(changes["tiles-7"], changes["tiles-7-sinusoidal"]) > 0.1


def test_switching_off_a_block_costs_accuracy_on_the_stored_digits(models, zoo):
    from tabs import compare
    heads, blocks = compare.switch_choices(zoo["tiles-7"])
    assert len(heads) == 16 and blocks == ["block 1", "block 2", "block 3", "block 4"]
    picture = current.start_picture(models["mnist"])
    nothing = compare.switched_off(zoo["tiles-7"], picture, [], [])
    assert nothing.count("100.0 %") >= 2  # whole, it reads every stored digit it read when evaluated
    text = compare.switched_off(zoo["tiles-7"], picture, ["block 2 · head 1"], ["block 1"])
    assert "block 1, block 2 · head 1 switched off" in text
    after = float(text.splitlines()[-1].rsplit("|", 2)[1].strip(" %"))
    assert after < 90  # without its first block it loses much of what it could read


def test_every_tab_draws_a_strip_model_on_its_strips(models, zoo):
    from tabs import labels, positions, predict, tiling, trust, walk
    strips = [zoo["horizontal-strips-2"], zoo["vertical-strips-2"]]
    with registered([*models.values(), *strips]):
        for model in strips:
            picture = current.start_picture(model)
            outputs = predict.refresh(model.name, picture)
            assert all(rgb(p) for p in outputs[3:8]) and "strip" in outputs[8]
            steps = walk.show_walk(model.name, picture)
            assert "14 strips + CLS = 15 tokens" in steps.heading and sum(rgb(p) for p in walk.values(steps)) >= 8
            assert all(rgb(p) for p in positions.show_positions(model.name)[:4])
            assert rgb(labels.show_labels(model.name, ["3", "7"], "CLS → tiles, in the tile layout", False))
            assert any(rgb(p) for p in trust.show_trust(model.name, picture, None))
            cut = tiling.refresh(model.name, tiling.YOURS, picture)
            assert cut[0] == model.model.cut.replace("-", " ") and "exactly the words" in cut[-2]


def test_every_component_of_our_own_is_drawn_by_gradios_own_svelte_component(models):
    # the page picks a component's Svelte file by its block name: a subclass named otherwise draws nothing and
    # leaves a loading veil over the whole page (a radio named "classradio" did)
    import app
    with registered():  # build_demo registers the models and, if none is, the zoo
        demo = app.build_demo(list(models.values()))
    ours = [block for block in demo.blocks.values() if not type(block).__module__.startswith("gradio")]
    assert ours, "no component of our own: this test checks nothing"
    for block in ours:
        base = next(kind for kind in type(block).__mro__ if kind.__module__.startswith("gradio."))
        assert block.get_block_name() == base.__name__.lower(), type(block)


def test_a_read_overtaken_by_a_later_drawings_read_leaves_the_answer_to_it(models):
    import gradio as gr

    from tabs import pad, predict
    from tabs.pad import Turns
    turns = Turns(sessions=2)
    second = turns.start("visitor", 2)  # the later drawing's read may start first: the slow one is still setting up
    first = turns.start("visitor", 1)
    turns.start("another", 1)
    assert turns.overtaken("visitor", first) and not turns.overtaken("visitor", second)
    assert not turns.overtaken(None, first)  # a call without a session (a test, the bench) is never overtaken
    assert not turns.overtaken("visitor", None)  # nor an event without a number
    turns.start("a third", 1)  # past two sessions the oldest is forgotten: its reads are no longer compared
    assert not turns.overtaken("visitor", first)

    class Request:  # what gradio hands the handler: the visitor's session
        session_hash = "a visitor drawing fast"
    answer = predict.read_drawing("mnist", pad.event(None, number=2), Request())  # the later drawing, read first
    assert answer[1:3] != (gr.skip(), gr.skip()) and answer[3] == 2  # it answers
    slow = predict.read_drawing("mnist", pad.event(None, number=1), Request())  # the earlier one, finishing last
    assert slow == (gr.skip(),) * 4  # hands back nothing
    skipped = (gr.skip(),) * len(predict.no_maps())
    assert predict.show_drawing_maps(None, "mnist", 1, Request()) == skipped  # nor its maps
    assert predict.show_drawing_maps(None, "mnist", answer[3], Request()) != skipped  # the newest read's maps show
    # a maps event queued behind it reads the same newest turn: those maps were sent, so it draws nothing
    assert predict.show_drawing_maps(None, "mnist", answer[3], Request()) == skipped


def test_maps_whose_stroke_is_overtaken_during_their_pass_draw_no_pictures(models, monkeypatch):
    import gradio as gr

    from tabs import predict
    from tabs import picture as current

    class Request:
        session_hash = "a visitor drawing while the server is busy"
    model, turn = models["mnist-tiny"], predict.TURNS.start(Request.session_hash, 1)
    explain = model.explain

    def a_stroke_comes_meanwhile(image):  # the next stroke's read begins while this one's pass runs
        predict.TURNS.start(Request.session_hash, turn + 1)
        return explain(image)
    monkeypatch.setattr(model, "explain", a_stroke_comes_meanwhile)
    monkeypatch.setattr(predict, "drawn_maps", lambda *_: pytest.fail("pictures drawn for an overtaken stroke"))
    skipped = (gr.skip(),) * len(predict.no_maps())
    assert predict.show_drawing_maps(current.start_picture(model), "mnist-tiny", turn, Request()) == skipped


# --- Teach it: symbols of the visitor's own -----------------------------------------------------------------------

def symbol_stroke(name: str, rng):
    """The pad's event for one drawing of a symbol (tests/picture_files: the pad's pen, a hand's variation)."""
    from picture_files import drawn_on_pad, symbol_strokes
    return stroke(np.asarray(drawn_on_pad(symbol_strokes(name, rng))))


def collect(names: list[str], count: int, rng, collected=None, model: str = "mnist-tiny") -> list:
    """`count` drawings of each symbol added through the tab's handlers, as a visitor adds them."""
    from tabs import teach
    collected, text = collected or [], ", ".join(names)
    for name in names:
        for _ in range(count):
            sketch, seen, note = teach.sketched(model, symbol_stroke(name, rng))
            assert rgb(seen) and note == ""
            added = teach.add(name, sketch, collected, text)
            collected = added.collected
            assert added.sketch is None and added.pad.startswith("wiped") and added.note.startswith(f"Added to {name}")
    return collected


def test_teach_collects_drawings_counts_them_and_forgets_them(models):
    from tabs import teach
    rng = np.random.default_rng(0)
    collected = collect(["star", "heart"], 2, rng)
    gallery, counts = teach.shown(["star", "heart"], collected)
    assert [caption for _, caption in teach.gallery_items(collected)] == [
        "drawing 1, a star", "drawing 2, a star", "drawing 3, a heart", "drawing 4, a heart"]
    assert gallery.visible and len(gallery.value) == 4
    assert counts.startswith("Your drawings: **star** 2 · **heart** 2 (at least 5 of each")
    collected, _, counts = teach.forget_one(collected, "star, heart", gr_select(0))
    assert [item.symbol for item in collected] == ["star", "heart", "heart"] and "**star** 1" in counts
    collected, _, counts = teach.forget_last(collected, "star, heart")
    assert len(collected) == 2 and "**heart** 1" in counts
    menu, counts = teach.renamed("sun, heart", "star", collected)  # a renamed symbol's drawings are left out
    assert [c[0] for c in menu.choices] == ["sun", "heart"] and menu.value == "sun"
    assert "Drawings of star are kept but left out" in counts
    collected, gallery, counts = teach.forget_all("star, heart")
    assert collected == [] and not gallery.visible and "**star** 0" in counts


def gr_skip():
    import gradio as gr
    return gr.skip()


def gr_select(index: int):
    import gradio as gr
    return gr.SelectData(None, {"index": index, "value": None, "selected": True})


@pytest.mark.parametrize("names, counts, words", [
    ("star, heart, arrow", (5, 5, 4), "Draw each symbol at least 5 times; so far: arrow (4)."),
    ("star", (5,), "Name at least 2 symbols"),
    ("star, , arrow", (5, 5), "one of them is empty"),
    ("star, heart, Star", (5, 5), "“star” and “Star” are one name"),
])
def test_teach_says_what_is_missing_instead_of_teaching(models, names, counts, words):
    from tabs import teach
    rng, collected = np.random.default_rng(1), []
    for name, count in zip(teach.choosable(names), counts):
        collected = collect([name], count, rng, collected)
    taught = teach.teach_symbols("mnist-tiny", names, collected, [])
    assert words in taught.result and taught.result.startswith("⚠️")
    import gradio as gr
    assert taught.own == taught.menu == gr.skip()  # the menu and the visitor's models stay as they were
    assert_friendly(taught.result)


def test_teach_adds_nothing_but_a_sentence_for_an_empty_pad_a_speck_or_no_symbol(models):
    from tabs import teach
    blank = np.full((CANVAS, CANVAS), 255, np.uint8)
    sketch, seen, note = teach.sketched("mnist-tiny", stroke(blank))
    assert sketch is None and note == "Draw a symbol first: the picture looks empty." and not seen["visible"]
    sketch, _, note = teach.sketched("mnist-tiny", stroke(np.asarray(dot_on(CANVAS, radius=5))))
    assert sketch is None and "too small to be a symbol" in note
    assert teach.sketched("mnist-tiny", stroke(None))[0] is None  # the pad cleared
    added = teach.add("star", None, [], "star, heart")
    assert added.note == "⚠️ Draw a symbol on the pad first (or upload a picture of one)."
    assert added.collected == added.pad == added.gallery == gr_skip()  # nothing else changes
    sketch, *_ = teach.sketched("mnist-tiny", symbol_stroke("star", np.random.default_rng(0)))
    assert teach.add("moon", sketch, [], "star, heart").note == "⚠️ Choose which of your symbols this drawing is."
    full = [teach.Collected("star", sketch)] * 12
    assert "12 drawings of star: that is plenty" in teach.add("star", sketch, full, "star, heart").note


def test_a_taught_model_joins_the_visitors_menu_chosen_and_every_tab_explains_it(models):
    from tabs import about, confusion, labels, positions, predict, teach, trust, worst
    rng = np.random.default_rng(2)
    collected = collect(["star", "heart", "arrow"], 5, rng)
    taught = teach.teach_symbols("mnist-tiny", "star, heart, arrow", collected, [("yours: x", "x-1")])
    name = taught.menu.value
    assert taught.own == [("yours: x", "x-1"), ("taught: star, heart, arrow", name)]
    assert "of the 15 drawings** were read right by a head fitted without them" in taught.result
    archive = taught.download.value  # the model folder, zipped as one folder named after the model
    assert archive["orig_name"] == f"{name}.zip" and taught.download.visible and taught.try_it.visible
    with zipfile.ZipFile(archive["path"]) as zipped:
        assert {f"{name}/model.safetensors", f"{name}/evaluation.json"} <= set(zipped.namelist())
    assert name not in registry.model_names() and registry.bundle(name).class_names == ["star", "heart", "arrow"]
    assert teach.base_of(name).name == "mnist-tiny"  # taught again from a taught model: on the same features
    for symbol in ("star", "heart", "arrow"):  # a new drawing of each, read by the Predict tab with its maps
        reading = predict.read_drawing(name, symbol_stroke(symbol, rng))
        status, label = reading[1], reading[2]
        assert f"reads **{symbol}**" in status and max(label, key=label.get) == symbol
        assert all(rgb(p) for p in predict.maps(registry.bundle(name), reading[0])[:5])
    matrix, _, text = confusion.refresh(name)
    assert rgb(matrix) and "drawings of" in text and "test images" not in text + matrix["alt_text"]
    slider, gallery, none = worst.refresh(name, 32)
    mistakes = registry.bundle(name).mistakes
    if mistakes:
        assert none == "" and len(gallery.value) == mistakes
    else:  # the sentence, and no empty gallery or slider
        assert "misread none of its 15 drawings" in none and not gallery.visible and not slider.visible
    curve, diagram, text, selective = about.show_about(name)
    assert not curve["visible"] and not diagram["visible"] and not selective["visible"] and "no training curve" in text
    assert "accuracy on held-out drawings" in text and "test accuracy" not in text
    assert all(rgb(p) for p in positions.show_positions(name)[:4])
    assert rgb(labels.show_labels(name, ["star", "arrow"], "CLS → tiles, in the tile layout", False))
    start = current.start_picture(registry.bundle(name))
    assert any(rgb(p) for p in trust.show_trust(name, start, None))


def test_teach_takes_an_uploaded_drawing_and_numbers_a_second_model_of_the_same_symbols(models, tmp_path):
    from picture_files import drawn_on_pad, symbol_strokes
    from tabs import teach
    path = tmp_path / "heart.png"
    drawn_on_pad(symbol_strokes("heart", np.random.default_rng(3))).save(path)
    sketch, seen, note, wiped = teach.uploaded(str(path), "mnist-tiny")
    assert sketch.sent == str(path) and rgb(seen) and note == "" and wiped.startswith("wiped")  # the pad is wiped
    assert teach.add("heart", sketch, [], "star, heart").collected[0].picture.original is None  # kept small
    sketch, _, note, _ = teach.uploaded(str(write_picture("not-an-image", None, tmp_path)), "mnist-tiny")
    assert sketch is None and "not a picture" in note
    own = [("taught: star, heart", "taught-star-heart-1"), ("taught: star, heart (2)", "taught-star-heart-2")]
    assert shared.unused_label("taught: star, heart", own) == "taught: star, heart (3)"
    assert shared.unused_label("taught: star, moon", own) == "taught: star, moon"
