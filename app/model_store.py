"""The classifier a process answers with, and a reload that reaches every worker process without serving an error.

A reload request reaches one worker of several. So `chatbot serve` keeps the accepted checkpoint in a folder shared by
its workers (`shared_dir/current.pt`): a reload copies MODEL_PATH there under a temporary name, loads the copy, and
only when that worked renames it over `current.pt`. Every worker compares `os.stat` of `current.pt` (inode, size,
mtime: about a microsecond) with the file it loaded before each answer, and loads the new one when they differ. Only
files that loaded once ever sit at `current.pt`, so a corrupt MODEL_PATH fails the reload request and nothing else;
a worker that gunicorn restarts later loads the accepted model, not whatever MODEL_PATH holds by then.

Reloads take turns, across workers too, through a lock file in the shared folder: of two overlapping reloads the one
that answers last is the one that published last, and it copied MODEL_PATH last. Without the lock, a slow reload
started first could publish after a later one had already answered 200, and the older file would win.

Without a shared folder (the test client, a single process) a reload loads MODEL_PATH and swaps the model in place.
Either way a request takes the current classifier once and keeps it: a swap never disturbs a request in flight.

The folder is removed when `chatbot serve` stops. A server killed outright cannot do that, so the folder's name
carries its owner's pid and the next `chatbot serve` removes folders whose owner is no longer running.
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import gc
import logging
import os
import re
import shutil
import stat
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from flask import current_app

from training.checkpoint import CheckpointError, read_checkpoint_bytes
from training.classifier import IntentClassifier
from training.registry import self_test_problem

CURRENT = "current.pt"
SHARED_PREFIX = "chatbot-serve-"
WARM_UP_MESSAGE = "hello"
log = logging.getLogger(__name__)

Fingerprint = tuple[int, int, int]


class BadModel(CheckpointError):
    """The checkpoint itself cannot be used (it does not load, or fails its self-test), unlike a failed copy."""


@dataclass(frozen=True)
class Loaded:
    classifier: IntentClassifier
    fingerprint: Fingerprint | None  # of shared_dir/current.pt when it was loaded from there
    loaded_at: str


def load_warm(path: str | Path) -> IntentClassifier:
    """Load a checkpoint and answer one message, so that the first real request does not pay torch's first call."""
    classifier = IntentClassifier.from_checkpoint(path)
    classifier.predict(WARM_UP_MESSAGE)
    # Move what is alive now (torch, Flask, the model) out of the cyclic collector's sight: its full collections
    # then stop walking hundreds of thousands of objects that never die, a long pause under load (docs/design.md).
    gc.freeze()
    release_free_memory()
    return classifier


def release_free_memory() -> bool:
    """Give the free pages of the C heap back to the system (glibc's `malloc_trim`); False where there is no such call.

    Loading a checkpoint frees tens of MB of read buffers and temporaries, which glibc keeps for later unless told
    otherwise, so that a worker's memory depended on how they happened to fall (the figures: docs/design.md).
    """
    try:
        trim = ctypes.CDLL(None).malloc_trim  # the C library already loaded (find_library would start ldconfig)
    except (OSError, AttributeError):  # not glibc (musl, macOS): nothing to do
        return False
    trim(0)
    return True


def fingerprint(path: Path) -> Fingerprint:
    stat = os.stat(path)
    return stat.st_ino, stat.st_size, stat.st_mtime_ns


def accept_checkpoint(model_path: str | Path, shared_dir: Path) -> tuple[IntentClassifier, Fingerprint]:
    """Copy `model_path` into `shared_dir`, load the copy and publish it as `current.pt`; CheckpointError if bad."""
    # not a plain copy: /dev/zero would be copied until the disk is full
    return accept_bytes(read_checkpoint_bytes(Path(model_path)), shared_dir, str(model_path))


def accept_bytes(data: bytes, shared_dir: Path, name: str) -> tuple[IntentClassifier, Fingerprint]:
    """Write a checkpoint's bytes into `shared_dir`, load them, run the self-test the checkpoint records, and publish
    them as `current.pt`, where every worker finds them; CheckpointError (naming `name`) when they are not usable."""
    fd, tmp_name = tempfile.mkstemp(dir=shared_dir, prefix=".incoming-", suffix=".pt")
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        try:
            tmp.write_bytes(data)
        except OSError as exc:
            raise CheckpointError(f"cannot copy {name} to {shared_dir}: {exc.strerror or exc}") from None
        try:
            classifier = load_warm(tmp)
        except CheckpointError as exc:  # name the user's file, not our copy of it
            raise BadModel(str(exc).replace(str(tmp), name)) from None
        if problem := self_test_problem(classifier, classifier.metadata):
            raise BadModel(f"{name} fails its self-test: {problem}")
        stamp = fingerprint(tmp)
        os.replace(tmp, shared_dir / CURRENT)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return classifier, stamp


