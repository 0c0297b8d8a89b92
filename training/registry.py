"""A model store: checkpoints published under their SHA-256, the one to serve named by a small manifest, and a history.

    STORE/current.json                   the manifest of the model to serve, replaced by a rename
    STORE/models/<sha256>.pt             every published checkpoint, named by the SHA-256 of its bytes
    STORE/history/000001-<digest12>.json every manifest that became current, publishes and rollbacks, in order
    STORE/.lock                          flock'ed by publish, rollback and prune: writers take turns

A store is any folder (a shared volume, a mount). Publishing checks a checkpoint before anything is written: it must
load and pass the self-test it records (training/train_file.py). A reader (a replica polling `current.json`) never
needs the lock: every file is written to a temporary name and renamed, so it sees the old file or the new one, whole,
and a model's bytes can be checked against the digest in their name (`read_model`).

A rollback steps back along what was current, not along the file list: after publishing A, B and C, two rollbacks
make B and then A current, and publishing D then rolling back returns to what was current before D.
"""

from __future__ import annotations

import contextlib
import fcntl
import getpass
import hashlib
import json
import math
import os
import re
import socket
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from training.checkpoint import (
    CheckpointError,
    load_checkpoint_bytes,
    read_checkpoint_bytes,
    self_test_cases,
    summary,
)
from training.classifier import IntentClassifier
from training.defaults import DEFAULT_KEEP
from training.errors import UserError
from training.files import atomic_write, describe_write_error, read_regular_file

__all__ = [
    "DEFAULT_KEEP",
    "ListedModel",
    "Manifest",
    "PublishResult",
    "RegistryError",
    "current_manifest",
    "default_publisher",
    "list_models",
    "model_path",
    "prune",
    "publish",
    "read_model",
    "rollback",
    "self_test_problem",
]

CURRENT = "current.json"
MODELS = "models"
HISTORY = "history"
LOCK = ".lock"
LOCK_WAIT_SECONDS = 120  # a writer holds the lock for a copy and a few small files: waiting longer means trouble
PREFIX_MIN = 8  # hex characters of a digest that `rollback --to` accepts
SHORT = 12  # hex characters of a digest shown to people and in history file names
PROBE_MESSAGE = "hello"
DIGEST = re.compile(r"[0-9a-f]{64}")
HISTORY_NAME = re.compile(r"(\d+)-[0-9a-f]{12}\.json")


class RegistryError(UserError):
    """A checkpoint that cannot be published, a store that cannot be used, a rollback that cannot be made."""


@dataclass(frozen=True)
class Manifest:
    """Which checkpoint is (or was) current, and where it came from: `current.json` and every history entry."""

    digest: str
    published_at: str
    published_by: str
    source: str
    intents: int
    intents_sha256: str | None
    format_version: int | None
    created_at: str | None
    metrics: dict[str, Any] = field(default_factory=dict)
    rollback_of: str | None = None  # a rollback's entry: the digest that was current before it
    restores: int | None = None  # a rollback's entry: the history entry (its sequence number) it made current again

    @property
    def short(self) -> str:
        return self.digest[:SHORT]

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        return {k: v for k, v in data.items() if v is not None or k not in ("rollback_of", "restores")}

    @classmethod
    def from_dict(cls, data: Any, where: Path) -> Manifest:
        if not isinstance(data, dict):
            raise RegistryError(f"{where}: damaged manifest (not a JSON object)")
        try:
            manifest = cls(**{name: data[name] for name in cls.__dataclass_fields__ if name in data})
        except TypeError as exc:  # a missing field
            raise RegistryError(f"{where}: damaged manifest ({exc})") from None
        if not isinstance(manifest.digest, str) or not DIGEST.fullmatch(manifest.digest):
            raise RegistryError(f"{where}: damaged manifest (no SHA-256 digest)")
        kinds = {"published_at": str, "published_by": str, "source": str, "intents": int, "metrics": dict}
        if wrong := [name for name, kind in kinds.items() if not isinstance(getattr(manifest, name), kind)]:
            raise RegistryError(f"{where}: damaged manifest ('{wrong[0]}' is not a {kinds[wrong[0]].__name__})")
        optional = {"rollback_of": str, "restores": int}  # a rollback's entry
        values = {name: getattr(manifest, name) for name in optional}
        if wrong := [
            name for name, value in values.items() if value is not None and not isinstance(value, optional[name])
        ]:
            raise RegistryError(f"{where}: damaged manifest ('{wrong[0]}' is not a {optional[wrong[0]].__name__})")
        return manifest


