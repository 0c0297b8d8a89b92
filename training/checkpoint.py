"""Save one self-contained checkpoint atomically, and load it without ever unpickling code or serving mixed bytes.

A checkpoint is a plain dict of tensors, strings, numbers, lists and dicts written with `torch.save`, and read back
with `torch.load(weights_only=True)`, which refuses every other object: a file built to run code when loaded is an
error, not an exploit. Writes go to a temporary file in the same folder and are renamed over the old file only when
complete, so a crash, a kill or a full disk never leaves a damaged or half-written model behind.

torch does not check the CRC-32 that its ZIP archive records for every part, so a file rewritten in place while it
was read, or spliced from two same-shaped models, loads and answers. Loading therefore reads the file once, checks
every part's CRC against the archive's directory, and hands torch exactly the bytes it checked. That covers every
checkpoint ever written, old formats included, for about a tenth of what `torch.load` itself costs.
"""

from __future__ import annotations

import io
import json
import math
import pickle
import platform
import struct
import warnings
import zipfile
import zlib
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import torch

from training.context import ContextKeyError, IntentContext, intent_context
from training.errors import UserError
from training.fallback import FALLBACK_RESPONSES
from training.featurize import FeatureSet
from training.files import (
    NotAFileError,
    atomic_write,
    describe_write_error,
    read_regular_file,
    remove_stale_temp_files,
)
from training.intents import OUT_OF_SCOPE_TAG, IntentsFile
from training.model import IntentNet, ModelConfig

__all__ = [
    "CheckpointError",
    "Parts",
    "Summary",
    "answering_parts",
    "build_checkpoint",
    "check_checkpoint",
    "is_chatbot_checkpoint",
    "load_checkpoint",
    "load_checkpoint_bytes",
    "remove_stale_temp_files",
    "save_checkpoint",
    "self_test_cases",
    "self_test_record",
    "serialize",
    "summary",
    "write_checkpoint_bytes",
]

FORMAT = "chatbot-checkpoint"
# 2: stemmer choice, every intent's record, data findings; 3: character n-grams, confidence scaled by known words,
# the out-of-scope intent. Older versions are still read and answer as they did.
FORMAT_VERSION = 3
REQUIRED_KEYS = {
    "format": str,
    "format_version": int,
    "state_dict": dict,
    "model_config": dict,
    "features": dict,
    "tags": list,
    "responses": dict,
    "fallback": dict,
}
ZIP_MAGIC = b"PK\x03\x04"
LOCAL_HEADER = struct.Struct("<4s22xHH")  # signature, (fields the directory repeats), name length, extra length
SNIFF_BYTES = 64 * 1024  # torch writes the pickled dict, "format" key first, as the archive's first part


class CheckpointError(UserError):
    """A checkpoint is missing, unreadable, foreign, damaged or from a newer version; the message says which."""


def save_checkpoint(checkpoint: dict[str, Any], path: str | Path) -> Path:
    """Write `checkpoint` to `path` atomically; on any failure the previous file is untouched and no temp file stays."""
    return write_checkpoint_bytes(serialize(checkpoint), path)


def serialize(checkpoint: dict[str, Any]) -> bytes:
    """The bytes `save_checkpoint` writes. In memory first: the temporary file then lives only while bytes are
    written, and a full disk surfaces as an OSError with its errno (torch.save reports it as a RuntimeError without).
    """
    buffer = io.BytesIO()
    try:
        torch.save(checkpoint, buffer)
    except Exception as exc:  # what cannot be pickled: AttributeError, PicklingError, TypeError, ... by its kind
        raise CheckpointError(f"cannot save the checkpoint: {exc}") from exc
    return buffer.getvalue()


