"""Save one self-contained checkpoint atomically, and load it without ever unpickling code.

A checkpoint is a plain dict of tensors, strings, numbers, lists and dicts written with `torch.save`, and read back
with `torch.load(weights_only=True)`, which refuses every other object: a file built to run code when loaded is an
error, not an exploit. Writes go to a temporary file in the same folder and are renamed over the old file only when
complete, so a crash, a kill or a full disk never leaves a damaged or half-written model behind.
"""

from __future__ import annotations

import pickle
import warnings
from pathlib import Path
from typing import Any

import torch

from training.files import atomic_write, remove_stale_temp_files

__all__ = ["CheckpointError", "check_checkpoint", "load_checkpoint", "remove_stale_temp_files", "save_checkpoint"]

FORMAT = "chatbot-checkpoint"
FORMAT_VERSION = 2  # 2: stemmer choice, every intent's record, data findings; 1 is still read
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


class CheckpointError(Exception):
    """A checkpoint is missing, unreadable, foreign, damaged or from a newer version; the message says which."""


def save_checkpoint(checkpoint: dict[str, Any], path: str | Path) -> Path:
    """Write `checkpoint` to `path` atomically; on any failure the previous file is untouched and no temp file stays."""
    try:
        return atomic_write(path, lambda handle: torch.save(checkpoint, handle))
    except (OSError, RuntimeError) as exc:  # torch.save reports a full disk as RuntimeError
        raise CheckpointError(f"cannot write {path}: {getattr(exc, 'strerror', None) or exc}") from exc


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Read and check a checkpoint; raise CheckpointError with one clear line for every way it can be wrong."""
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"model not found: {path} (run `chatbot train` first)")
    if path.is_dir():
        raise CheckpointError(f"{path} is a folder, not a checkpoint file")
    try:
        with warnings.catch_warnings():  # torch warns about old pickle protocols: one error line is the whole story
            warnings.simplefilter("ignore")
            checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        # torch's own message suggests weights_only=False, i.e. running whatever the file carries: never relay that
        raise CheckpointError(
            f"{path}: not a readable chatbot checkpoint (it holds objects other than tensors and plain data)"
        ) from None
    except Exception as exc:  # torch reports damage as RuntimeError, EOFError, ...: all mean the same
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(f"{path}: not a readable chatbot checkpoint ({reason[:200]})") from None
    return check_checkpoint(checkpoint, path)


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