@dataclass(frozen=True)
class PublishResult:
    manifest: Manifest  # what is current now
    changed: bool  # False: this checkpoint was already current, and nothing was written
    previous: Manifest | None  # what was current before
    path: Path  # the stored copy
    pruned: list[str]  # digests whose files were removed


@dataclass(frozen=True)
class ListedModel:
    sequence: int | None  # its history entry's number; None for a current manifest missing from the history
    manifest: Manifest
    current: bool
    stored: bool  # its checkpoint is still in the store (not pruned)


@dataclass(frozen=True)
class _Entry:
    sequence: int
    manifest: Manifest


# --- Publishing ---


def publish(checkpoint_path: str | Path, store_dir: str | Path, by: str, keep: int = DEFAULT_KEEP) -> PublishResult:
    """Make the checkpoint at `checkpoint_path` the store's current model, once it loads and passes its self-test.

    The file is read once, and what was checked is what is stored. Then old checkpoints are pruned (`prune`).
    """
    source = Path(checkpoint_path)
    data, checkpoint = _checked(source)
    digest = hashlib.sha256(data).hexdigest()
    store = _Store.create(Path(store_dir))
    with store.locked():
        path = store.put(digest, data)
        previous = store.current()
        if previous is not None and previous.digest == digest:
            return PublishResult(previous, False, previous, path, [])
        manifest = _manifest(digest, checkpoint, os.path.abspath(source), by)
        store.make_current(manifest)
        pruned = store.prune(keep)
    return PublishResult(manifest, True, previous, path, pruned)


def _checked(source: Path) -> tuple[bytes, dict[str, Any]]:
    """The file's bytes and checkpoint, once a model built from them passes its self-test; else one line, why not."""
    try:
        data = read_checkpoint_bytes(source)
        checkpoint = load_checkpoint_bytes(data, source)
        classifier = IntentClassifier(checkpoint, source=str(source))
    except CheckpointError as exc:
        raise RegistryError(f"{exc}; not published") from None
    if problem := self_test_problem(classifier, checkpoint):
        raise RegistryError(f"{source}: fails its self-test ({problem}); not published")
    return data, checkpoint


def self_test_problem(classifier: IntentClassifier, checkpoint: dict[str, Any]) -> str | None:
    """Why a loaded model fails the self-test its checkpoint records, in words; None when it passes.

    Every model must answer one message with finite confidences; a checkpoint made before the self-test existed has
    nothing more to check. Every recorded pattern must get its recorded intent (the model's top intent, fallback or
    not: the threshold is not what is tested).
    """
    answer = classifier.predict(PROBE_MESSAGE)
    if not all(math.isfinite(confidence) for _, confidence in answer.alternatives):
        return f"it answers {PROBE_MESSAGE!r} with confidences that are not finite numbers"
    try:
        cases = self_test_cases(checkpoint)
    except ValueError as exc:
        return f"its self-test record is damaged: {exc}"
    if not cases:
        return None
    if unknown := sorted({tag for _, tag in cases} - set(classifier.tags)):
        return f"its self-test names intents the model does not have: {', '.join(unknown[:3])}"
    probabilities = classifier.probabilities([pattern for pattern, _ in cases])
    if not probabilities.isfinite().all():
        return "it answers its self-test patterns with confidences that are not finite numbers"
    answers = [classifier.tags[i] for i in probabilities.argmax(dim=1).tolist()]
    wrong = [(pattern, tag, got) for (pattern, tag), got in zip(cases, answers) if got != tag]
    if wrong:
        pattern, tag, got = wrong[0]
        return (
            f"{len(wrong)} of its {len(cases)} self-test patterns get another intent, "
            f"e.g. {pattern[:60]!r} gets '{got}' instead of '{tag}'"
        )
    return None


