"""The message log's records: what `chatbot serve --message-log` writes for each answer, and `chatbot review` reads.

One JSON object per line. Privacy by default: digit runs and e-mail addresses are masked before anything is written
(`mask`), conversations are named by a hash, and no address, token or header is ever part of a record.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from training.classifier import Prediction
from training.errors import UserError

AMBIGUOUS_MARGIN = 0.1  # top two confidences closer than this: the bot could as well have said the other
REASONS = ("feedback", "no_known_word", "out_of_scope", "low_confidence", "filtered", "ambiguous")
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_DIGITS = re.compile(r"\d")
EMAIL_MASK = "<email>"
DIGIT_MASK = "#"


def mask(text: str) -> str:
    """`text` with e-mail addresses replaced by <email> and every digit by #: "call 555 0100" -> "call ### ####"."""
    return _DIGITS.sub(DIGIT_MASK, _EMAIL.sub(EMAIL_MASK, text))


def reasons(prediction: Prediction, filtered: Sequence[str] = ()) -> list[str]:
    """Why the bot may have misunderstood this message, most telling first; empty when it answered with a margin."""
    found = [prediction.reason] if prediction.reason else []
    if filtered and "filtered" not in found:
        found.append("filtered")
    values = [confidence for _, confidence in prediction.alternatives]
    if not prediction.fallback and len(values) > 1 and values[0] - values[1] < AMBIGUOUS_MARGIN:
        found.append("ambiguous")
    return found


def answer_record(
    prediction: Prediction,
    filtered: Sequence[str],
    model: str,
    conversation: str | None,
    raw: bool = False,
    now: datetime | None = None,
) -> dict[str, Any]:
    return {
        "time": _time(now),
        "kind": "answer",
        "message": prediction.text if raw else mask(prediction.text),
        "intent": prediction.intent,
        "confidence": round(prediction.confidence, 6),
        "alternatives": [[tag, round(confidence, 6)] for tag, confidence in prediction.alternatives],
        "fallback": prediction.fallback,
        "reasons": reasons(prediction, filtered),
        "model": model,
        "conversation": conversation,
    }


def feedback_record(
    message: str, intent: str, model: str, conversation: str | None, raw: bool = False, now: datetime | None = None
) -> dict[str, Any]:
    """A person said the bot's answer to `message` (intent `intent`) was wrong."""
    return {
        "time": _time(now),
        "kind": "feedback",
        "message": message if raw else mask(message),
        "intent": intent,
        "confidence": None,
        "alternatives": [],
        "fallback": False,
        "reasons": ["feedback"],
        "model": model,
        "conversation": conversation,
    }


def _time(now: datetime | None) -> str:
    return (now or datetime.now(UTC)).isoformat(timespec="seconds")


class MessageLogError(UserError):
    """A message log that is not there."""


@dataclass(frozen=True)
class LogLines:
    records: list[dict[str, Any]]
    unreadable: int  # lines that were not a record (a disk that filled up mid-line, an edited file)


def log_files(path: str | Path) -> list[Path]:
    """`path` and its rotated files (path.1, path.2, ...), oldest first; rotation renames path to path.1."""
    path = Path(path)
    rotated = [p for p in path.parent.glob(f"{path.name}.*") if p.name[len(path.name) + 1 :].isdigit()]
    rotated.sort(key=lambda p: int(p.name[len(path.name) + 1 :]), reverse=True)
    return [*rotated, *([path] if path.exists() else [])]


def read_logs(paths: Iterable[str | Path]) -> LogLines:
    """Every record of the logs at `paths`, each with its rotated files; in the order they were written."""
    records, unreadable = [], 0
    for path in paths:
        files = log_files(path)
        if not files:
            raise MessageLogError(f"{path}: no such message log")
        for file in files:
            for record in _records(file):
                if record is None:
                    unreadable += 1
                else:
                    records.append(record)
    return LogLines(records, unreadable)


def _records(path: Path) -> Iterator[dict[str, Any] | None]:
    with path.open(encoding="utf-8", errors="replace") as handle:
        for line in handle:
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except ValueError:
                yield None
                continue
            ok = isinstance(record, dict) and isinstance(record.get("message"), str)
            yield record if ok else None
