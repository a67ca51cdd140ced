"""api.py's functions, called in this process on the committed models: one contract for /predict (docs/api.md, "The error contract"):
a picture that can be read gets every class's confidence; anything else a gr.Error saying what to send instead.

tests/test_app.py calls the same endpoints through a running server.
"""

import gradio as gr
import pytest

from picture_files import PICTURES, assert_friendly, write_picture


@pytest.mark.parametrize("name", list(PICTURES))
def test_predict_gives_ten_confidences_or_a_clear_error(models, digits, tmp_path, name):
    """Every class's confidence for a digit, most likely first; else a gr.Error in plain words."""
    import api
    path = str(write_picture(name, digits, tmp_path))
    kind, expected = PICTURES[name][1]
    if kind == "refused":
        with pytest.raises(gr.Error) as raised:
            api.predict(path, "mnist-tiny")
        assert expected in raised.value.message
        assert_friendly(raised.value.message)
        return
    result = api.predict(path, "mnist-tiny")
    assert result["label"] == str(digits[expected][1])
    assert [c["label"] for c in result["confidences"]][0] == result["label"]
    assert sorted(c["label"] for c in result["confidences"]) == [str(i) for i in range(10)]
    assert sum(c["confidence"] for c in result["confidences"]) == pytest.approx(1, abs=1e-4)


def test_an_unknown_model_or_no_file_gets_an_error_saying_what_to_send(models, digits, tmp_path):
    import api
    path = str(write_picture("16-bit", digits, tmp_path))
    with pytest.raises(gr.Error, match="There is no model 'mnist-huge'; choose one of mnist, ") as raised:
        api.predict(path, "mnist-huge")
    assert all(name in raised.value.message for name in models)
    with pytest.raises(gr.Error, match="Send a picture file"):
        api.predict(None, "mnist-tiny")
