"""From validated intents to a complete checkpoint: split, featurize, train, choose the fallback threshold, refit."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

import numpy as np
import torch
from sklearn.model_selection import train_test_split

from training import text
from training.bags import Bags
from training.checkpoint import build_checkpoint
from training.fallback import (
    CROSS_VALIDATION_FOLDS,
    KEEP_CORRECT,
    KEEP_CORRECT_CROSS_VALIDATED,
    UNCALIBRATED_THRESHOLD,
    calibrate,
    choose_threshold,
    fit_temperature,
    scaled_confidence,
)
from training.featurize import SUBWORD_SIZE, SUBWORDS_BELOW, Encoder, FeatureSet
from training.intents import OUT_OF_SCOPE_TAG, IntentsFile
from training.loop import BatchProgress, EpochStats, History, TrainConfig, auto_epochs, fit, predict_proba
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
# Below this many patterns the fallback is calibrated on every pattern, each predicted by a network trained without
# it (k-fold), instead of on the validation split: a 10 % split of a small file is a couple of dozen messages, and
# a threshold chosen on them is noise. Cross-validation costs k more small runs, so from here on, where the split
# holds a hundred messages or more, the split is used.
CROSS_VALIDATE_BELOW = 1_000
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
    # Stratify on integer ids: on the tags themselves numpy builds a (patterns x longest tag) array of characters,
    # gigabytes for one long tag. Ids in sorted-tag order keep numpy's class order, and with it the same split.
    rank = {label: i for i, label in enumerate(sorted(counts))}
    strata = [rank[labels[i]] for i in eligible]
    _, val = train_test_split(eligible, test_size=n_val, stratify=strata, random_state=seed)
    held = set(val)
    note = f"validation on {len(val)} of {n} patterns ({len(val) / n:.0%})"
    if singles:
        note += f"; {singles} intent(s) with a single pattern are trained on, never held out"
    return Split([i for i in range(n) if i not in held], sorted(val), note)


def build_model(n_features: int, n_intents: int, seed: int, **model_options) -> IntentNet:
    seed_everything(seed)
    return IntentNet(ModelConfig(n_features, n_intents, **model_options))


@dataclass
class Examples:
    """The file's patterns as the network sees them: each one's features and intent id, and how features are made."""

    texts: list[str]
    labels: list[str]
    tags: list[str]
    y: torch.Tensor
    feature_set: FeatureSet
    feature_lists: list[list[str]]

    @property
    def out_of_scope(self) -> int | None:
        return self.tags.index(OUT_OF_SCOPE_TAG) if OUT_OF_SCOPE_TAG in self.tags else None

    def encode(self, rows: list[int], index: dict[str, int]) -> Bags:
        return Bags.from_lists([text.ids_of(self.feature_lists[i], index) for i in rows])

    def prepare(self, rows: list[int]) -> tuple[list[str], Bags, torch.Tensor]:
        """The vocabulary of `rows`, and `rows` encoded with it: what a network trained on them needs."""
        vocabulary = text.build_vocabulary(self.feature_lists[i] for i in rows)
        return vocabulary, self.encode(rows, text.index_vocabulary(vocabulary)), self.y[rows]


def featurize_examples(intents: IntentsFile, stemmer: str, subwords: bool | None) -> Examples:
    """`subwords`: character n-gram features; None chooses them for files under SUBWORDS_BELOW patterns."""
    texts, labels = intents.examples()
    tags = intents.tags
    tag_index = {tag: i for i, tag in enumerate(tags)}
    if subwords is None:
        subwords = len(texts) < SUBWORDS_BELOW
    feature_set = FeatureSet(text.stemmer_name(stemmer), text.TOKENIZER, BIGRAMS, SUBWORD_SIZE if subwords else None)
    y = torch.tensor([tag_index[label] for label in labels], dtype=torch.long)
    return Examples(texts, labels, tags, y, feature_set, [feature_set.features(t) for t in texts])


@dataclass(frozen=True)
class Calibration:
    """How confidences are scaled and where the fallback starts, and what chose them ("none": nothing could)."""

    temperature: float = 1.0
    threshold: float = UNCALIBRATED_THRESHOLD
    method: str = "none"
    metrics: dict = field(default_factory=dict)


@dataclass
class Fitted:
    model: IntentNet
    vocabulary: list[str]
    history: History
    stop_early: bool
    note: str
    metrics: dict
    calibration: Calibration | None  # chosen on the validation split, when it is large enough


@dataclass
class Progress:
    """The caller's callbacks, told which phase ("fit", "cv2/5", "refit") is running."""

    on_epoch: Callable[[str, EpochStats], None] | None = None
    on_batch: Callable[[str, BatchProgress], None] | None = None

    def epochs(self, phase: str) -> Callable[[EpochStats], None] | None:
        on_epoch = self.on_epoch
        return None if on_epoch is None else (lambda stats: on_epoch(phase, stats))

    def batches(self, phase: str) -> Callable[[BatchProgress], None] | None:
        on_batch = self.on_batch
        return None if on_batch is None else (lambda progress: on_batch(phase, progress))


