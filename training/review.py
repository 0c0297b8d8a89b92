"""Turn what people asked the bot into patterns: the review queue, and writing decisions back to intents.json.

The queue holds the messages the bot was unsure about (a fallback, an ambiguous answer, an intent its context kept
out, a thumbs-down), merged when they differ only in case, spacing or Unicode form, grouped when they have the same
stems, and ordered so that the most useful come first: thumbs-downs, then fallbacks, then the smallest margin
between the top two intents, then the most frequent. A message that is already a pattern of any intent (including
the out-of-scope one), or has the same stems as one, is never proposed again: deciding is adding the group's most
frequent form to the file, and its other forms are the same words to the model.
"""

from __future__ import annotations

import csv
import json
import shutil
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from training.errors import UserError
from training.files import atomic_write
from training.intents import IntentsError, IntentsFile, normalize_pattern
from training.intents_reader import parse_intents
from training.text import analyzer


class ReviewError(UserError):
    """The intents file cannot be written back, or an export cannot be written."""


@dataclass
class Candidate:
    """One message to decide on, with its repeats and near-duplicates."""

    text: str  # the form seen most often
    count: int = 0
    variants: Counter = field(default_factory=Counter)  # every form seen, with its count
    guesses: list[tuple[str, float | None]] = field(default_factory=list)  # the bot's latest top 3
    feedback: int = 0  # thumbs-downs
    fallbacks: int = 0
    margin: float = 1.0  # the smallest gap between the top two confidences seen
    reasons: Counter = field(default_factory=Counter)
    last_seen: str = ""

    @property
    def best_guess(self) -> tuple[str, float | None]:
        return self.guesses[0] if self.guesses else ("", None)

    def sort_key(self) -> tuple:
        return (-min(self.feedback, 1), -min(self.fallbacks, 1), self.margin, -self.count, self.text)


def known_patterns(intents: IntentsFile) -> set[str]:
    """The normalized patterns of every intent: messages already decided."""
    return {normalize_pattern(p) for intent in intents.intents for p in intent.patterns}


def review_queue(records: Iterable[dict[str, Any]], known: set[str]) -> list[Candidate]:
    """The messages to decide on, best first (see the module docstring)."""
    stems = analyzer("porter")
    known_stems = {stem_key for pattern in known if (stem_key := tuple(sorted(set(stems(pattern)))))}
    groups: dict[tuple[str, ...], Candidate] = {}
    for record in records:
        reasons = record.get("reasons") or []
        text = " ".join(str(record.get("message", "")).split())
        key = normalize_pattern(text)
        group_key = tuple(sorted(set(stems(text)))) or (key,)
        if not reasons or not key or key in known or group_key in known_stems:
            continue
        candidate = groups.setdefault(group_key, Candidate(text))
        candidate.count += record.get("kind") != "feedback"  # a thumbs-down is about an answer already counted
        candidate.variants[text] += 1
        candidate.reasons.update(reasons)
        candidate.last_seen = max(candidate.last_seen, str(record.get("time", "")))
        if record.get("kind") == "feedback":
            candidate.feedback += 1
            if not candidate.guesses:
                candidate.guesses = [(str(record.get("intent", "")), None)]
            continue
        candidate.fallbacks += bool(record.get("fallback"))
        alternatives = _alternatives(record)
        if alternatives:
            candidate.guesses = alternatives
            if len(alternatives) > 1 and alternatives[1][1] is not None:
                candidate.margin = min(candidate.margin, alternatives[0][1] - alternatives[1][1])
    for candidate in groups.values():
        candidate.text = candidate.variants.most_common(1)[0][0]
        candidate.count = max(candidate.count, 1)  # a thumbs-down whose answer was rotated out of the log
    return sorted(groups.values(), key=Candidate.sort_key)


