"""The message log that `chatbot serve --message-log FILE` keeps: one JSON line per answer, for `chatbot review`.

Several worker processes append to one file: concurrent-log-handler's rotating handler takes a lock file around each
write and around rotation, so lines are never torn or interleaved and rotation by size happens once, not once per
worker. Each worker hands the handler its lines in batches (every FLUSH_SECONDS or BATCH_LINES lines, and when it
exits): one lock and one write for many lines instead of one per answer, which keeps the log's cost to the service
small. A worker killed with SIGKILL loses at most its last FLUSH_SECONDS of lines. The records themselves are built
by `training.messages` (masked unless MESSAGE_LOG_RAW).
"""

from __future__ import annotations

import atexit
import json
import logging
import threading
from pathlib import Path
from typing import Any

from concurrent_log_handler import ConcurrentRotatingFileHandler

from app.settings import SettingsError

FLUSH_SECONDS = 0.2
BATCH_LINES = 64


class MessageLog:
    def __init__(
        self, path: str | Path, max_bytes: int, backups: int, raw: bool = False, batch_lines: int = BATCH_LINES
    ) -> None:
        self.path = Path(path)
        self.raw = raw
        self.batch_lines = batch_lines
        try:
            self.handler = ConcurrentRotatingFileHandler(
                str(self.path), mode="a", maxBytes=max_bytes, backupCount=backups, encoding="utf-8"
            )
        except OSError as exc:
            raise SettingsError(f"cannot write the message log {self.path}: {exc.strerror or exc}") from None
        self.handler.setFormatter(logging.Formatter("%(message)s"))
        self.logger = logging.Logger(f"chatbot.messages.{self.path}", logging.INFO)  # not in the global tree
        self.logger.propagate = False
        self.logger.addHandler(self.handler)
        self._lines: list[str] = []
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._closed = False
        self._flusher = threading.Thread(target=self._flush_periodically, name="message-log", daemon=True)
        self._flusher.start()
        atexit.register(self.close)

    def write(self, record: dict[str, Any]) -> None:
        line = json.dumps(record, ensure_ascii=False)
        with self._lock:
            self._lines.append(line)
            full = len(self._lines) >= self.batch_lines
        if full:
            self.flush()

    def flush(self) -> None:
        """Hand the waiting lines to the handler as one write (one lock, one rotation check)."""
        with self._lock:
            lines, self._lines = self._lines, []
        if lines:
            self.logger.info("\n".join(lines))

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._wake.set()
        if self._flusher is not threading.current_thread():
            self._flusher.join(10)  # a batch it has taken is written before the stream closes
        self.flush()
        self.handler.close()

    def _flush_periodically(self) -> None:
        while not self._wake.wait(FLUSH_SECONDS):
            self.flush()  # a failed write (a full disk) is reported on stderr by logging; serving goes on


def check_writable(path: str | Path) -> None:
    """Before serving: the log's folder exists and the file can be appended to (SettingsError says why not)."""
    path = Path(path)
    try:
        with path.open("a", encoding="utf-8"):
            pass
    except OSError as exc:
        raise SettingsError(f"cannot write the message log {path}: {exc.strerror or exc}") from None
