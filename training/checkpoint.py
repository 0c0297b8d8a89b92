"""Save one self-contained checkpoint atomically, and load it without ever unpickling code.

A checkpoint is a plain dict of tensors, strings, numbers, lists and dicts written with `torch.save`, and read back
with `torch.load(weights_only=True)`, which refuses every other object: a file built to run code when loaded is an
error, not an exploit. Writes go to a temporary file in the same folder and are renamed over the old file only when
complete, so a crash, a kill or a full disk never leaves a damaged or half-written model behind.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import re
import tempfile
import warnings
from pathlib import Path
from typing import Any

import torch

FORMAT = "chatbot-checkpoint"
FORMAT_VERSION = 1
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
FILE_MODE = 0o644


class CheckpointError(Exception):
    """A checkpoint is missing, unreadable, foreign, damaged or from a newer version; the message says which."""


def _temp_prefix(path: Path) -> str:
    return f".{path.name}.tmp-"


def save_checkpoint(checkpoint: dict[str, Any], path: str | Path) -> Path:
    """Write `checkpoint` to `path` atomically; on any failure the previous file is untouched and no temp file stays."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        remove_stale_temp_files(path)
        fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f"{_temp_prefix(path)}{os.getpid()}-", suffix=".tmp")
    except OSError as exc:
        raise CheckpointError(f"cannot write {path}: {exc.strerror or exc}") from exc
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as handle:
            torch.save(checkpoint, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, FILE_MODE)
        os.replace(tmp, path)
    except BaseException as exc:
        tmp.unlink(missing_ok=True)
        if isinstance(exc, OSError | RuntimeError):  # torch.save reports a full disk as RuntimeError
            raise CheckpointError(f"cannot write {path}: {getattr(exc, 'strerror', None) or exc}") from exc
        raise
    with contextlib.suppress(OSError):  # make the rename itself durable where the platform allows it
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    return path


def remove_stale_temp_files(path: Path) -> list[Path]:
    """Delete temporary files left by runs of this program that were killed while writing `path`."""
    pattern = re.compile(re.escape(_temp_prefix(path)) + r"(\d+)-.*\.tmp$")
    removed = []
    for candidate in path.parent.glob(_temp_prefix(path) + "*"):
        match = pattern.match(candidate.name)
        if match and not _process_alive(int(match.group(1))):
            with contextlib.suppress(OSError):
                candidate.unlink()
                removed.append(candidate)
    return removed


def _process_alive(pid: int) -> bool:
    if pid == os.getpid():
        return False  # a temp file of ours from an earlier, failed write in this process
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


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