# --- Rolling back ---


def rollback(store_dir: str | Path, to: str | None = None, by: str | None = None) -> Manifest:
    """Make an earlier model current again: the one current before this one, or the one whose digest starts with
    `to` (at least 8 hex characters). The rollback is a new history entry; its file must still be in the store and
    match its digest."""
    store = _Store.existing(Path(store_dir))
    with store.locked():
        current = store.current()
        if current is None:
            raise RegistryError(f"no model is current in {store.root}: nothing to roll back")
        entries = store.history()
        if to is None:
            target = _previous(entries, current)
            if target is None:
                raise RegistryError(f"{store.root}: no earlier model than {current.short} to roll back to")
        else:
            digest = _resolve(store, entries, to)
            if digest == current.digest:
                raise RegistryError(f"{digest[:SHORT]} is already the current model of {store.root}")
            target = next((e for e in reversed(entries) if e.manifest.digest == digest), None)
            target = target or _Entry(0, store.manifest_of_file(digest))
        store.check_stored(target.manifest.digest)
        manifest = replace(
            target.manifest,
            published_at=_now(),
            published_by=by or default_publisher(),
            rollback_of=current.digest,
            restores=target.sequence or None,
        )
        store.make_current(manifest)
    return manifest


def _previous(entries: list[_Entry], current: Manifest) -> _Entry | None:
    """The entry that was current before `current`, skipping what rollbacks undid; None at the beginning."""
    by_sequence = {entry.sequence: i for i, entry in enumerate(entries)}
    at = next((i for i in range(len(entries) - 1, -1, -1) if entries[i].manifest.digest == current.digest), None)
    index = len(entries) - 1 if at is None else _step_back(entries, at, by_sequence)
    while index >= 0 and entries[index].manifest.digest == current.digest:
        index = _step_back(entries, index, by_sequence)
    return entries[index] if index >= 0 else None


def _step_back(entries: list[_Entry], index: int, by_sequence: dict[int, int]) -> int:
    """The index of the entry current before entries[index]: for a rollback's, the one before the entry it restored.
    Always an earlier index (-1: none), whatever a hand-edited history says."""
    while (restored := by_sequence.get(entries[index].manifest.restores, index)) < index:
        index = restored
    return index - 1


def _resolve(store: _Store, entries: list[_Entry], prefix: str) -> str:
    """The one digest, of the history or of a stored file, that starts with `prefix`."""
    wanted = prefix.strip().lower()
    if not re.fullmatch(rf"[0-9a-f]{{{PREFIX_MIN},64}}", wanted):
        raise RegistryError(f"'{prefix}' is not a digest: give at least {PREFIX_MIN} of its hex characters")
    known = {entry.manifest.digest for entry in entries} | set(store.stored_digests())
    matches = sorted(digest for digest in known if digest.startswith(wanted))
    if not matches:
        raise RegistryError(f"no model with digest {wanted} in {store.root} (`chatbot models` lists them)")
    if len(matches) > 1:
        shown = ", ".join(digest[:SHORT] for digest in matches[:5])
        raise RegistryError(f"digest {wanted} is ambiguous in {store.root}: it starts {shown}; give more of it")
    return matches[0]


# --- Pruning ---


def prune(store_dir: str | Path, keep: int = DEFAULT_KEEP) -> list[str]:
    """Remove stored checkpoints other than those of the `keep` most recently published distinct digests, the
    current one and the previous one (the one a rollback would restore); the history keeps every entry."""
    store = _Store.existing(Path(store_dir))
    with store.locked():
        return store.prune(keep)


# --- Reading ---


