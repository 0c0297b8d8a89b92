"""Labelled utterances in a CSV file -> an intents.json document that `load_intents` accepts.

Pure functions apart from `read_rows` and `write_intents_file`. Every problem raises `CsvImportError` with one line
that names the file and, where there is one, the line of the CSV file (line 1 is the header; a quoted text that
spans several lines is reported at the line where it starts, which is where an editor shows it).
"""

from __future__ import annotations

import codecs
import csv
import io
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from training.errors import UserError
from training.files import atomic_write, read_user_file
from training.intents import IntentsError, normalize_pattern
from training.intents_reader import parse_intents
from training.text import tokenize

# Column names that usually hold the text or the label: offered as a hint when the asked-for column is missing.
TEXT_COLUMN_HINTS = ("text", "utterance", "message", "sentence", "query", "question", "pattern")
LABEL_COLUMN_HINTS = ("label", "category", "intent", "tag", "class", "target")
PLACEHOLDER_RESPONSE = "TODO: write the answer for the '{tag}' intent in intents.json."
MAX_LISTED = 5  # names listed in one message before "and N more"


class CsvImportError(UserError, ValueError):
    """The CSV file (or the responses file) cannot be turned into intents; the message names the file and line."""


@dataclass(frozen=True)
class Row:
    """One labelled utterance and the CSV line where it starts."""

    line: int
    text: str
    label: str


@dataclass
class ImportResult:
    """The intents document plus what a user should hear about how it was built."""

    document: dict[str, Any]
    rows: int
    patterns: int
    duplicates_dropped: int
    conflicts_dropped: int
    placeholder_tags: list[str]
    warnings: list[str] = field(default_factory=list)

    @property
    def intents(self) -> int:
        return len(self.document["intents"])


def read_rows(path: str | Path, text_column: str, label_column: str) -> list[Row]:
    """Every non-blank row's text and label, as written (a missing field reads as ""); checks only the columns."""
    path = Path(path)
    raw = read_user_file(path, CsvImportError)
    bom = len(codecs.BOM_UTF8) if raw.startswith(codecs.BOM_UTF8) else 0  # spreadsheets often write one
    try:
        content = raw[bom:].decode("utf-8")
    except UnicodeDecodeError as exc:
        at = bom + exc.start
        line = raw[:at].count(b"\n") + 1
        raise CsvImportError(f"{path}: not UTF-8 text (line {line}, byte {at}); save it as UTF-8") from None
    try:
        return _rows(csv.reader(io.StringIO(content, newline="")), path, text_column, label_column)
    except csv.Error as exc:
        raise CsvImportError(f"{path}: not readable as CSV: {exc}") from None


def _rows(reader, path: Path, text_column: str, label_column: str) -> list[Row]:
    header = next(reader, None)
    if not header or not any(name.strip() for name in header):
        raise CsvImportError(f"{path}: empty file; expected a header line naming the columns")
    names = [name.strip() for name in header]
    text_at = _column_index(names, text_column, "--text-column", TEXT_COLUMN_HINTS, path)
    label_at = _column_index(names, label_column, "--label-column", LABEL_COLUMN_HINTS, path)
    rows, start = [], reader.line_num + 1
    for fields in reader:
        if any(f.strip() for f in fields):
            text = fields[text_at] if text_at < len(fields) else ""
            label = fields[label_at].strip() if label_at < len(fields) else ""
            rows.append(Row(start, text, label))
        start = reader.line_num + 1
    return rows


def _column_index(names: list[str], wanted: str, option: str, hints: Sequence[str], path: Path) -> int:
    if wanted in names:
        return names.index(wanted)
    present = ", ".join(repr(n) for n in names)
    message = f"{path}: no column {wanted!r}; the header has {present}"
    suggestion = next((n for n in names if n.casefold() in hints), None)
    if suggestion is not None:
        message += f"; did you mean {option} {suggestion}?"
    raise CsvImportError(message)


def check_rows(rows: Sequence[Row], path: str | Path, require_label: bool = True) -> None:
    """Every row needs a message with at least one word (nothing else can be learned or scored) and, when training
    data is read, a label; problems are reported in file order."""
    for row in rows:
        if not row.text.strip():
            raise CsvImportError(f"{path}: line {row.line}: empty text")
        if not tokenize(row.text):
            raise CsvImportError(f"{path}: line {row.line}: text {row.text!r} has no words")
        if require_label and not row.label:
            raise CsvImportError(f"{path}: line {row.line}: empty label")