def _alternatives(record: dict[str, Any]) -> list[tuple[str, float | None]]:
    found = []
    for pair in record.get("alternatives") or []:
        if isinstance(pair, list | tuple) and len(pair) == 2 and isinstance(pair[0], str):
            found.append((pair[0], float(pair[1]) if isinstance(pair[1], int | float) else None))
    return found


# --- Writing decisions back ---------------------------------------------------------------------------------------


@dataclass
class Applied:
    added: dict[str, list[str]]  # tag -> patterns added
    new_tags: list[str]  # intents created (they have no responses yet)
    backup: Path | None


def apply_decisions(path: str | Path, decisions: Sequence[tuple[str, str]], now: datetime | None = None) -> Applied:
    """Add each (message, tag) of `decisions` as a pattern of that intent, creating intents that do not exist.

    The file keeps its own layout as far as JSON allows (key order, indentation, non-ASCII text as written); the old
    file is kept beside it as `<name>.<time>.bak`, and the new one is written only if training would read it.
    """
    path = Path(path).resolve()  # a symbolic link keeps pointing at the updated file
    raw, document = _read_for_write_back(path)
    intents = _intent_list(document, path)
    added: dict[str, list[str]] = {}
    new_tags: list[str] = []
    for message, tag in decisions:
        entry = _find_intent(intents, tag)
        if entry is None:
            entry = {"tag": tag, "patterns": [], "responses": []}
            intents.append(entry)
            new_tags.append(tag)
        patterns_key = next((k for k in entry if k.casefold() in ("patterns", "pattern")), "patterns")
        patterns = entry.get(patterns_key, [])
        patterns = [patterns] if isinstance(patterns, str) else list(patterns or [])
        if normalize_pattern(message) not in {normalize_pattern(p) for p in patterns if isinstance(p, str)}:
            patterns.append(message)
            added.setdefault(tag, []).append(message)
        entry[patterns_key] = patterns
    try:
        parse_intents(document, str(path))
    except IntentsError as exc:
        raise ReviewError(f"the reviewed file would not train, so {path} was not changed: {exc}") from None
    if not added:
        return Applied({}, [], None)
    stamp = (now or datetime.now(UTC)).strftime("%Y%m%d-%H%M%S")
    backup = path.with_name(f"{path.name}.{stamp}.bak")
    try:
        shutil.copy2(path, backup)
        atomic_write(path, lambda handle: handle.write(_dumps(document, raw).encode("utf-8")))
    except OSError as exc:
        raise ReviewError(f"cannot write {path}: {exc.strerror or exc}") from None
    return Applied(added, new_tags, backup)


def check_writable_back(path: str | Path) -> None:
    """ReviewError now, before a review, when decisions could not be written into this file later."""
    resolved = Path(path).resolve()
    _intent_list(_read_for_write_back(resolved)[1], resolved)


