"""From validated intents to a complete checkpoint: split, featurize, train, choose the fallback threshold, refit."""

from __future__ import annotations

import platform
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from importlib import metadata

import numpy as np
import torch
from sklearn.model_selection import train_test_split

from training import text
from training.bags import Bags
from training.checkpoint import FORMAT, FORMAT_VERSION
from training.fallback import (
    FALLBACK_RESPONSES,
    UNCALIBRATED_THRESHOLD,
    calibrate,
    choose_threshold,
    fit_temperature,
)
from training.intents import IntentsFile
from training.loop import EpochStats, History, TrainConfig, auto_epochs, fit, predict_proba
from training.model import IntentNet, ModelConfig
from training.runtime import seed_everything

REFIT_BELOW = 5_000  # patterns; below this a second run on all data is cheap and every pattern counts
# Held-out patterns needed to stop early on: on fewer, the validation loss is noise (three held-out messages stopped
# a 7-pattern file after one epoch, before it knew its own patterns). Smaller files train for the whole epoch budget
# and use the held-out patterns only to choose the fallback threshold.
STOP_EARLY_FROM = 50
# Held-out patterns needed to fit the confidence temperature and choose the threshold: on a handful (three in a
# 7-pattern file) the fit runs to the end of its grid. Below this the threshold is the uncalibrated default.
CALIBRATE_FROM = 20
BIGRAMS = True


@dataclass
class TrainResult:
    checkpoint: dict
    history: History
    refit_history: History | None
    validation_note: str
    seconds: float


@dataclass(frozen=True)
class Split:
    train: list[int]
    val: list[int]
    note: str


def split_examples(labels: Sequence[str], val_fraction: float, seed: int) -> Split:
    """A stratified validation split: `val_fraction` of the patterns, at least one of every intent that can spare one.

    An intent with a single pattern cannot: real files have many, and they are only trained on. The split is
    scikit-learn's stratified one over the patterns of the other intents, so one single-pattern intent in a large
    file does not change how much is held out.
    """
    counts = Counter(labels)
    n = len(labels)
    if val_fraction <= 0:
        return Split(list(range(n)), [], "validation switched off (--val-fraction 0)")
    eligible = [i for i, label in enumerate(labels) if counts[label] >= 2]
    singles = sum(1 for c in counts.values() if c == 1)
    if not eligible:
        return Split(list(range(n)), [], "no validation split: every intent has a single pattern")
    n_classes = len(counts) - singles
    # at least one per intent, and at least one of each left to train on (each has two or more patterns)
    n_val = min(max(n_classes, round(val_fraction * len(eligible))), len(eligible) - n_classes)
    _, val = train_test_split(eligible, test_size=n_val, stratify=[labels[i] for i in eligible], random_state=seed)
    held = set(val)
    note = f"validation on {len(val)} of {n} patterns ({len(val) / n:.0%})"
    if singles:
        note += f"; {singles} intent(s) with a single pattern are trained on, never held out"
    return Split([i for i in range(n) if i not in held], sorted(val), note)


def build_model(n_features: int, n_intents: int, seed: int, **model_options) -> IntentNet:
    seed_everything(seed)
    return IntentNet(ModelConfig(n_features, n_intents, **model_options))