def load_responses(path: str | Path) -> dict[str, list[str]]:
    """A `{tag: [response, ...]}` JSON object, checked so that intents.json will accept every list."""
    path = Path(path)
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CsvImportError(f"{path}: file not found") from None
    except UnicodeDecodeError as exc:
        raise CsvImportError(f"{path}: not UTF-8 text (byte {exc.start})") from None
    except json.JSONDecodeError as exc:
        raise CsvImportError(f"{path}: not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}") from None
    except OSError as exc:
        raise CsvImportError(f"{path}: cannot read: {exc.strerror or exc}") from None
    if not isinstance(document, dict):
        raise CsvImportError(f'{path}: expected a JSON object {{"tag": ["response", ...]}}')
    for tag, responses in document.items():
        if (
            not isinstance(responses, list)
            or not responses
            or not all(isinstance(r, str) and r.strip() for r in responses)
        ):
            raise CsvImportError(f"{path}: {tag!r}: expected a non-empty list of non-blank strings")
    return document


def build_intents(
    rows: Sequence[Row],
    source: str | Path,
    responses: Mapping[str, list[str]] | None = None,
    drop_conflicts: bool = False,
) -> ImportResult:
    """One intent per label, in order of first appearance, each text once.

    Repeats under one label (case, spacing and Unicode form aside) are kept once, as `load_intents` would. The same
    text under two labels is an error: it would teach the network two answers, and only a person can say which label
    is right; `drop_conflicts` drops every copy of such a text instead, with a warning.
    """
    if not rows:
        raise CsvImportError(f"{source}: no rows under the header")
    check_rows(rows, source)
    conflicts = _conflicts(rows)
    warnings = []
    if conflicts and not drop_conflicts:
        first = conflicts[0]
        raise CsvImportError(
            f"{source}: {len(conflicts)} text(s) under two labels, first line {first[0].line} {first[0].text!r} "
            f"({first[0].label}) and line {first[1].line} ({first[1].label}); "
            "fix the labels or pass --drop-conflicts"
        )
    dropped_keys = {normalize_pattern(pair[0].text) for pair in conflicts}
    if conflicts:
        warnings.append(f"{source}: dropped {len(dropped_keys)} text(s) that appear under two labels")
    patterns: dict[str, dict[str, str]] = {}  # label -> {normalized text: first spelling}, in order
    conflicts_dropped = 0
    for row in rows:
        texts = patterns.setdefault(row.label, {})
        key = normalize_pattern(row.text)
        if key in dropped_keys:
            conflicts_dropped += 1
        else:
            texts.setdefault(key, row.text)
    emptied = [label for label, texts in patterns.items() if not texts]
    if emptied:
        raise CsvImportError(f"{source}: no rows left for {_names(emptied)} after dropping conflicting texts")
    responses = responses or {}
    unused = [tag for tag in responses if tag not in patterns]
    if unused:
        warnings.append(f"responses for {_names(unused)}, which no row of {source} has, were not used")
    placeholders = [label for label in patterns if label not in responses]
    document = {
        "intents": [
            {
                "tag": label,
                "patterns": list(texts.values()),
                "responses": list(responses.get(label) or [PLACEHOLDER_RESPONSE.format(tag=label)]),
            }
            for label, texts in patterns.items()
        ]
    }
    try:
        checked = parse_intents(document, source=str(source))
    except IntentsError as exc:  # a bug here, not in the user's file: the checks above should rule it out
        raise CsvImportError(f"the intents built from {source} do not validate: {exc}") from None
    n_patterns = sum(len(texts) for texts in patterns.values())
    return ImportResult(
        document=document,
        rows=len(rows),
        patterns=n_patterns,
        duplicates_dropped=len(rows) - conflicts_dropped - n_patterns,
        conflicts_dropped=conflicts_dropped,
        placeholder_tags=placeholders,
        warnings=warnings + [f"{source}: {line}" for line in checked.grouped_findings()],
    )


def _conflicts(rows: Sequence[Row]) -> list[tuple[Row, Row]]:
    """(first row, later row) for each text whose normalized form appears under a second label."""
    owner: dict[str, Row] = {}
    found: dict[str, tuple[Row, Row]] = {}
    for row in rows:
        key = normalize_pattern(row.text)
        first = owner.setdefault(key, row)
        if first.label != row.label and key not in found:
            found[key] = (first, row)
    return list(found.values())


def _names(names: Sequence[str]) -> str:
    shown = ", ".join(repr(n) for n in names[:MAX_LISTED])
    return shown if len(names) <= MAX_LISTED else f"{shown} and {len(names) - MAX_LISTED} more"


def write_intents_file(document: dict[str, Any], path: str | Path) -> Path:
    """Write the document as indented UTF-8 JSON, atomically: a failed write leaves any previous file untouched."""
    data = (json.dumps(document, ensure_ascii=False, indent=2) + "\n").encode("utf-8")
    try:
        return atomic_write(path, lambda handle: handle.write(data))
    except OSError as exc:
        raise CsvImportError(f"cannot write {path}: {exc.strerror or exc}") from None