def _read_for_write_back(path: Path) -> tuple[str, Any]:
    try:
        raw = path.read_text(encoding="utf-8-sig")
        return raw, json.loads(raw, object_pairs_hook=_no_repeated_keys)
    except (OSError, ValueError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
        raise ReviewError(f"{path}: cannot write decisions back: {reason}") from None


def _no_repeated_keys(pairs: list[tuple[str, Any]]) -> dict:
    keys = [k for k, _ in pairs]
    repeated = sorted({k for k in keys if keys.count(k) > 1})
    if repeated:
        raise ValueError(f'the key "{repeated[0]}" is repeated in one object (run `chatbot validate` and fix it first)')
    return dict(pairs)


def _intent_list(document: Any, path: Path) -> list:
    if isinstance(document, list):  # a bare list of intents, which the loader reads too
        return document
    if isinstance(document, dict):
        key = next((k for k in document if k.casefold() == "intents"), None)
        if key is not None and isinstance(document[key], list):
            return document[key]
    raise ReviewError(f'{path}: cannot write decisions back: expected an "intents" list')


def _find_intent(intents: list, tag: str) -> dict | None:
    for entry in intents:
        if isinstance(entry, dict):
            tag_key = next((k for k in entry if k.casefold() == "tag"), None)
            if tag_key is not None and entry[tag_key] == tag:
                return entry
    return None


def _dumps(document: Any, original: str) -> str:
    """JSON in the original's style: its indentation (or none) and its final newline."""
    indent = None
    for line in original.splitlines()[1:]:
        stripped = line.lstrip(" \t")
        if stripped and stripped != line:
            whitespace = line[: len(line) - len(stripped)]
            indent = "\t" if whitespace.startswith("\t") else len(whitespace)
            break
    text = json.dumps(document, ensure_ascii=False, indent=indent)
    return text + ("\n" if original.endswith("\n") else "")


# --- Export and statistics ----------------------------------------------------------------------------------------


def export_csv(queue: Sequence[Candidate], path: str | Path) -> Path:
    """The queue as `text,label,confidence,count` rows, label = the bot's best guess: `chatbot import-csv` reads it."""
    rows = [
        {
            "text": c.text,
            "label": c.best_guess[0],
            "confidence": "" if c.best_guess[1] is None else f"{c.best_guess[1]:.6f}",
            "count": c.count,
        }
        for c in queue
    ]
    try:
        atomic_write(path, lambda handle: handle.write(_csv_text(rows).encode("utf-8")))
    except OSError as exc:
        raise ReviewError(f"cannot write {path}: {exc.strerror or exc}") from None
    return Path(path)


def _csv_text(rows: list[dict[str, Any]]) -> str:
    import io

    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=["text", "label", "confidence", "count"], lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


@dataclass(frozen=True)
class Day:
    day: str
    messages: int
    fallbacks: int
    ambiguous: int
    feedback: int

    @property
    def fallback_rate(self) -> float:
        return self.fallbacks / self.messages if self.messages else 0.0

    @property
    def ambiguous_rate(self) -> float:
        return self.ambiguous / self.messages if self.messages else 0.0


def daily_stats(records: Iterable[dict[str, Any]]) -> list[Day]:
    """Per day (UTC): answers, fallbacks, ambiguous answers and thumbs-downs."""
    days: dict[str, list[int]] = {}
    for record in records:
        day = str(record.get("time", ""))[:10] or "unknown"
        counts = days.setdefault(day, [0, 0, 0, 0])
        if record.get("kind") == "feedback":
            counts[3] += 1
            continue
        counts[0] += 1
        counts[1] += bool(record.get("fallback"))
        counts[2] += "ambiguous" in (record.get("reasons") or [])
    return [Day(day, *counts) for day, counts in sorted(days.items())]


def most_misunderstood(records: Iterable[dict[str, Any]], top: int = 10) -> list[tuple[str, int]]:
    """The messages that fell back or got a thumbs-down most often, merged as the queue merges them."""
    counts: Counter = Counter()
    shown: dict[str, str] = {}
    for record in records:
        if record.get("fallback") or record.get("kind") == "feedback":
            key = normalize_pattern(str(record.get("message", "")))
            counts[key] += 1
            shown.setdefault(key, " ".join(str(record.get("message", "")).split()))
    return [(shown[key], n) for key, n in counts.most_common(top) if key]


def plot_fallback_rate(days: Sequence[Day], path: str | Path) -> Path:
    from training.plots import _pyplot, save_figure

    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(8, 4))
    x = range(len(days))
    ax.plot(x, [100 * d.fallback_rate for d in days], marker="o", label="fallback")
    ax.plot(x, [100 * d.ambiguous_rate for d in days], marker="s", label="ambiguous", alpha=0.7)
    ax.set_xticks(list(x), [d.day for d in days], rotation=45, ha="right")
    ax.set_ylabel("% of answers")
    ax.set_ylim(0, 100)
    ax.set_title("Messages the bot was unsure about, per day")
    ax.grid(alpha=0.3)
    ax.legend()
    return save_figure(fig, path)