def current_manifest(store_dir: str | Path) -> Manifest:
    """The manifest of the model to serve. Needs no lock: `current.json` is only ever replaced by a rename."""
    store = _Store.existing(Path(store_dir))
    manifest = store.current()
    if manifest is None:
        raise RegistryError(f"no model has been published to {store.root} yet")
    return manifest


def model_path(store_dir: str | Path, digest: str) -> Path:
    """Where the store keeps the checkpoint with this (full) digest."""
    if not DIGEST.fullmatch(digest):
        raise RegistryError(f"'{digest}' is not a SHA-256 digest (64 hex characters)")
    return Path(store_dir) / MODELS / f"{digest}.pt"


def read_model(store_dir: str | Path, digest: str) -> bytes:
    """The stored checkpoint's bytes, checked against their digest (`load_checkpoint_bytes` makes them a model)."""
    return _Store(Path(store_dir)).check_stored(digest)


def list_models(store_dir: str | Path) -> list[ListedModel]:
    """The history, newest first; the entry that made the current model current is marked."""
    store = _Store.existing(Path(store_dir))
    current, entries = store.current(), store.history()
    if current is None and not entries:
        raise RegistryError(f"no model has been published to {store.root} yet")
    stored = set(store.stored_digests())
    marked = next((e.sequence for e in reversed(entries) if current and e.manifest.digest == current.digest), None)
    listed = [
        ListedModel(e.sequence, e.manifest, e.sequence == marked, e.manifest.digest in stored)
        for e in reversed(entries)
    ]
    if current is not None and marked is None:  # made current by a writer that died before recording it
        listed.insert(0, ListedModel(None, current, True, current.digest in stored))
    return listed


def default_publisher() -> str:
    """`$USER@hostname`: who published, as a person reading the history would want it."""
    try:
        user = os.environ.get("USER") or getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    return f"{user}@{socket.gethostname()}"


# --- The store's files ---


