"""From validated intents to a complete checkpoint: split, featurize, train, choose the fallback threshold, refit."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

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
# a threshold chosen on them is noise. Training costs k more small runs (the shipped file: 3 s -> 13 s), so from here
# on, where the split holds a hundred messages or more, the split is used.
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

    `subwords`: character n-gram features; None chooses them for files under SUBWORDS_BELOW patterns.
    """
    config = config or TrainConfig()
    started = time.perf_counter()
    model_options = model_options or {}
    texts, labels = intents.examples()
    tags = intents.tags
    tag_index = {tag: i for i, tag in enumerate(tags)}
    y_all = torch.tensor([tag_index[label] for label in labels], dtype=torch.long)
    if subwords is None:
        subwords = len(texts) < SUBWORDS_BELOW
    feature_set = FeatureSet(text.stemmer_name(stemmer), text.TOKENIZER, BIGRAMS, SUBWORD_SIZE if subwords else None)
    feature_lists = [feature_set.features(t) for t in texts]
    split = split_examples(labels, config.val_fraction, config.seed)

    def prepare(rows: list[int]) -> tuple[list[str], Bags, torch.Tensor]:
        vocabulary = text.build_vocabulary(feature_lists[i] for i in rows)
        return vocabulary, encode_rows(rows, text.index_vocabulary(vocabulary)), y_all[rows]

    def encode_rows(rows: list[int], index: dict[str, int]) -> Bags:
        return Bags.from_lists([text.ids_of(feature_lists[i], index) for i in rows])

    def report(phase: str) -> Callable[[EpochStats], None] | None:
        return None if on_epoch is None else (lambda stats: on_epoch(phase, stats))

    def report_batches(phase: str) -> Callable[[BatchProgress], None] | None:
        return None if on_batch is None else (lambda progress: on_batch(phase, progress))

    vocabulary, bags, y = prepare(split.train)
    max_epochs = config.epochs or auto_epochs(len(split.train), config.batch_size)
    # The settings actually used, which the checkpoint records: the epoch budget and a patience that grows with it.
    config = replace(config, epochs=max_epochs, patience=max(config.patience, max_epochs // 10))
    model = build_model(len(vocabulary), len(tags), config.seed, **model_options)
    metrics: dict = {"validation_patterns": len(split.val), "train_patterns": len(split.train)}
    note, stop_early = split.note, False
    threshold, calibrated, temperature = UNCALIBRATED_THRESHOLD, False, 1.0
    calibration = "none"
    if split.val:
        encoder = feature_set.encoder(vocabulary)  # its index encodes the split, its shares weigh the confidences
        val_bags = encode_rows(split.val, encoder.index)
        val_y = y_all[split.val]
        stop_early = len(split.val) >= STOP_EARLY_FROM
        if not stop_early:
            note += f"; fewer than {STOP_EARLY_FROM} held out, too few to stop early on: all {max_epochs} epochs run"
        history = fit(
            model, bags, y, config, max_epochs, (val_bags, val_y), report("fit"), stop_early, report_batches("fit")
        )
        metrics["val_loss"] = history.epochs[history.best_epoch - 1].val_loss
        if len(split.val) >= CALIBRATE_FROM and len(texts) >= CROSS_VALIDATE_BELOW:
            shares = known_shares(encoder, [texts[i] for i in split.val])
            temperature, threshold, found = calibrate_fallback(
                predict_proba(model, val_bags), val_y, shares, tag_index.get(OUT_OF_SCOPE_TAG)
            )
            calibrated, calibration = True, "validation split"
            metrics |= found
    else:
        history = fit(model, bags, y, config, max_epochs, None, report("fit"), on_batch=report_batches("fit"))
    if not calibrated and len(texts) < CROSS_VALIDATE_BELOW:
        folds = cross_validation_folds(labels, CROSS_VALIDATION_FOLDS, config.seed)
        if sum(map(len, folds)) >= CALIBRATE_FROM:
            keep = KEEP_CORRECT if OUT_OF_SCOPE_TAG in tag_index else KEEP_CORRECT_CROSS_VALIDATED
            raw, gold, shares = cross_validated_probabilities(
                folds,
                feature_lists,
                texts,
                y_all,
                feature_set,
                len(tags),
                config,
                history.best_epoch,
                model_options,
                on_epoch,
            )
            temperature, threshold, found = calibrate_fallback(raw, gold, shares, tag_index.get(OUT_OF_SCOPE_TAG), keep)
            calibrated, calibration = True, f"cross-validation ({len(folds)} folds, {len(gold)} patterns)"
            metrics |= {f"cv_{k.removeprefix('val_')}": v for k, v in found.items()}
            note += f"; fallback threshold chosen by {calibration}"
        else:
            note += f"; too few patterns to calibrate on: the fallback threshold is the uncalibrated {threshold}"
    refit_history = None
    refit = len(texts) < REFIT_BELOW if config.refit is None else config.refit
    if split.val and refit:
        vocabulary, bags, y = prepare(list(range(len(texts))))
        model = build_model(len(vocabulary), len(tags), config.seed, **model_options)
        refit_history = fit(
            model, bags, y, config, history.best_epoch, None, report("refit"), on_batch=report_batches("refit")
        )
    seconds = time.perf_counter() - started
    checkpoint = build_checkpoint(
        model=model,
        vocabulary=vocabulary,
        feature_set=feature_set,
        intents=intents,
        threshold=threshold,
        temperature=temperature,
        calibration=calibration,
        train_config=config.to_dict()
        | {"epochs_run": len(history.epochs), "best_epoch": history.best_epoch, "early_stopping": stop_early},
        refitted=refit_history is not None,
        metrics=metrics,
        history=history.to_dict(),
        validation=note,
        seconds=seconds,
    )
    return TrainResult(checkpoint, history, refit_history, note, seconds)


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
    feature_lists: list[list[str]],
    texts: list[str],
    y_all: torch.Tensor,
    feature_set: FeatureSet,
    n_intents: int,
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
        rows = [i for i in range(len(texts)) if i not in held_set]
        vocabulary = text.build_vocabulary(feature_lists[i] for i in rows)
        encoder = feature_set.encoder(vocabulary)
        index = encoder.index
        model = build_model(len(vocabulary), n_intents, config.seed + 1 + number, **model_options)
        bags = Bags.from_lists([text.ids_of(feature_lists[i], index) for i in rows])
        phase = f"cv{number + 1}/{len(folds)}"
        last_only = None if on_epoch is None else (lambda s, p=phase: s.epoch == s.total and on_epoch(p, s))
        fit(model, bags, y_all[rows], config, epochs, None, last_only)
        held_bags = Bags.from_lists([text.ids_of(feature_lists[i], index) for i in held])
        probs.append(predict_proba(model, held_bags))
        gold.append(y_all[held])
        shares.append(known_shares(encoder, [texts[i] for i in held]))
    return torch.cat(probs), torch.cat(gold), np.concatenate(shares)