def write_checkpoint_bytes(data: bytes, path: str | Path) -> Path:
    """Write serialized checkpoint bytes to `path` atomically (see `save_checkpoint`)."""
    try:
        return atomic_write(path, lambda handle: handle.write(data))
    except OSError as exc:
        raise CheckpointError(f"cannot write {path}: {describe_write_error(exc)}") from exc


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Read and check a checkpoint; raise CheckpointError with one clear line for every way it can be wrong."""
    path = Path(path)
    return load_checkpoint_bytes(read_checkpoint_bytes(path), path)


def load_checkpoint_bytes(data: bytes, source: str | Path) -> dict[str, Any]:
    """A checkpoint from its bytes (a file's, or `serialize`'s), checked as `load_checkpoint` checks a file."""
    if problem := archive_problem(data):
        raise CheckpointError(f"{source}: {problem}")
    try:
        with warnings.catch_warnings():  # torch warns about old pickle protocols: one error line is the whole story
            warnings.simplefilter("ignore")
            checkpoint = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        # torch's own message suggests weights_only=False, i.e. running whatever the file carries: never relay that
        raise CheckpointError(
            f"{source}: not a readable chatbot checkpoint (it holds objects other than tensors and plain data)"
        ) from None
    except Exception as exc:  # torch reports damage as RuntimeError, EOFError, ...: all mean the same
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(f"{source}: not a readable chatbot checkpoint ({reason[:200]})") from None
    return check_checkpoint(checkpoint, source)


def read_checkpoint_bytes(path: Path) -> bytes:
    """The bytes of a checkpoint file, or a one-line CheckpointError; a device, FIFO or folder is refused unread."""
    try:
        return read_regular_file(path)
    except FileNotFoundError:
        raise CheckpointError(f"model not found: {path} (run `chatbot train` first)") from None
    except NotAFileError as exc:
        raise CheckpointError(f"{path} is {exc.kind}, not a checkpoint file") from None
    except OSError as exc:
        raise CheckpointError(f"cannot read {path}: {exc.strerror or exc}") from None


def archive_problem(data: bytes) -> str | None:
    """Why `data` is not an intact torch archive, in words; None when every part matches its recorded CRC-32."""
    if not data.startswith(ZIP_MAGIC):
        return f"not a readable chatbot checkpoint ({_what_it_is(data)})"
    try:
        parts = zipfile.ZipFile(io.BytesIO(data)).infolist()
    except (zipfile.BadZipFile, OSError, ValueError, EOFError, struct.error):
        return "not a readable chatbot checkpoint (truncated or damaged: its archive directory is missing or broken)"
    view = memoryview(data)
    for part in parts:
        start = part.header_offset
        header = view[start : start + LOCAL_HEADER.size]
        if len(header) < LOCAL_HEADER.size or LOCAL_HEADER.unpack(header)[0] != ZIP_MAGIC:
            return f"damaged checkpoint (part '{part.filename}' is not where the archive directory says)"
        name_length, extra_length = LOCAL_HEADER.unpack(header)[1:]
        begin = start + LOCAL_HEADER.size + name_length + extra_length
        body = view[begin : begin + part.compress_size]
        if part.compress_type != zipfile.ZIP_STORED:
            return f"damaged checkpoint (part '{part.filename}' is compressed, which torch never writes)"
        if len(body) != part.compress_size or zlib.crc32(body) != part.CRC:
            return (
                f"damaged checkpoint (part '{part.filename}' does not match its CRC-32: the file was changed while "
                "it was read, or mixed from two files)"
            )
    return None


def _what_it_is(data: bytes) -> str:
    """A file that is not a torch archive at all, described as what it seems to be."""
    if not data:
        return "the file is empty"
    if not _looks_like_text(data):
        return "not a saved model: a PyTorch checkpoint is a ZIP archive, and this file is not one"
    try:
        json.loads(data)
    except ValueError:
        return "a text file, not a saved model"
    return "a JSON text file, not a saved model: an intents file is trained with `chatbot train`"


def _looks_like_text(data: bytes) -> bool:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return False
    return not any(c < " " and c not in "\t\n\r\f" for c in text[:4096])


def is_chatbot_checkpoint(path: Path) -> bool:
    """Whether a regular file at `path` is a chatbot checkpoint, or a damaged one (its first part still says so).

    Only the first 64 KiB are read: enough for the marker, whatever the size of the file.
    """
    try:
        head = read_regular_file(path, SNIFF_BYTES)
    except OSError:
        return False
    return head.startswith(ZIP_MAGIC) and FORMAT.encode() in head


def check_checkpoint(checkpoint: Any, path: str | Path) -> dict[str, Any]:
    """Refuse foreign, newer or incomplete checkpoints before any of their content is used."""
    if not isinstance(checkpoint, dict) or checkpoint.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not a chatbot checkpoint (no '{FORMAT}' marker)")
    version = checkpoint.get("format_version")
    if not isinstance(version, int):
        raise CheckpointError(f"{path}: checkpoint has no format version")
    if version > FORMAT_VERSION:
        raise CheckpointError(
            f"{path}: checkpoint format {version} is newer than this chatbot reads ({FORMAT_VERSION}); upgrade chatbot"
        )
    for key, kind in REQUIRED_KEYS.items():
        if not isinstance(checkpoint.get(key), kind):
            raise CheckpointError(f"{path}: damaged checkpoint: '{key}' is missing or not a {kind.__name__}")
    return checkpoint


# --- Building a checkpoint ---


def build_checkpoint(
    *,
    model: IntentNet,
    vocabulary: list[str],
    feature_set: FeatureSet,
    intents: IntentsFile,
    threshold: float,
    temperature: float,
    calibration: str,
    train_config: dict[str, Any],
    refitted: bool,
    metrics: dict[str, Any],
    history: dict[str, Any],
    validation: str,
    seconds: float,
) -> dict[str, Any]:
    """The checkpoint of a trained model: everything needed to answer, and to know how it was made, in plain data.

    `calibration` names what chose the temperature and threshold ("none" when nothing could).
    """
    tags = intents.tags
    out_of_scope = OUT_OF_SCOPE_TAG if OUT_OF_SCOPE_TAG in tags else None
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "state_dict": {k: v.detach().cpu().clone() for k, v in model.state_dict().items()},
        "model_config": model.config.to_dict(),
        "features": {"vocabulary": list(vocabulary)} | feature_set.to_dict(),
        "tags": list(tags),
        "responses": {intent.tag: list(intent.responses) for intent in intents.trainable},
        "intents": [intent.record() for intent in intents.intents],  # response-only ones and extra keys too
        "data_findings": intents.finding_counts(),
        "fallback": {
            "threshold": threshold,
            "temperature": temperature,
            "calibrated": calibration != "none",
            "calibration": calibration,
            "scale_by_known_words": True,
            "out_of_scope_tag": out_of_scope,
            "rule": "confidence = top probability x share of the message's words the model knows; fallback when it "
            "is below the threshold, when the message has no known words, or when the top intent is out of scope",
            "responses": list(FALLBACK_RESPONSES),
        },
        "train_config": train_config,
        "refit_on_all_data": refitted,
        "seed": train_config.get("seed"),
        "metrics": metrics,
        "history": history,
        "validation": validation,
        "versions": _versions(),
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "training_seconds": round(seconds, 3),
        "intents_sha256": intents.sha256,
        "intents_source": intents.source,
        "patterns": intents.n_patterns,
    }


def _versions() -> dict[str, str]:
    return {
        "python": platform.python_version(),
        "torch": str(torch.__version__),
        "numpy": np.__version__,
        "nltk": metadata.version("nltk"),  # not nltk.__version__: importing the whole package costs 0.2 s
        "scikit-learn": metadata.version("scikit-learn"),
    }


# --- Reading it back ---


@dataclass(frozen=True)
class Parts:
    """What answering needs from a checkpoint, each part checked: the one reader of the format's answering keys."""

    model_config: ModelConfig
    state_dict: dict[str, torch.Tensor]
    vocabulary: list[str]
    feature_set: FeatureSet
    tags: list[str]
    responses: dict[str, list[str]]  # every tag's; an intent written without responses answers with the fallback's
    fallback_responses: list[str]
    response_only: list[str]  # tags of intents kept only for their responses (format 2 on)
    threshold: float
    temperature: float
    scale_by_known_words: bool  # format 3: confidence weighed by the share of known words
    out_of_scope_tag: str | None
    contexts: dict[str, IntentContext]  # tag -> its context keys (format 2 on keeps them); tags without: none


