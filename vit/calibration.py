"""Confidence that means what it says: temperature scaling and expected calibration error (Guo et al. 2017).

A model trained with label smoothing is under-confident (a perfect 7 at 92 %), one trained without it is
often over-confident; dividing the logits by one temperature, fitted on the validation split, fixes both
without changing a single answer (the order of the logits stays the same).
"""

import math

import torch
import torch.nn.functional as F

ECE_BINS = 15


def fit_temperature(logits: torch.Tensor, labels: torch.Tensor) -> float:
    """The temperature T minimising the cross-entropy of softmax(logits / T): a golden-section search on log T,
    which is enough for one parameter whose loss is convex in 1/T."""
    def loss(log_t: float) -> float:
        return F.cross_entropy(logits / math.exp(log_t), labels).item()
    low, high = math.log(0.05), math.log(20.0)
    ratio = (math.sqrt(5) - 1) / 2
    a, b = high - ratio * (high - low), low + ratio * (high - low)
    for _ in range(60):
        if loss(a) < loss(b):
            high, b = b, a
            a = high - ratio * (high - low)
        else:
            low, a = a, b
            b = low + ratio * (high - low)
    return round(math.exp((low + high) / 2), 4)


def reliability(probabilities: torch.Tensor, labels: torch.Tensor, bins: int = ECE_BINS) -> dict:
    """Per confidence bin (equal width on [0, 1]): how many answers, their mean confidence and their accuracy;
    and the expected calibration error, the count-weighted mean gap between the two."""
    confidence, predicted = probabilities.max(-1)
    right = (predicted == labels).float()
    which = (confidence * bins).long().clamp(max=bins - 1)
    counts = torch.bincount(which, minlength=bins)
    shown = counts.clamp(min=1).double()
    mean_confidence = torch.bincount(which, confidence.double(), minlength=bins) / shown
    accuracy = torch.bincount(which, right.double(), minlength=bins) / shown
    ece = float(((mean_confidence - accuracy).abs() * counts).sum() / len(labels))
    return {"bins": bins, "counts": counts.tolist(), "confidence": [round(v, 5) for v in mean_confidence.tolist()],
            "accuracy": [round(v, 5) for v in accuracy.tolist()], "ece": round(ece, 6)}


def expected_calibration_error(probabilities: torch.Tensor, labels: torch.Tensor, bins: int = ECE_BINS) -> float:
    return reliability(probabilities, labels, bins)["ece"]