def train_model(
    intents: IntentsFile,
    config: TrainConfig | None = None,
    model_options: dict | None = None,
    on_epoch: Callable[[str, EpochStats], None] | None = None,
    stemmer: str = text.DEFAULT_STEMMER,
    subwords: bool | None = None,
    on_batch: Callable[[str, BatchProgress], None] | None = None,
) -> TrainResult:
    """Train on `intents` and return a checkpoint dict ready for `save_checkpoint`; `on_epoch(phase, stats)` reports
    every epoch, and the last of each cross-validation fold (phase "cv2/5"), `on_batch(phase, progress)` every batch.

    The steps: features; a validation split; a first fit (stopping early on a large enough split); the fallback's
    calibration, on the split or, for small files, by cross-validation; a refit on every pattern; the checkpoint.
    """
    started = time.perf_counter()
    config = config or TrainConfig()
    model_options = model_options or {}
    progress = Progress(on_epoch, on_batch)
    data = featurize_examples(intents, stemmer, subwords)
    split = split_examples(data.labels, config.val_fraction, config.seed)
    max_epochs = config.epochs or auto_epochs(len(split.train), config.batch_size)
    # The settings actually used, which the checkpoint records: the epoch budget and a patience that grows with it.
    config = replace(config, epochs=max_epochs, patience=max(config.patience, max_epochs // 10))
    fitted = fit_first(data, split, config, model_options, progress)
    calibration, note = fitted.calibration, fitted.note
    if calibration is None and len(data.texts) < CROSS_VALIDATE_BELOW:
        calibration = calibrate_by_cross_validation(data, config, fitted.history.best_epoch, model_options, on_epoch)
        uncalibrated = f"the fallback threshold is the uncalibrated {UNCALIBRATED_THRESHOLD}"
        note += (
            f"; fallback threshold chosen by {calibration.method}"
            if calibration
            else f"; too few patterns to calibrate on: {uncalibrated}"
        )
    calibration = calibration or Calibration()
    model, vocabulary, refit_history = fitted.model, fitted.vocabulary, None
    if split.val and (len(data.texts) < REFIT_BELOW if config.refit is None else config.refit):
        model, vocabulary, refit_history = refit_on_all(
            data, config, fitted.history.best_epoch, model_options, progress
        )
    seconds = time.perf_counter() - started
    history = fitted.history
    checkpoint = build_checkpoint(
        model=model,
        vocabulary=vocabulary,
        feature_set=data.feature_set,
        intents=intents,
        threshold=calibration.threshold,
        temperature=calibration.temperature,
        calibration=calibration.method,
        train_config=config.to_dict()
        | {"epochs_run": len(history.epochs), "best_epoch": history.best_epoch, "early_stopping": fitted.stop_early},
        refitted=refit_history is not None,
        metrics=fitted.metrics | calibration.metrics,
        history=history.to_dict(),
        validation=note,
        seconds=seconds,
    )
    return TrainResult(checkpoint, history, refit_history, note, seconds)


def fit_first(data: Examples, split: Split, config: TrainConfig, model_options: dict, progress: Progress) -> Fitted:
    """Train on the split's training rows; with held-out rows, watch them (and stop early on enough of them), and
    calibrate on them when the file is large enough for a split to be trusted."""
    vocabulary, bags, y = data.prepare(split.train)
    model = build_model(len(vocabulary), len(data.tags), config.seed, **model_options)
    metrics: dict = {"validation_patterns": len(split.val), "train_patterns": len(split.train)}
    if not split.val:
        history = fit(
            model, bags, y, config, config.epochs, None, progress.epochs("fit"), False, progress.batches("fit")
        )
        return Fitted(model, vocabulary, history, False, split.note, metrics, None)
    encoder = data.feature_set.encoder(vocabulary)  # its index encodes the split, its shares weigh the confidences
    val_bags, val_y = data.encode(split.val, encoder.index), data.y[split.val]
    stop_early = len(split.val) >= STOP_EARLY_FROM
    note = split.note
    if not stop_early:
        note += f"; fewer than {STOP_EARLY_FROM} held out, too few to stop early on: all {config.epochs} epochs run"
    history = fit(
        model,
        bags,
        y,
        config,
        config.epochs,
        (val_bags, val_y),
        progress.epochs("fit"),
        stop_early,
        progress.batches("fit"),
    )
    metrics["val_loss"] = history.epochs[history.best_epoch - 1].val_loss
    calibration = None
    if len(split.val) >= CALIBRATE_FROM and len(data.texts) >= CROSS_VALIDATE_BELOW:
        shares = known_shares(encoder, [data.texts[i] for i in split.val])
        temperature, threshold, found = calibrate_fallback(
            predict_proba(model, val_bags), val_y, shares, data.out_of_scope
        )
        calibration = Calibration(temperature, threshold, "validation split", found)
    return Fitted(model, vocabulary, history, stop_early, note, metrics, calibration)


def calibrate_by_cross_validation(
    data: Examples,
    config: TrainConfig,
    epochs: int,
    model_options: dict,
    on_epoch: Callable[[str, EpochStats], None] | None,
) -> Calibration | None:
    """The fallback calibrated on every pattern, each predicted by a network trained without it; None when too few
    patterns can be held out."""
    folds = cross_validation_folds(data.labels, CROSS_VALIDATION_FOLDS, config.seed)
    if sum(map(len, folds)) < CALIBRATE_FROM:
        return None
    keep = KEEP_CORRECT if data.out_of_scope is not None else KEEP_CORRECT_CROSS_VALIDATED
    raw, gold, shares = cross_validated_probabilities(folds, data, config, epochs, model_options, on_epoch)
    temperature, threshold, found = calibrate_fallback(raw, gold, shares, data.out_of_scope, keep)
    metrics = {f"cv_{k.removeprefix('val_')}": v for k, v in found.items()}
    return Calibration(temperature, threshold, f"cross-validation ({len(folds)} folds, {len(gold)} patterns)", metrics)


def refit_on_all(
    data: Examples, config: TrainConfig, epochs: int, model_options: dict, progress: Progress
) -> tuple[IntentNet, list[str], History]:
    """A new network on every pattern, for the number of epochs the first fit found best."""
    vocabulary, bags, y = data.prepare(list(range(len(data.texts))))
    model = build_model(len(vocabulary), len(data.tags), config.seed, **model_options)
    history = fit(model, bags, y, config, epochs, None, progress.epochs("refit"), on_batch=progress.batches("refit"))
    return model, vocabulary, history


def calibrate_fallback(
    raw: torch.Tensor,
    gold: torch.Tensor,
    shares: np.ndarray,
    out_of_scope: int | None = None,
    keep: float = KEEP_CORRECT,
) -> tuple[float, float, dict]:
    """(temperature, threshold, metrics) from held-out probabilities, the right intents and known-word shares.

    The threshold keeps `keep` of the held-out in-scope messages answered right; held-out out-of-scope examples
    (intent `out_of_scope`) fall back whatever the threshold, so they count as neither.
    """
    temperature = fit_temperature(raw, gold)
    probs = calibrate(raw, temperature).numpy()
    top, gold_np = probs.argmax(axis=1), gold.numpy()
    confidence = scaled_confidence(probs.max(axis=1), shares)
    in_scope = gold_np != (-1 if out_of_scope is None else out_of_scope)
    answers = top != (-1 if out_of_scope is None else out_of_scope)
    correct = top == gold_np
    threshold = choose_threshold(confidence[in_scope], correct[in_scope], keep)
    answered = answers & (confidence >= threshold)
    metrics = {
        "val_accuracy": float(correct.mean()),
        "val_fallback_rate": float((~answered).mean()),
        "val_answered_accuracy": float(correct[answered].mean()) if answered.any() else None,
    }
    return temperature, threshold, metrics


def known_shares(encoder: Encoder, messages: Sequence[str]) -> np.ndarray:
    return np.array([encoder(m)[1] for m in messages], dtype=np.float64)


def cross_validation_folds(labels: Sequence[str], k: int, seed: int) -> list[list[int]]:
    """Patterns dealt into `k` folds, each intent's spread evenly from a random start; an intent with a single
    pattern is never held out (its fold model would not know it exists)."""
    rng = np.random.default_rng(seed)
    by_label: dict[str, list[int]] = {}
    for i, label in enumerate(labels):
        by_label.setdefault(label, []).append(i)
    folds: list[list[int]] = [[] for _ in range(k)]
    for rows in by_label.values():
        if len(rows) < 2:
            continue
        start = int(rng.integers(k))
        for j, row in enumerate(rng.permutation(rows)):
            folds[(start + j) % k].append(int(row))
    return [sorted(fold) for fold in folds if fold]


def cross_validated_probabilities(
    folds: list[list[int]],
    data: Examples,
    config: TrainConfig,
    epochs: int,
    model_options: dict,
    on_epoch: Callable[[str, EpochStats], None] | None = None,
) -> tuple[torch.Tensor, torch.Tensor, np.ndarray]:
    """Each pattern's probabilities from a network trained without its fold, as the final one is (same epochs, its
    own vocabulary), pooled: on a small file, the only held-out answers there are to choose a threshold from."""
    probs, gold, shares = [], [], []
    for number, held in enumerate(folds):
        held_set = set(held)
        rows = [i for i in range(len(data.texts)) if i not in held_set]
        vocabulary = text.build_vocabulary(data.feature_lists[i] for i in rows)
        encoder = data.feature_set.encoder(vocabulary)
        model = build_model(len(vocabulary), len(data.tags), config.seed + 1 + number, **model_options)
        phase = f"cv{number + 1}/{len(folds)}"
        last_only = None if on_epoch is None else (lambda s, p=phase: s.epoch == s.total and on_epoch(p, s))
        fit(model, data.encode(rows, encoder.index), data.y[rows], config, epochs, None, last_only)
        probs.append(predict_proba(model, data.encode(held, encoder.index)))
        gold.append(data.y[held])
        shares.append(known_shares(encoder, [data.texts[i] for i in held]))
    return torch.cat(probs), torch.cat(gold), np.concatenate(shares)