def create_shared_dir(model_path: str | Path, data: bytes | None = None) -> Path:
    """A fresh folder holding an accepted copy of `model_path` (or of `data`, named so): what `chatbot serve` gives
    its workers.

    Its name carries this process's pid, so that a later server can tell it was left behind (see remove_stale_...).
    """
    shared_dir = Path(tempfile.mkdtemp(prefix=f"{SHARED_PREFIX}{os.getpid()}-"))
    try:
        if data is None:
            accept_checkpoint(model_path, shared_dir)
        else:
            accept_bytes(data, shared_dir, str(model_path))
        remove_stale_shared_dirs(shared_dir.parent, keep=shared_dir)
    except BaseException:
        shutil.rmtree(shared_dir, ignore_errors=True)
        raise
    return shared_dir


def remove_stale_shared_dirs(parent: Path, keep: Path) -> list[Path]:
    """Remove the shared folders in `parent` of servers that were killed: their owner's pid is no longer running."""
    removed = []
    for folder in parent.glob(f"{SHARED_PREFIX}*-*"):
        owner = re.fullmatch(rf"{SHARED_PREFIX}(\d+)-[^-]+", folder.name)
        if folder == keep or owner is None or not is_own_folder(folder) or pid_running(int(owner.group(1))):
            continue
        shutil.rmtree(folder, ignore_errors=True)
        removed.append(folder)
    if removed:
        log.info("removed %d shared model folder(s) left by killed servers", len(removed))
    return removed


def is_own_folder(path: Path) -> bool:
    """A real folder (not a link) of this user: nothing else in the shared temp folder is ever removed."""
    try:
        info = path.lstat()
    except OSError:
        return False
    return stat.S_ISDIR(info.st_mode) and info.st_uid == os.getuid()


def pid_running(pid: int) -> bool:
    """Whether `pid` runs, this process aside (an earlier owner of our own pid is gone; a reused pid keeps a folder)."""
    if pid <= 0 or pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, OverflowError):  # OverflowError: beyond any pid (a name anyone could have made)
        return False
    except PermissionError:
        return True  # someone else's process
    return True


@contextlib.contextmanager
def reload_turn(shared_dir: Path) -> Iterator[None]:
    """Hold the lock on `shared_dir` itself: reloads in every worker process take turns, and no file is added."""
    fd = os.open(shared_dir, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # released when the descriptor closes
        yield
    finally:
        os.close(fd)


class ModelStore:
    """Holds this process's classifier; `classifier()` picks up reloads made by other workers."""

    def __init__(self, model_path: str | Path, shared_dir: str | Path | None = None) -> None:
        self.model_path = Path(model_path)
        self.shared_dir = Path(shared_dir) if shared_dir else None
        self._lock = threading.Lock()
        self._failed: Fingerprint | None = None
        if self.shared_dir is None:
            self._loaded = Loaded(load_warm(self.model_path), None, _now())
        else:
            current = self.shared_dir / CURRENT
            stamp = fingerprint(current)
            self._loaded = Loaded(load_warm(current), stamp, _now())

    def classifier(self) -> IntentClassifier:
        """The classifier to answer with, after loading the accepted checkpoint if another worker changed it."""
        if self.shared_dir is not None:
            try:
                stamp = fingerprint(self.shared_dir / CURRENT)
            except OSError:
                stamp = None  # the shared folder is gone (server shutting down): keep answering
            if stamp is not None and stamp != self._loaded.fingerprint and stamp != self._failed:
                self._follow(stamp)
        return self._loaded.classifier

    def _follow(self, stamp: Fingerprint) -> None:
        with self._lock:
            if stamp in (self._loaded.fingerprint, self._failed):
                return  # another thread of this worker got here first
            try:
                classifier = load_warm(self.shared_dir / CURRENT)
            except Exception as exc:  # only accepted files sit there: this is a disk error or tampering
                self._failed = stamp
                log.error("pid %d: keeping the previous model, cannot load the accepted one: %s", os.getpid(), exc)
                return
            try:
                after = fingerprint(self.shared_dir / CURRENT)
            except OSError:
                after = None
            # Replaced while loading: whatever was loaded was accepted, and the next request looks again.
            self._loaded = Loaded(classifier, stamp if after == stamp else None, _now())
            log.info("pid %d: now answering with the model reloaded by another worker", os.getpid())

    def reload(self) -> IntentClassifier:
        """Load MODEL_PATH again and answer with it; on CheckpointError the previous model keeps answering.

        Overlapping reloads take turns, so the last to answer published last, from MODEL_PATH as it was by then.
        """
        turn = reload_turn(self.shared_dir) if self.shared_dir is not None else contextlib.nullcontext()
        with turn, self._lock:
            if self.shared_dir is None:
                classifier, stamp = load_warm(self.model_path), None
            else:
                classifier, stamp = accept_checkpoint(self.model_path, self.shared_dir)
            self._loaded = Loaded(classifier, stamp, _now())
            self._failed = None
        log.info("pid %d: model reloaded from %s", os.getpid(), self.model_path)
        return classifier

    def info(self) -> dict[str, Any]:
        """What the health check reports: the model's own description, without server file paths."""
        self.classifier()
        loaded = self._loaded
        info = {k: v for k, v in loaded.classifier.info().items() if k != "path"}
        return info | {"loaded_at": loaded.loaded_at}


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def current_store() -> ModelStore:
    """The app's model store, as flaskr's `get_db`: every route and the admin endpoint reach the model through it."""
    return current_app.extensions["model_store"]
