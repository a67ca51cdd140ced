"""What is chosen after training, on the validation split only, and how the choice is reported on the test split.

Chosen: the temperature (vit.calibration) and the "not a digit" limits (vit.novelty), fitted on the 5,000
training images kept back (vit.data.carve_validation), both as MNIST frames them and drawn on a big page as a
visitor would (vit.probes). Reported: calibration error before and after, the reliability diagram's bins, and
how many test digits and non-digits the limits refuse.
"""

import numpy as np
import torch

from . import calibration, novelty, probes
from .data import Split
from .model import ViT
from .preprocess import DIGITS, Framing, ImageError, to_model_input

ON_CANVAS = 1_000  # digits drawn on a page per split: preprocessing 600×500 pages is the slow part
NOT_DIGITS_EACH = 100  # pictures of each kind in vit.probes.NOT_DIGITS
# A model trained while a visitor waits (vit.live) is checked on fewer drawn pages: seconds instead of ten
QUICK_ON_CANVAS, QUICK_NOT_DIGITS_EACH = 200, 20


@torch.inference_mode()
def logits_of(model: ViT, inputs: torch.Tensor, batch: int = 250) -> torch.Tensor:
    """Logits (N, C) of inputs (N, H, W) in [0, 1]."""
    model.eval()
    return torch.cat([model(inputs[i:i + batch, None]).float() for i in range(0, len(inputs), batch)])


def drawn(split: Split, count: int, seed: int, framing: Framing = DIGITS) -> tuple[torch.Tensor, torch.Tensor]:
    """The first `count` digits of a split drawn on a page and read back by the app's preprocessing, framed as
    the app frames them for this dataset: inputs (N, 28, 28) and labels (N,). A digit the preprocessing refuses
    is left out (none was, measured)."""
    rng = np.random.default_rng(seed)
    inputs, labels = [], []
    for pixels, label in zip(split.images[:count, 0].numpy(), split.labels[:count].tolist()):
        try:
            inputs.append(to_model_input(probes.on_canvas(pixels, rng), framing))
            labels.append(label)
        except ImageError:
            pass
    return torch.stack(inputs), torch.tensor(labels)


def choose(model: ViT, val: Split, framing: Framing = DIGITS, on_canvas: int = ON_CANVAS) -> dict:
    """calibration.json's content: the temperature and the limits, with what they were fitted on."""
    raw = val.images[:, 0].float() / 255
    on_page, _ = drawn(val, on_canvas, seed=1, framing=framing)
    raw_logits, page_logits = logits_of(model, raw), logits_of(model, on_page)
    temperature = calibration.fit_temperature(raw_logits, val.labels)
    limits = novelty.fit([(raw, raw_logits), (on_page, page_logits)])
    return {"temperature": temperature, "not_a_digit": novelty.as_json(limits),
            "fitted_on": f"the validation split: {len(val):,} training images kept out of training "
                         f"(vit.data.carve_validation), and {len(on_page):,} of them drawn on a page"}


def report(model: ViT, test: Split, chosen: dict, noun: str = "digit", framing: Framing = DIGITS, *,
           on_canvas: int = ON_CANVAS, not_digits_each: int = NOT_DIGITS_EACH) -> dict:
    """The test-set figures of the choices: evaluation.json's "calibration" and "not_a_digit" entries."""
    logits = logits_of(model, test.images[:, 0].float() / 255)
    before = calibration.reliability(logits.softmax(-1), test.labels)
    after = calibration.reliability((logits / chosen["temperature"]).softmax(-1), test.labels)
    limits = novelty.Limits.from_json(chosen["not_a_digit"])
    refused = lambda inputs, lg: sum(v.refused for v in novelty.judge(limits, inputs, lg, noun))  # noqa: E731
    on_page, _ = drawn(test, on_canvas, seed=2, framing=framing)
    others = {}
    for kind, make in probes.NOT_DIGITS.items():
        rng = np.random.default_rng(3)
        inputs = []
        for _ in range(not_digits_each):
            try:
                inputs.append(to_model_input(make(rng), framing))
            except ImageError:  # refused before the model even sees it (a blank page): counts as refused
                pass
        kept = torch.stack(inputs) if inputs else torch.zeros(0, 28, 28)
        others[kind] = (not_digits_each - len(inputs) + (refused(kept, logits_of(model, kept)) if inputs else 0)) \
            / not_digits_each
    return {"calibration": {"temperature": chosen["temperature"], "ece_before": before["ece"],
                            "ece_after": after["ece"], "before": before, "after": after},
            "not_a_digit": {"test_refused": refused(test.images[:, 0].float() / 255, logits) / len(test),
                            "drawn_test_refused": refused(on_page, logits_of(model, on_page)) / len(on_page),
                            "drawn_test_count": len(on_page), "others_refused": others,
                            "others_count": not_digits_each}}
