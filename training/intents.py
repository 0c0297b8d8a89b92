"""Load and validate intents.json: the bot's knowledge, written by people, so every mistake gets a precise message."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from training.text import tokenize

FEW_PATTERNS = 3  # below this an intent trains, with a warning: it will be recognised poorly


class IntentsError(ValueError):
    """intents.json cannot be used; the message names the file and the place."""


@dataclass(frozen=True)
class Intent:
    tag: str
    patterns: tuple[str, ...]
    responses: tuple[str, ...]
    extra: dict[str, Any] = field(default_factory=dict)  # keys we do not use, kept for the user's own tools


@dataclass(frozen=True)
class IntentsFile:
    source: str
    intents: tuple[Intent, ...]
    sha256: str
    warnings: tuple[str, ...] = ()

    @property
    def tags(self) -> list[str]:
        return [intent.tag for intent in self.intents]

    def examples(self) -> tuple[list[str], list[str]]:
        """(patterns, tags), one pair per training example."""
        texts = [p for intent in self.intents for p in intent.patterns]
        labels = [intent.tag for intent in self.intents for _ in intent.patterns]
        return texts, labels


def normalize_pattern(text: str) -> str:
    """The form in which two patterns count as the same: case-folded, whitespace collapsed.

    Punctuation is kept on purpose: "top up" and "top-up" are different patterns in real data sets.
    """
    return " ".join(text.casefold().split())


def load_intents(path: str | Path) -> IntentsFile:
    """Read and validate `path`; raise IntentsError naming the file and the place of the first problem."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise IntentsError(f"{path}: file not found") from None
    except OSError as exc:
        raise IntentsError(f"{path}: cannot read: {exc.strerror or exc}") from None
    try:
        document = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise IntentsError(f"{path}: not UTF-8 text (byte {exc.start})") from None
    except json.JSONDecodeError as exc:
        raise IntentsError(f"{path}: not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}") from None
    except (ValueError, RecursionError) as exc:
        raise IntentsError(f"{path}: not usable JSON: {exc}") from None
    return parse_intents(document, source=str(path), sha256=hashlib.sha256(raw).hexdigest())


def parse_intents(document: Any, source: str = "intents.json", sha256: str = "") -> IntentsFile:
    """Validate an already-parsed document (see `load_intents`)."""
    if not isinstance(document, dict) or "intents" not in document:
        raise IntentsError(f'{source}: expected a JSON object with an "intents" list at the top')
    entries = document["intents"]
    if not isinstance(entries, list) or not entries:
        raise IntentsError(f'{source}: "intents" must be a non-empty list')
    intents = [_parse_intent(entry, i, source) for i, entry in enumerate(entries)]
    _check_unique(intents, source)
    warnings = tuple(
        f"{source}: intent '{intent.tag}' has only {len(intent.patterns)} pattern(s); "
        f"{FEW_PATTERNS} or more make it recognisable"
        for intent in intents
        if len(intent.patterns) < FEW_PATTERNS
    )
    return IntentsFile(source, tuple(intents), sha256, warnings)


def _parse_intent(entry: Any, index: int, source: str) -> Intent:
    where = f"{source}: intent #{index + 1}"
    if not isinstance(entry, dict):
        raise IntentsError(f"{where}: expected an object with tag, patterns and responses, got {_kind(entry)}")
    tag = entry.get("tag")
    if "tag" not in entry:
        raise IntentsError(f'{where}: missing "tag"')
    if not isinstance(tag, str) or not tag.strip():
        raise IntentsError(f'{where}: "tag" must be a non-empty string, got {_kind(tag)}')
    where = f"{where} ('{tag}')"
    patterns = _string_list(entry, "patterns", where)
    responses = _string_list(entry, "responses", where)
    for i, pattern in enumerate(patterns):
        if not tokenize(pattern):
            raise IntentsError(f"{where}: patterns[{i}] {pattern!r} has no words left after tokenizing")
    unique_patterns = tuple(dict.fromkeys(patterns))
    extra = {k: v for k, v in entry.items() if k not in ("tag", "patterns", "responses")}
    return Intent(tag, unique_patterns, tuple(responses), extra)


def _string_list(entry: dict, key: str, where: str) -> list[str]:
    if key not in entry:
        raise IntentsError(f'{where}: missing "{key}"')
    values = entry[key]
    if not isinstance(values, list):
        raise IntentsError(f'{where}: "{key}" must be a list of strings, got {_kind(values)}')
    if not values:
        raise IntentsError(f'{where}: "{key}" is empty')
    for i, value in enumerate(values):
        if not isinstance(value, str):
            raise IntentsError(f"{where}: {key}[{i}] must be a string, got {_kind(value)}")
        if not value.strip():
            raise IntentsError(f"{where}: {key}[{i}] is blank")
    return values


def _check_unique(intents: list[Intent], source: str) -> None:
    seen_tags: dict[str, int] = {}
    owner: dict[str, str] = {}
    for i, intent in enumerate(intents):
        if intent.tag in seen_tags:
            first = seen_tags[intent.tag]
            raise IntentsError(
                f"{source}: intent #{i + 1}: duplicate tag '{intent.tag}' (first used by intent #{first})"
            )
        seen_tags[intent.tag] = i + 1
        for pattern in intent.patterns:
            key = normalize_pattern(pattern)
            other = owner.setdefault(key, intent.tag)
            if other != intent.tag:
                raise IntentsError(
                    f"{source}: intent #{i + 1} ('{intent.tag}'): pattern {pattern!r} is also a pattern of '{other}'"
                )


def _kind(value: Any) -> str:
    names = {dict: "an object", list: "a list", str: "a string", bool: "a boolean", type(None): "null"}
    return names.get(type(value), "a number" if isinstance(value, int | float) else type(value).__name__)