@dataclass(frozen=True)
class _Store:
    root: Path

    @classmethod
    def create(cls, root: Path) -> _Store:
        try:
            for folder in (root, root / MODELS, root / HISTORY):
                folder.mkdir(parents=True, exist_ok=True)
        except FileExistsError:
            raise RegistryError(f"model store {root} is not a folder") from None
        except OSError as exc:
            raise RegistryError(f"cannot create the model store {root}: {describe_write_error(exc)}") from None
        return cls(root)

    @classmethod
    def existing(cls, root: Path) -> _Store:
        if not root.exists():
            raise RegistryError(f"model store {root} does not exist (`chatbot publish` creates it)")
        if not root.is_dir():
            raise RegistryError(f"model store {root} is not a folder")
        return cls(root)

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """Exclusive use of the store among writers, processes and machines alike (flock on `.lock`)."""
        try:
            fd = os.open(self.root / LOCK, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except OSError as exc:
            raise RegistryError(f"cannot lock {self.root / LOCK}: {describe_write_error(exc)}") from None
        try:
            deadline = time.monotonic() + LOCK_WAIT_SECONDS
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() > deadline:
                        raise RegistryError(
                            f"{self.root} stayed locked by another publisher for {LOCK_WAIT_SECONDS}s; try again"
                        ) from None
                    time.sleep(0.05)
            yield
        finally:
            os.close(fd)  # releases the lock

    def current(self) -> Manifest | None:
        return self._read_manifest(self.root / CURRENT)

    def history(self) -> list[_Entry]:
        """Every history entry, oldest first."""
        numbered = []
        with contextlib.suppress(FileNotFoundError, NotADirectoryError):
            for path in (self.root / HISTORY).iterdir():
                if match := HISTORY_NAME.fullmatch(path.name):
                    numbered.append((int(match.group(1)), path))
        return [_Entry(sequence, self._read_manifest(path)) for sequence, path in sorted(numbered)]

    def _read_manifest(self, path: Path) -> Manifest | None:
        try:
            text = read_regular_file(path)
        except FileNotFoundError:
            return None
        except OSError as exc:  # NotAFileError too: a folder or a FIFO where the manifest should be
            raise RegistryError(f"cannot read {path}: {exc.strerror or exc}") from None
        try:
            data = json.loads(text)
        except ValueError:
            raise RegistryError(f"{path}: damaged manifest (not JSON)") from None
        return Manifest.from_dict(data, path)

    def make_current(self, manifest: Manifest) -> None:
        """Replace `current.json`, then add the same manifest to the history (callers hold the lock)."""
        entries = self.history()
        sequence = (entries[-1].sequence if entries else 0) + 1
        text = json.dumps(manifest.to_dict(), indent=2, allow_nan=False).encode() + b"\n"
        self._write(self.root / CURRENT, text)
        self._write(self.root / HISTORY / f"{sequence:06d}-{manifest.short}.json", text)

    def put(self, digest: str, data: bytes) -> Path:
        """Store a checkpoint under its digest, unless an intact copy is there already (a damaged one is replaced)."""
        path = model_path(self.root, digest)
        with contextlib.suppress(OSError):
            if hashlib.sha256(read_regular_file(path)).hexdigest() == digest:
                return path
        self._write(path, data)
        return path

    def check_stored(self, digest: str) -> bytes:
        path = model_path(self.root, digest)
        try:
            data = read_regular_file(path)
        except FileNotFoundError:
            raise RegistryError(
                f"the checkpoint of {digest[:SHORT]} is no longer in the store ({path} was pruned or removed)"
            ) from None
        except OSError as exc:
            raise RegistryError(f"cannot read {path}: {exc.strerror or exc}") from None
        if (found := hashlib.sha256(data).hexdigest()) != digest:
            raise RegistryError(f"{path} is damaged: its SHA-256 is {found[:SHORT]}..., not the one in its name")
        return data

    def manifest_of_file(self, digest: str) -> Manifest:
        """A manifest for a stored checkpoint that the history does not mention (its entry was removed by hand)."""
        path = model_path(self.root, digest)
        try:
            checkpoint = load_checkpoint_bytes(self.check_stored(digest), path)
        except CheckpointError as exc:
            raise RegistryError(str(exc)) from None
        return _manifest(digest, checkpoint, str(path), "")

    def stored_digests(self) -> list[str]:
        return sorted(p.stem for p in (self.root / MODELS).glob("*.pt") if DIGEST.fullmatch(p.stem))

    def prune(self, keep: int) -> list[str]:
        """`prune`, for a caller holding the lock."""
        if keep < 0:
            raise ValueError(f"keep must be 0 or more, not {keep}")
        entries = self.history()
        recent = list(dict.fromkeys(entry.manifest.digest for entry in reversed(entries)))[:keep]
        kept = set(recent)
        if (current := self.current()) is not None:
            kept.add(current.digest)
            if (previous := _previous(entries, current)) is not None:
                kept.add(previous.manifest.digest)
        removed = []
        for digest in self.stored_digests():
            if digest not in kept:
                with contextlib.suppress(FileNotFoundError):
                    model_path(self.root, digest).unlink()
                    removed.append(digest)
        return removed

    def _write(self, path: Path, data: bytes) -> None:
        try:
            atomic_write(path, lambda handle: handle.write(data))
        except OSError as exc:
            raise RegistryError(f"cannot write {path}: {describe_write_error(exc)}") from None


def _manifest(digest: str, checkpoint: dict[str, Any], source: str, by: str) -> Manifest:
    """A manifest naming a checkpoint, published now: how it was made comes from the checkpoint's own summary."""
    made = summary(checkpoint)
    return Manifest(
        digest=digest,
        published_at=_now(),
        published_by=by,
        source=source,
        intents=len(checkpoint["tags"]),
        intents_sha256=made.intents_sha256,
        format_version=made.format_version,
        created_at=made.created_at,
        metrics=_plain(made.metrics),
    )


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _plain(value: Any) -> Any:
    """JSON-ready: a number that is not finite becomes None (JSON has no NaN)."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)
