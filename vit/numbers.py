"""The numbers behind every picture the app draws for one input, as plain JSON: the one owner of that format.

The Predict tab's download and the public `/explain` endpoint both send this dict, so a program, a paper
and a visitor get the same numbers. Every array is a nested list rounded to 6 places and comes with a
"shape" string naming its axes; tokens are numbered 0 = CLS, then the tiles in reading order.
"""

import numpy as np
import torch

from .analysis import integrated_gradients, relevance
from .bundle import ModelBundle
from .walk import walk


def listed(values) -> list:
    """A tensor or array as nested lists of floats rounded to 6 places."""
    return np.round(np.asarray(values, dtype=np.float64), 6).tolist()


def explanation_numbers(model: ModelBundle, image: np.ndarray, source: str) -> dict:
    """Everything for one model input (28, 28) in [0, 1]: the answer, the verdict, every map and the logit lens."""
    pixels = torch.from_numpy(np.asarray(image, dtype=np.float32))
    result = model.explain(pixels)  # batched with other callers' (vit.batching)
    reading = model.read(image)
    steps = walk(model.model, pixels, model.temperature)
    verdict = reading.verdict
    return {"model": model.name, "picture": source, "class_names": model.class_names,
            "probabilities": listed(reading.probabilities), "temperature": model.temperature,
            "label": None if reading.refused else model.class_names[reading.best],
            "not_a_digit": verdict.message if verdict else None, "scores": verdict.scores if verdict else None,
            "input": listed(image), "tile_size": model.model.tile_size,
            "cut": model.model.cut,
            "logits": listed(steps.logits),
            "attention": {"shape": "layer, head, query token, key token (0 = CLS, then tiles in reading order); "
                                   "each row sums to 1", "values": listed(result.attention)},
            "cls_attention": {"shape": "layer, head, tile row, tile column", "values": listed(result.cls_attention)},
            "logit_lens": {"shape": "read out after block (0 = before block 1), class; the last row is the answer",
                           "logits": listed(steps.lens),
                           "probabilities": listed(torch.softmax(steps.lens / model.temperature, dim=1))},
            "rollout": {"shape": "tile row, tile column", "values": listed(result.rollout)},
            "saliency": {"shape": "pixel row, pixel column; |gradient| ÷ its maximum", "values": listed(result.saliency)},
            "occlusion": {"shape": "tile row, tile column; log-odds drop", "one_tile": listed(result.occlusion),
                          "two_by_two": listed(result.occlusion_blocks)},
            "relevance": {"shape": "tile row, tile column; for the most likely class (Chefer et al. 2021)",
                          "values": listed(relevance(model.model, pixels, result.predicted))},
            "integrated_gradients": {"shape": "tile row, tile column; for the most likely class, from a blank picture",
                                     "values": listed(integrated_gradients(model.model, pixels, result.predicted))}}
