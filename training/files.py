"""Reading the user's files with one-line errors, and atomic writes.

Writes go to a temporary file in the same folder, fsynced, renamed over the target only when complete: a crash, a
kill or a full disk therefore never leaves a damaged or half-written file where a good one was. Temporary files carry
the writer's pid, so the next write removes those whose writer died.
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

FILE_MODE = 0o644  # mkstemp creates 0600 files, and the rename would keep that


def read_user_file(path: Path, error: type[Exception]) -> bytes:
    """The bytes of a file the user named; a missing, folder or unreadable path raises `error` with one line."""
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise error(f"{path}: file not found") from None
    except IsADirectoryError:
        raise error(f"{path}: is a folder, not a file") from None
    except OSError as exc:
        raise error(f"{path}: cannot read: {exc.strerror or exc}") from None


def temp_prefix(path: Path) -> str:
    return f".{path.name}.tmp-"


def atomic_write(path: str | Path, write: Callable[[BinaryIO], object]) -> Path:
    """Call `write(handle)` on a temporary file, then rename it over `path`. On any exception (OSError, or whatever
    `write` raises) the temporary file is removed, the exception propagates, and the previous `path` is untouched."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temp_files(path)
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f"{temp_prefix(path)}{os.getpid()}-", suffix=".tmp")
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, FILE_MODE)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    with contextlib.suppress(OSError):  # make the rename itself durable where the platform allows it
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    return path


def remove_stale_temp_files(path: Path) -> list[Path]:
    """Delete temporary files left by writers of `path` that were killed before they could clean up."""
    pattern = re.compile(re.escape(temp_prefix(path)) + r"(\d+)-.*\.tmp$")
    removed = []
    for candidate in path.parent.glob(temp_prefix(path) + "*"):
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
