"""Reading the user's files with one-line errors, and atomic writes.

Writes go to a temporary file in the same folder, fsynced, renamed over the target only when complete: a crash, a
kill or a full disk therefore never leaves a damaged or half-written file where a good one was. Temporary files carry
the writer's pid, so the next write removes those whose writer died. A temporary file exists only while the bytes are
written and synced (the data is serialized before), and an exception, KeyboardInterrupt included, removes it; only a
kill that no handler sees (SIGKILL, a power cut) in that window leaves `.NAME.tmp-PID-*.tmp` beside the target.

Device nodes, named pipes and sockets are never read or replaced: a FIFO would block the reader forever, /dev/zero
never ends, and renaming over /dev/null replaces the system's device with a file.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import stat
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

FILE_MODE = 0o644  # mkstemp creates 0600 files, and the rename would keep that
# Plain words for the errors a write can meet; the system's own text ("[Errno 28] ...") for the rest.
WRITE_ERRORS = {
    errno.ENOSPC: "no space left on the device",
    errno.EDQUOT: "the disk quota is used up",
    errno.EFBIG: "the file would exceed the file-size limit (ulimit -f)",
    errno.EROFS: "the file system is read-only",
    errno.EACCES: "permission denied",
    errno.EPERM: "permission denied",
}


class NotAFileError(OSError):
    """The path is a folder, device node, named pipe or socket: never read as a file, never replaced."""

    def __init__(self, path: Path, kind: str) -> None:
        super().__init__(f"{path} is {kind}, not a file")
        self.path, self.kind = path, kind


def special_kind(mode: int) -> str | None:
    """What a non-regular file is, in words; None for a regular file."""
    if stat.S_ISREG(mode):
        return None
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISFIFO(mode):
        return "a named pipe (FIFO)"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def read_regular_file(path: Path, limit: int = -1) -> bytes:
    """The bytes of a regular file (the first `limit`, or all); anything else raises NotAFileError unread.

    The file is opened without blocking and checked again on the open descriptor, so a FIFO put in its place between
    the two looks cannot hang the reader either.
    """
    if kind := special_kind(os.stat(path).st_mode):
        raise NotAFileError(path, kind)
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    with open(fd, "rb") as handle:
        if kind := special_kind(os.fstat(fd).st_mode):
            raise NotAFileError(path, kind)
        os.set_blocking(fd, True)
        return handle.read(limit)


def describe_write_error(exc: OSError) -> str:
    return WRITE_ERRORS.get(exc.errno) or exc.strerror or str(exc)


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
    `write` raises) the temporary file is removed, the exception propagates, and the previous `path` is untouched.
    A `path` that is (or links to) a folder, device, FIFO or socket raises NotAFileError and is left alone."""
    path = Path(path)
    refuse_special(path)
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


def refuse_special(path: Path) -> None:
    """Raise NotAFileError when `path` or what it links to exists and is not a regular file."""
    for look in (os.lstat, os.stat):
        try:
            mode = look(path).st_mode
        except OSError:  # missing, or a dangling link: a rename creates or replaces the name itself
            return
        if stat.S_ISLNK(mode):
            continue
        if kind := special_kind(mode):
            raise NotAFileError(path, kind)


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
