"""Train an intents file and save a checkpoint known to load and answer: the one way a trained model reaches disk.

The command line, the tests' fixtures and the benchmarks all train through `train_file`, so what they check and
measure is what a user gets. Saving never replaces what is not a checkpoint (unless forced), and a failed run leaves
the previous checkpoint exactly as it was: the new one is serialized, loaded back from those bytes and compared
with the trained network before it is written atomically, then read back from disk.

Every checkpoint records a self-test: a few patterns of each intent with the intent the trained model gives them, so
that a copy of it can prove later, wherever it is loaded, that it still answers as it did (`training.registry`).
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from training.checkpoint import (
    FORMAT_VERSION,
    SELF_TEST,
    CheckpointError,
    is_chatbot_checkpoint,
    load_checkpoint,
    load_checkpoint_bytes,
    self_test_record,
    serialize,
    write_checkpoint_bytes,
)
from training.classifier import IntentClassifier
from training.defaults import DEFAULT_STEMMER
from training.errors import UserError
from training.files import NotAFileError, refuse_special
from training.intents import IntentsFile
from training.loop import BatchProgress, EpochStats, TrainConfig, TrainingError
from training.pipeline import TrainResult, train_model
from training.text import StemmerError, stemmer_name

VERIFIED_PATTERNS = 256  # patterns the saved model answers, compared with the trained one, before it is written
SELF_TEST_PER_INTENT = 2  # patterns of each intent recorded in the checkpoint's self-test
SELF_TEST_MOST = 300  # in all: a 1,000-intent file records one pattern for 300 of them
SELF_TEST_TRIED = 4  # patterns of each intent tried, in the file's order
# A recorded pattern's intent is ahead of the runner-up by this much probability, so that another machine's float
# rounding cannot turn a passing self-test into a failing one.
SELF_TEST_MARGIN = 0.05


class TargetError(UserError):
    """What is at the checkpoint path must not be replaced."""


class SaveError(UserError):
    """Training or saving failed; the previous checkpoint is untouched (the message says so)."""


@dataclass
class Trained:
    path: Path
    result: TrainResult
    classifier: IntentClassifier  # read back from the saved file
    size_bytes: int


def train_file(
    intents: IntentsFile,
    model_path: str | Path,
    config: TrainConfig | None = None,
    model_options: dict[str, Any] | None = None,
    stemmer: str = DEFAULT_STEMMER,
    force: bool = False,
    on_epoch: Callable[[str, EpochStats], None] | None = None,
    on_batch: Callable[[str, BatchProgress], None] | None = None,
) -> Trained:
    """Train on `intents`, save to `model_path`, and return the saved model as it loads from disk.

    Raises TargetError before training when `model_path` must not be replaced (`force` allows any regular file or
    symbolic link), SaveError when training or saving fails.
    """
    target = Path(model_path)
    if refusal := target_refusal(target, intents.source, force):
        raise TargetError(f"{refusal}; nothing was trained")
    try:
        result = train_model(intents, config, model_options, on_epoch=on_epoch, stemmer=stemmer, on_batch=on_batch)
        trained = IntentClassifier(result.checkpoint, source="the new model")
        result.checkpoint[SELF_TEST] = self_test_record(choose_self_test(trained, intents))
        data = verified_bytes(result.checkpoint, trained, intents.examples()[0][:VERIFIED_PATTERNS])
        if refusal := target_refusal(target, intents.source, force):  # something appeared there meanwhile
            raise CheckpointError(refusal)
        write_checkpoint_bytes(data, target)
    except (TrainingError, CheckpointError) as exc:
        raise SaveError(f"{exc}; {target} was not changed") from None
    try:
        classifier = IntentClassifier.from_checkpoint(target)
    except CheckpointError as exc:
        raise SaveError(f"{target} was written but does not load back: {exc}") from None
    return Trained(target, result, classifier, len(data))


def verified_bytes(checkpoint: dict[str, Any], trained: IntentClassifier, patterns: list[str]) -> bytes:
    """The serialized checkpoint, once a model loaded from those very bytes answers `patterns` as `trained` (the
    checkpoint's classifier in memory) does."""
    data = serialize(checkpoint)
    loaded = IntentClassifier(load_checkpoint_bytes(data, "the new model"), source="the new model")
    if not torch.allclose(trained.probabilities(patterns), loaded.probabilities(patterns)):
        raise CheckpointError("the new model answers differently once saved")
    return data


def choose_self_test(classifier: IntentClassifier, intents: IntentsFile) -> list[tuple[str, str]]:
    """(pattern, intent) pairs for the checkpoint's self-test: up to SELF_TEST_PER_INTENT patterns of each intent
    that the model answers with that intent, clearly ahead of the runner-up, at most SELF_TEST_MOST in all (each
    intent's first pattern before any intent's second)."""
    tried = [
        (pattern, intent.tag)
        for intent in intents.trainable
        for pattern in list(dict.fromkeys(intent.patterns))[:SELF_TEST_TRIED]
    ]
    if not tried:
        return []
    probabilities = classifier.probabilities([pattern for pattern, _ in tried])
    top = probabilities.topk(min(2, probabilities.shape[1]), dim=1)
    answered: dict[str, list[str]] = {}
    for (pattern, tag), values, indices in zip(tried, top.values.tolist(), top.indices.tolist()):
        clear = len(values) == 1 or values[0] - values[1] >= SELF_TEST_MARGIN
        if classifier.tags[indices[0]] == tag and clear:
            answered.setdefault(tag, []).append(pattern)
    cases = [
        (rank, pattern, tag)
        for tag, patterns in answered.items()
        for rank, pattern in enumerate(patterns[:SELF_TEST_PER_INTENT])
    ]
    kept = sorted(cases, key=lambda case: case[0])[:SELF_TEST_MOST]  # stable: every intent's first, then seconds
    return [(pattern, tag) for _, pattern, tag in kept]


def target_refusal(target: Path, intents_path: str | Path, force: bool) -> str | None:
    """Why training must not replace what is at `target`, or None when it may.

    Saving renames a new file over the path, destroying whatever was there: without `force` only a chatbot
    checkpoint (a damaged one included) is replaced. A device, named pipe, socket or folder is never replaced, nor is
    the intents file being trained on, forced or not; forcing on a symbolic link replaces the link, not its target.
    """
    try:
        mode = os.lstat(target).st_mode
    except FileNotFoundError:
        return None
    except OSError:
        return None  # an unreadable folder: the write says so, with the old file untouched
    if _same_file(target, intents_path):
        return f"{target} is the intents file being trained on; choose another --model path"
    try:
        refuse_special(target)
    except NotAFileError as exc:
        return f"{exc}; choose another --model path"
    if force:
        return None
    if stat.S_ISLNK(mode):
        return (
            f"{target} is a symbolic link (to {os.readlink(target)}); choose another --model path, "
            "or --force to replace the link itself (the file it points to is left alone)"
        )
    if not is_chatbot_checkpoint(target):
        return f"{target} exists and is not a chatbot checkpoint; choose another --model path, or --force to replace it"
    return None


def _same_file(first: str | Path, second: str | Path) -> bool:
    try:
        return os.path.samefile(first, second)
    except OSError:
        return False


def existing_checkpoint(model_path: str | Path) -> dict[str, Any] | None:
    """The checkpoint already at `model_path`, or None when there is none or it cannot be used."""
    try:
        return load_checkpoint(model_path)
    except CheckpointError:
        return None


def stemmer_of(checkpoint: dict[str, Any] | None) -> str | None:
    """The stemmer a loaded checkpoint was trained with (`load_checkpoint` checked that it has features)."""
    try:
        return stemmer_name(checkpoint["features"].get("stemmer")) if checkpoint else None
    except StemmerError:
        return None


def retrain_reason(
    checkpoint: dict[str, Any] | None,
    intents_sha256: str,
    stemmer: str | None,
    intent_records: list[dict[str, Any]] | None = None,
) -> str | None:
    """Why the checkpoint must be retrained for this intents file and stemmer (None: any), or None if it is current.

    The intents file is compared by the SHA-256 of its bytes, so an edited file is never silently ignored.
    `intent_records` (None: any) are the intents as this run would record them: with `--context-lifespan`, their
    keys differ from the file's.
    """
    if checkpoint is None:
        return "there is no usable checkpoint"
    if checkpoint.get("format_version") != FORMAT_VERSION:
        return f"it was made by an older version (checkpoint format {checkpoint.get('format_version')})"
    if checkpoint.get("intents_sha256") != intents_sha256:
        return "the intents file has changed since it was trained"
    made_with = stemmer_of(checkpoint)
    if stemmer is not None and made_with != stemmer:
        return f"it was trained with the {made_with} stemmer, not {stemmer}"
    if intent_records is not None and [r.get("extra_json") for r in checkpoint.get("intents", [])] != [
        r["extra_json"] for r in intent_records
    ]:
        return "its intents' context lifespans are not the ones asked for"
    return None
