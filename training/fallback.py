"""When to say "I didn't understand" instead of guessing: calibrated confidence and a threshold chosen on held-out
messages.

The averaged, label-smoothed networks are under-confident: their confidences understate how often they are right. A
temperature fitted on held-out answers fixes that, and with the threshold rule below it turns more wrong answers into
fallbacks for the same share of right answers lost (the figures: docs/design.md and benchmarks/fallback.md).
"""

from __future__ import annotations

import numpy as np
import torch

FALLBACK_RESPONSES = (
    "Sorry, I didn't understand that. Could you rephrase it?",
    "I'm not sure what you mean. Could you say it another way?",
)
KEEP_CORRECT = 0.95  # the threshold keeps this share of the held-out answers that were right
# The same on a small file's cross-validated answers: with 10 patterns an intent, messages about other things reach
# the confidences of right answers far more often than on large data, so a stricter threshold is needed to catch them
# (benchmarks/small_bots.md) ...
KEEP_CORRECT_CROSS_VALIDATED = 0.85
# ... unless the file has out-of-scope examples: their intent already catches most such messages, and the threshold
# only needs to catch what it misses, so KEEP_CORRECT applies (the figures: docs/design.md).
CROSS_VALIDATION_FOLDS = 5
UNCALIBRATED_THRESHOLD = 0.3  # used when there was nothing held out to choose from


def scaled_confidence(top_probability: np.ndarray | float, known_share: np.ndarray | float) -> np.ndarray | float:
    """The confidence the fallback compares with its threshold: the top probability times the share of the
    message's words the model knows.

    A bag-of-words network answers from the words it knows and is blind to the others, so "what's the capital of
    france" looks to a smart-home bot like "what's the" and gets a confident guess. Weighing by the known share
    ranked out-of-scope messages below in-scope ones better (AUROC 0.877 -> 0.898 on the small bots).
    """
    return top_probability * known_share


def choose_threshold(confidences: np.ndarray, correct: np.ndarray, keep: float = KEEP_CORRECT) -> float:
    """The highest confidence threshold that still answers `keep` of the held-out messages the model got right.

    Held-out messages it got wrong mostly have lower confidence, so this turns many wrong answers into fallbacks
    at a known, small cost in right ones. It adapts to the model: label smoothing and the number of intents move
    confidences far more than a fixed 0.75 allows for.
    """
    right = np.asarray(confidences, dtype=np.float64)[np.asarray(correct, dtype=bool)]
    if right.size == 0:
        return UNCALIBRATED_THRESHOLD
    return float(np.quantile(right, 1.0 - keep, method="lower"))


TEMPERATURES = np.geomspace(0.1, 10.0, 81)


def calibrate(probs: torch.Tensor, temperature: float) -> torch.Tensor:
    """Temperature-scale averaged probabilities: softmax(log(p) / T); T < 1 sharpens, T > 1 softens."""
    if temperature == 1.0:
        return probs
    return torch.softmax(torch.log(probs.clamp_min(1e-12)) / temperature, dim=-1)


def fit_temperature(probs: torch.Tensor, gold: torch.Tensor) -> float:
    """The temperature with the lowest held-out negative log-likelihood (a grid search: one parameter, no optimizer)."""
    log_probs = torch.log(probs.double().clamp_min(1e-12))
    rows = torch.arange(len(gold))

    def nll(t: float) -> float:
        return -torch.log_softmax(log_probs / t, dim=-1)[rows, gold].mean().item()

    return float(min(TEMPERATURES, key=nll))