def answering_parts(checkpoint: dict[str, Any], source: str | Path) -> Parts:
    """The checked parts of a checkpoint (`check_checkpoint` has seen its keys); CheckpointError names what is wrong.

    Older formats read as they were written: a format-1 or -2 checkpoint answers as it did.
    """
    try:
        fallback = checkpoint["fallback"]
        fallback_responses = _strings(fallback["responses"], "fallback responses")
        tags = _strings(checkpoint["tags"], "tags")
        out_of_scope = fallback.get("out_of_scope_tag")
        parts = Parts(
            model_config=ModelConfig(**checkpoint["model_config"]),
            state_dict=checkpoint["state_dict"],
            vocabulary=_strings(checkpoint["features"]["vocabulary"], "vocabulary", allow_empty=True),
            feature_set=FeatureSet.from_checkpoint(checkpoint["features"]),
            tags=tags,
            responses={
                t: _strings(checkpoint["responses"][t], f"responses of '{t}'", allow_empty=True) or fallback_responses
                for t in tags
            },
            fallback_responses=fallback_responses,
            response_only=_response_only_tags(checkpoint.get("intents", [])),
            threshold=float(fallback["threshold"]),
            temperature=float(fallback.get("temperature", 1.0)),
            scale_by_known_words=fallback.get("scale_by_known_words") is True,
            out_of_scope_tag=out_of_scope if out_of_scope in tags else None,
            contexts=_contexts(checkpoint.get("intents", [])),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(f"{source}: damaged checkpoint ({type(exc).__name__}: {exc})"[:300]) from None
    config = parts.model_config
    if len(parts.vocabulary) != config.n_features or len(parts.tags) != config.n_intents:
        raise CheckpointError(f"{source}: damaged checkpoint (vocabulary or tags do not match the weights)")
    if not (math.isfinite(parts.temperature) and parts.temperature > 0 and math.isfinite(parts.threshold)):
        raise CheckpointError(f"{source}: damaged checkpoint (fallback temperature or threshold out of range)")
    if not all(isinstance(t, torch.Tensor) and torch.isfinite(t).all() for t in parts.state_dict.values()):
        raise CheckpointError(f"{source}: damaged checkpoint (weights that are not finite numbers)")
    return parts


def _contexts(records: list[dict]) -> dict[str, IntentContext]:
    """Each intent's context keys, from the extra keys its record keeps as JSON text. Keys a file's reader of the
    time did not check, and that do not make sense, are left out: such an intent answers as it did then."""
    contexts = {}
    for record in records:
        try:
            contexts[record["tag"]] = intent_context(json.loads(record.get("extra_json", "{}")))
        except (ContextKeyError, ValueError, TypeError, KeyError, AttributeError):
            continue
    return contexts


def _response_only_tags(records: Any) -> list[str]:
    if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
        raise ValueError("intents must be a list of records")
    return [r["tag"] for r in records if r.get("trainable") is False and isinstance(r.get("tag"), str)]


def _strings(values: Any, what: str, allow_empty: bool = False) -> list[str]:
    """A list of strings, checked rather than coerced (a bare string would become its characters)."""
    if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
        raise ValueError(f"{what} must be a list of strings")
    if not values and not allow_empty:
        raise ValueError(f"no {what}")
    return list(values)


@dataclass(frozen=True)
class Summary:
    """How a checkpoint was made, for people: what `chatbot train` prints and the health endpoint reports."""

    format_version: int | None
    created_at: str | None
    training_seconds: float | None
    patterns: int | None
    intents_sha256: str | None
    stemmer: str | None
    metrics: dict[str, Any]
    calibration: str | None
    early_stopping: bool
    best_epoch: int | None
    refit_on_all_data: bool


def summary(checkpoint: dict[str, Any]) -> Summary:
    """Read leniently: a figure an older format did not record is None, never an error."""
    train_config = checkpoint.get("train_config") or {}
    features = checkpoint.get("features") or {}
    fallback = checkpoint.get("fallback") or {}
    return Summary(
        format_version=checkpoint.get("format_version"),
        created_at=checkpoint.get("created_at"),
        training_seconds=checkpoint.get("training_seconds"),
        patterns=checkpoint.get("patterns"),
        intents_sha256=checkpoint.get("intents_sha256"),
        stemmer=features.get("stemmer"),
        metrics=checkpoint.get("metrics") or {},
        calibration=fallback.get("calibration"),
        early_stopping=bool(train_config.get("early_stopping")),
        best_epoch=train_config.get("best_epoch"),
        refit_on_all_data=bool(checkpoint.get("refit_on_all_data")),
    )


# --- The self-test (optional: a checkpoint without it still loads; readers that predate it ignore the key) ---

SELF_TEST = "self_test"


def self_test_record(cases: list[tuple[str, str]]) -> dict[str, list[str]]:
    """The checkpoint's "self_test" entry: patterns, and the intent the trained model gives each, as plain lists."""
    return {"patterns": [pattern for pattern, _ in cases], "intents": [tag for _, tag in cases]}


def self_test_cases(checkpoint: dict[str, Any]) -> list[tuple[str, str]] | None:
    """The recorded (pattern, intent) pairs; None when the checkpoint has none (it was made before the self-test).

    Raises ValueError when the entry is not two lists of strings of the same length.
    """
    record = checkpoint.get(SELF_TEST)
    if record is None:
        return None
    if not isinstance(record, dict):
        raise ValueError("the self-test entry is not a dict")
    patterns = _strings(record.get("patterns"), "self-test patterns", allow_empty=True)
    tags = _strings(record.get("intents"), "self-test intents", allow_empty=True)
    if len(patterns) != len(tags):
        raise ValueError("the self-test has a different number of patterns and intents")
    return list(zip(patterns, tags))
