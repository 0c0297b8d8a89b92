"""Stratified k-fold cross-validation of the whole training pipeline, with `chatbot train`'s defaults.

Each fold trains with `train_model` exactly as `chatbot train` would (its own validation split, early stopping,
fallback threshold, refit) on the other folds, and is scored on its held-out patterns. An intent with fewer patterns
than folds cannot appear in every held-out fold: it is kept in training in every fold and never scored, and named.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from sklearn.model_selection import StratifiedKFold

from training.classifier import IntentClassifier
from training.errors import UserError
from training.intents import Intent, IntentsFile
from training.loop import EpochStats, TrainConfig
from training.pipeline import train_model
from training.text import DEFAULT_STEMMER


class CrossValidationError(UserError, ValueError):
    """The intents cannot be cross-validated with these settings; the message says what to change."""


@dataclass(frozen=True)
class FoldResult:
    fold: int
    train_patterns: int
    test_patterns: int
    accuracy: float  # top intent
    accuracy_with_fallback_as_wrong: float
    seconds: float  # training only


@dataclass(frozen=True)
class CrossValidation:
    folds: list[FoldResult]
    unscored_intents: list[str]  # fewer patterns than folds: trained on in every fold, never scored

    @property
    def mean_accuracy(self) -> float:
        return float(np.mean([f.accuracy for f in self.folds]))

    @property
    def std_accuracy(self) -> float:
        """Population standard deviation over the folds (numpy's default, as in scikit-learn's examples)."""
        return float(np.std([f.accuracy for f in self.folds]))

    @property
    def mean_seconds(self) -> float:
        return float(np.mean([f.seconds for f in self.folds]))


def cross_validate(
    intents: IntentsFile,
    folds: int = 5,
    seed: int = 0,
    config: TrainConfig | None = None,
    model_options: dict | None = None,
    on_fold: Callable[[FoldResult], None] | None = None,
    on_epoch: Callable[[str, EpochStats], None] | None = None,
    stemmer: str = DEFAULT_STEMMER,
) -> CrossValidation:
    """Train and score `folds` times; `seed` shuffles the folds and seeds training (unless `config` is given)."""
    if folds < 2:
        raise CrossValidationError(f"--folds must be at least 2, got {folds}")
    config = config or TrainConfig(seed=seed)
    texts, labels = intents.examples()
    counts = {intent.tag: len(intent.patterns) for intent in intents.trainable}
    unscored = [tag for tag, n in counts.items() if n < folds]
    scored = [i for i, label in enumerate(labels) if counts[label] >= folds]
    if max(counts.values()) < 2:
        raise CrossValidationError("every intent has a single pattern; cross-validation needs at least 2 per intent")
    if not scored:
        raise CrossValidationError(
            f"no intent has {folds} patterns, so none can be scored in every fold; use --folds "
            f"{max(2, max(counts.values()))} or fewer"
        )
    always_train = [i for i, label in enumerate(labels) if counts[label] < folds]
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    results = []
    # integer strata in sorted-tag order: the same folds as the tags themselves, without numpy's (patterns x longest
    # tag) array of characters
    rank = {label: i for i, label in enumerate(sorted(set(labels)))}
    scored_labels = [rank[labels[i]] for i in scored]
    for k, (train_part, test_part) in enumerate(splitter.split(np.zeros(len(scored)), scored_labels), start=1):
        train_rows = sorted([scored[i] for i in train_part] + always_train)
        test_rows = [scored[i] for i in test_part]
        started = time.perf_counter()
        result = train_model(
            subset(intents, train_rows, f"{intents.source} (fold {k})"), config, model_options, on_epoch, stemmer
        )
        seconds = time.perf_counter() - started
        answers = IntentClassifier(result.checkpoint, source=f"fold {k}").predict_batch([texts[i] for i in test_rows])
        right = np.array([a.intent == labels[i] for a, i in zip(answers, test_rows)], dtype=bool)
        declined = np.array([a.fallback for a in answers], dtype=bool)
        fold = FoldResult(
            k, len(train_rows), len(test_rows), float(right.mean()), float((right & ~declined).mean()), seconds
        )
        results.append(fold)
        if on_fold is not None:
            on_fold(fold)
    return CrossValidation(results, unscored)


def subset(intents: IntentsFile, rows: list[int], source: str) -> IntentsFile:
    """The intents restricted to the given example rows (indices into `intents.examples()`), tags in their order.

    An intent left with no pattern is dropped; the stratified folds never do that, but a caller might."""
    keep = set(rows)
    chosen, start = [], 0
    for intent in intents.trainable:
        patterns = tuple(p for j, p in enumerate(intent.patterns) if start + j in keep)
        start += len(intent.patterns)
        if patterns:
            chosen.append(Intent(intent.tag, patterns, intent.responses, intent.extra))
    return IntentsFile(source, tuple(chosen), sha256="")