def train_model(
    intents: IntentsFile,
    config: TrainConfig | None = None,
    model_options: dict | None = None,
    on_epoch: Callable[[str, EpochStats], None] | None = None,
    stemmer: str = text.DEFAULT_STEMMER,
) -> TrainResult:
    """Train on `intents` and return a checkpoint dict ready for `save_checkpoint`; `on_epoch(phase, stats)` reports."""
    config = config or TrainConfig()
    analyze = text.analyzer(stemmer)
    started = time.perf_counter()
    model_options = model_options or {}
    texts, labels = intents.examples()
    tags = intents.tags
    tag_index = {tag: i for i, tag in enumerate(tags)}
    y_all = torch.tensor([tag_index[label] for label in labels], dtype=torch.long)
    feature_lists = [text.features(t, BIGRAMS, analyze) for t in texts]
    split = split_examples(labels, config.val_fraction, config.seed)

    def prepare(rows: list[int]) -> tuple[list[str], Bags, torch.Tensor]:
        vocabulary = text.build_vocabulary(feature_lists[i] for i in rows)
        return vocabulary, encode_rows(rows, text.index_vocabulary(vocabulary)), y_all[rows]

    def encode_rows(rows: list[int], index: dict[str, int]) -> Bags:
        return Bags.from_lists([text.ids_of(feature_lists[i], index) for i in rows])

    def report(phase: str) -> Callable[[EpochStats], None] | None:
        return None if on_epoch is None else (lambda stats: on_epoch(phase, stats))

    vocabulary, bags, y = prepare(split.train)
    max_epochs = config.epochs or auto_epochs(len(split.train), config.batch_size)
    # The settings actually used, which the checkpoint records: the epoch budget and a patience that grows with it.
    config = replace(config, epochs=max_epochs, patience=max(config.patience, max_epochs // 10))
    model = build_model(len(vocabulary), len(tags), config.seed, **model_options)
    metrics: dict = {"validation_patterns": len(split.val), "train_patterns": len(split.train)}
    note, stop_early = split.note, False
    threshold, calibrated, temperature = UNCALIBRATED_THRESHOLD, False, 1.0
    if split.val:
        val_bags = encode_rows(split.val, text.index_vocabulary(vocabulary))
        val_y = y_all[split.val]
        stop_early = len(split.val) >= STOP_EARLY_FROM
        if not stop_early:
            note += f"; fewer than {STOP_EARLY_FROM} held out, too few to stop early on: all {max_epochs} epochs run"
        history = fit(model, bags, y, config, max_epochs, (val_bags, val_y), report("fit"), stop_early)
        temperature, threshold, calibrated, found = calibrate_fallback(predict_proba(model, val_bags), val_y)
        if not calibrated:
            note += f"; fewer than {CALIBRATE_FROM} held out: the fallback threshold is the uncalibrated {threshold}"
        metrics |= found | {"val_loss": history.epochs[history.best_epoch - 1].val_loss}
    else:
        history = fit(model, bags, y, config, max_epochs, None, report("fit"))
    refit_history = None
    refit = len(texts) < REFIT_BELOW if config.refit is None else config.refit
    if split.val and refit:
        vocabulary, bags, y = prepare(list(range(len(texts))))
        model = build_model(len(vocabulary), len(tags), config.seed, **model_options)
        refit_history = fit(model, bags, y, config, history.best_epoch, None, report("refit"))
    seconds = time.perf_counter() - started
    checkpoint = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "state_dict": {k: v.detach().cpu().clone() for k, v in model.state_dict().items()},
        "model_config": model.config.to_dict(),
        "features": {
            "vocabulary": vocabulary,
            "bigrams": BIGRAMS,
            "tokenizer": text.TOKENIZER,
            "stemmer": text.stemmer_name(stemmer),
        },
        "tags": list(tags),
        "responses": {intent.tag: list(intent.responses) for intent in intents.trainable},
        "intents": [intent.record() for intent in intents.intents],  # response-only ones and extra keys too
        "data_findings": intents.finding_counts(),
        "fallback": {
            "threshold": threshold,
            "temperature": temperature,
            "calibrated": calibrated,
            "rule": "fallback when the top confidence is below the threshold or the message has no known words",
            "responses": list(FALLBACK_RESPONSES),
        },
        "train_config": config.to_dict()
        | {"epochs_run": len(history.epochs), "best_epoch": history.best_epoch, "early_stopping": stop_early},
        "refit_on_all_data": refit_history is not None,
        "seed": config.seed,
        "metrics": metrics,
        "history": history.to_dict(),
        "validation": note,
        "versions": _versions(),
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "training_seconds": round(seconds, 3),
        "intents_sha256": intents.sha256,
        "intents_source": intents.source,
        "patterns": len(texts),
    }
    return TrainResult(checkpoint, history, refit_history, note, seconds)


def calibrate_fallback(raw: torch.Tensor, gold: torch.Tensor) -> tuple[float, float, bool, dict]:
    """(temperature, threshold, calibrated, validation metrics) from held-out probabilities and the right intents."""
    calibrated = len(gold) >= CALIBRATE_FROM
    temperature = fit_temperature(raw, gold) if calibrated else 1.0
    probs = calibrate(raw, temperature).numpy()
    confidence, correct = probs.max(axis=1), probs.argmax(axis=1) == gold.numpy()
    threshold = choose_threshold(confidence, correct) if calibrated else UNCALIBRATED_THRESHOLD
    metrics = {
        "val_accuracy": float(correct.mean()),
        "val_fallback_rate": float((confidence < threshold).mean()),
        "val_answered_accuracy": _answered_accuracy(confidence, correct, threshold),
    }
    return temperature, threshold, calibrated, metrics


def _answered_accuracy(confidence: np.ndarray, correct: np.ndarray, threshold: float) -> float | None:
    answered = confidence >= threshold
    return float(correct[answered].mean()) if answered.any() else None


def _versions() -> dict[str, str]:
    return {
        "python": platform.python_version(),
        "torch": str(torch.__version__),
        "numpy": np.__version__,
        "nltk": metadata.version("nltk"),  # not nltk.__version__: importing the whole package costs 0.2 s
        "scikit-learn": metadata.version("scikit-learn"),
    }
