"""What each picture says to a screen reader (tabs.images.described and the alt-text builders beside each view):
the numbers it states are the ones the picture shows."""

import numpy as np
import torch

from tabs import images


def test_ranked_names_the_largest_pieces_as_the_app_numbers_them():
    values = np.array([[0.1, 0.5, 0.0], [0.0, 0.2, 0.9], [0.3, 0.0, 0.0]])  # tiles 1…9 in reading order
    assert images.ranked(values) == "tile 6 (0.90) and tile 2 (0.50)"
    assert images.ranked(values, "strip", count=3, percent=True) == "strip 6 (90 %), strip 2 (50 %) and strip 7 (30 %)"
    assert images.ranked(values, count=1, digits=1) == "tile 6 (0.9)"


def test_a_described_picture_goes_through_the_written_once_image_and_no_picture_hides_it(tmp_path, monkeypatch):
    monkeypatch.setenv("GRADIO_TEMP_DIR", str(tmp_path / "gradio"))
    picture = np.zeros((8, 8, 3), np.uint8)
    shown = images.described(picture, "a black square")
    assert shown["alt_text"] == "a black square" and shown["visible"]
    # the picture is already its PNG file, written on the handler's thread rather than gradio's event loop
    assert isinstance(shown["value"], str) and np.array_equal(np.asarray(images.PILImage.open(shown["value"])), picture)
    sent = images.Image().postprocess(shown["value"])  # what gradio does with the update's value
    assert sent.path.endswith(".png") and np.array_equal(np.asarray(images.PILImage.open(sent.path)), picture)
    empty = images.described(None, "ignored")
    assert empty == {"__type__": "update", "value": None, "alt_text": None, "visible": False}
    assert images.described(None, None) is not images.described(None, None)  # gradio changes the update it is sent


def test_the_predict_maps_name_the_tiles_their_numbers_point_to():
    from tabs import predict
    rollout = np.zeros((4, 4))
    rollout[1, 2], rollout[3, 0] = 0.4, 0.1  # tiles 7 and 13
    assert "highest on tile 7 (40 %) and tile 13 (10 %)" in predict.rollout_alt("a test 7", rollout)
    saliency = np.zeros((28, 28))
    saliency[0:7, 7:14], saliency[21:28, 0:7] = 3, 1  # three quarters of the gradient in tile 2, a quarter in 13
    assert "tile 2 (75 %) and tile 13 (25 %) hold the largest" in predict.saliency_alt("x", saliency, (4, 4))
    single, blocks = np.full((4, 4), 0.01), np.full((4, 4), 0.02)
    single[2, 1] = 0.8
    said = predict.occlusion_alt("x", single, blocks, "7")
    assert "blanking tile 10 (0.80) lowers its log-odds most" in said and "by at most 0.02" in said
    attention = np.zeros((3, 2, 4, 4))
    attention[2, 1, 0, 3] = 0.5
    assert "block 3, head 2 on tile 4 (50 % of its attention)" in predict.attention_alt("x", attention)


def test_figure_seven_and_the_trust_curves_say_their_numbers():
    from tabs import positions, trust
    similarity = torch.tensor([[1.0, 0.6, 0.4, 0.0], [0.6, 1.0, 0.0, 0.4], [0.4, 0.0, 1.0, 0.6], [0.0, 0.4, 0.6, 1.0]])
    said = positions.similarity_alt(similarity, (2, 2))  # neighbours: 1-2, 1-3, 2-4, 3-4; across: 1-4, 2-3
    assert "0.50 between direct neighbours and 0.00 between positions farther apart" in said
    distances = torch.tensor([[3.0, 9.0], [12.0, 6.0]])
    said = positions.distance_alt(distances, 10.0)
    assert "from 3.0 px (block 1, head 1) to 12.0 px (block 2, head 1); uniform attention would reach 10.0" in said
    areas = {name: (0.5, 0.5) for name in trust.METHODS} | {"occlusion": (0.1, 0.6), "rollout": (0.3, 0.9),
                                                            "random": (0.7, 0.4)}
    said = trust.curves_alt("7", areas)
    assert "lowest for occlusion (0.10; random orders 0.70)" in said
    assert "highest for rollout (0.90; random 0.40)" in said


def test_the_models_own_pictures_say_its_measured_numbers(models):
    from tabs import about, confusion, walk
    model = models["mnist"]
    matrix = model.confusion
    said = confusion.matrix_alt(model, (2, 7))
    assert f"{int(np.trace(matrix)):,} read right ({model.accuracy * 100:.2f} %)" in said
    assert f"Chosen cell: 2 read as 7, {int(matrix[2, 7]):,} times" in said
    history = [{"epoch": epoch, "val_accuracy": accuracy} for epoch, accuracy in ((1, 0.95), (2, 0.99), (3, 0.98))]
    assert "3 epochs, validation accuracy 98.00 % at the end (best 99.00 % at epoch 2)" in about.training_alt(history)
    out = walk.show_walk("mnist", None, 1, 0, 19, None)
    _, _, steps = walk.prepared("mnist", None)
    row = steps.blocks[1].scores[0, 19].numpy()
    assert f"highest tile {int(row[1:].argmax()) + 1} ({row[1:].max():.1f})" in out.scores["alt_text"]
