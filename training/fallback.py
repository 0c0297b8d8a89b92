"""When to say "I didn't understand" instead of guessing: a confidence threshold chosen on held-out messages."""

from __future__ import annotations

import numpy as np

FALLBACK_RESPONSES = (
    "Sorry, I didn't understand that. Could you rephrase it?",
    "I'm not sure what you mean. Could you say it another way?",
)
KEEP_CORRECT = 0.95  # the threshold keeps this share of the held-out answers that were right
UNCALIBRATED_THRESHOLD = 0.3  # used when there was no validation split to choose from


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
