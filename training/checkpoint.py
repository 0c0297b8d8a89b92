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
import pickle
import struct
import warnings
import zipfile
import zlib
from pathlib import Path
from typing import Any

import torch

from training.files import (
    NotAFileError,
    atomic_write,
    describe_write_error,
    read_regular_file,
    remove_stale_temp_files,
)

__all__ = [
    "CheckpointError",
    "check_checkpoint",
    "is_chatbot_checkpoint",
    "load_checkpoint",
    "remove_stale_temp_files",
    "save_checkpoint",
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


class CheckpointError(Exception):
    """A checkpoint is missing, unreadable, foreign, damaged or from a newer version; the message says which."""


def save_checkpoint(checkpoint: dict[str, Any], path: str | Path) -> Path:
    """Write `checkpoint` to `path` atomically; on any failure the previous file is untouched and no temp file stays.

    The checkpoint is serialized in memory first: the temporary file then lives only while bytes are written, and a
    full disk surfaces as an OSError with its errno (torch.save reports it as a RuntimeError without one).
    """
    buffer = io.BytesIO()
    try:
        torch.save(checkpoint, buffer)
    except Exception as exc:  # what cannot be pickled: AttributeError, PicklingError, TypeError, ... by its kind
        raise CheckpointError(f"cannot save the checkpoint: {exc}") from exc
    try:
        return atomic_write(path, lambda handle: handle.write(buffer.getbuffer()))
    except OSError as exc:
        raise CheckpointError(f"cannot write {path}: {describe_write_error(exc)}") from exc


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Read and check a checkpoint; raise CheckpointError with one clear line for every way it can be wrong."""
    path = Path(path)
    data = read_checkpoint_bytes(path)
    if problem := archive_problem(data):
        raise CheckpointError(f"{path}: {problem}")
    try:
        with warnings.catch_warnings():  # torch warns about old pickle protocols: one error line is the whole story
            warnings.simplefilter("ignore")
            checkpoint = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        # torch's own message suggests weights_only=False, i.e. running whatever the file carries: never relay that
        raise CheckpointError(
            f"{path}: not a readable chatbot checkpoint (it holds objects other than tensors and plain data)"
        ) from None
    except Exception as exc:  # torch reports damage as RuntimeError, EOFError, ...: all mean the same
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(f"{path}: not a readable chatbot checkpoint ({reason[:200]})") from None
    return check_checkpoint(checkpoint, path)


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
