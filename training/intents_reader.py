"""Load intents.json the way people really write it: repair what has one clear meaning, report every repair, refuse
the rest with one line naming the file, the place and the problem.

Real files spell keys "Patterns" or "response", give a bare string where a list belongs, define a tag twice, keep
dialogue states that have responses but no patterns, and repeat patterns. Each of those is read in one documented
way and recorded as a `Finding`; `--strict` turns every repair into a refusal for people who want clean data in CI.
"""

from __future__ import annotations

import hashlib
import json
import re
import unicodedata
from collections import Counter
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from training.context import ContextKeyError, ContextRules, intent_context
from training.files import read_user_file
from training.intents import (
    FEW_PATTERNS,
    INTENTS,
    OUT_OF_SCOPE_TAG,
    PATTERN_CHARS,
    PATTERNS,
    TAG_CHARS,
    Finding,
    Intent,
    IntentsError,
    IntentsFile,
    normalize_pattern,
)
from training.text import tokenize, without_invisible

# A JSON "\\ud800" escape without its pair decodes to a lone surrogate, which no UTF-8 output can hold
_SURROGATE = re.compile("[\ud800-\udfff]")

# key, case-folded -> the key it means
CANONICAL_KEYS = {
    "tag": "tag",
    "patterns": "patterns",
    "pattern": "patterns",
    "responses": "responses",
    "response": "responses",
}


def load_intents(path: str | Path) -> IntentsFile:
    """Read `path` (UTF-8, with or without a byte-order mark), repair what has one meaning, raise IntentsError else."""
    path = Path(path)
    raw = read_user_file(path, IntentsError)
    try:
        # "-sig": a leading byte-order mark is skipped; the hook keeps keys that repeat, which a dict would drop
        document = json.loads(raw.decode("utf-8-sig"), object_pairs_hook=_json_object)
    except UnicodeDecodeError as exc:
        raise IntentsError(f"{path}: not UTF-8 text (byte {exc.start})") from None
    except json.JSONDecodeError as exc:
        raise IntentsError(f"{path}: not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}") from None
    except (ValueError, RecursionError) as exc:
        raise IntentsError(f"{path}: not usable JSON: {exc}") from None
    return parse_intents(document, source=str(path), sha256=hashlib.sha256(raw).hexdigest())


def parse_intents(document: Any, source: str = "intents.json", sha256: str = "") -> IntentsFile:
    """Repair and check an already-parsed document (see `load_intents`); the findings say what was repaired."""
    reader = _Reader(source)
    entries = reader.intent_list(document)
    intents = _merge_tags([reader.intent(entry, i) for i, entry in enumerate(entries)], reader)
    reader.key_spelling_finding()
    reader.findings += _merged_findings(intents, reader.place, reader.number)
    reader.findings += _size_findings(intents, source)
    reader.findings += _context_findings(intents, reader.place, reader.number)
    trainable = [intent for intent in intents if intent.trainable]
    if len(trainable) < 2:
        which = f"only one intent ({trainable[0].tag!r}) has" if trainable else "no intent has"
        raise IntentsError(f"{source}: {which} patterns to learn from; a classifier needs at least two such intents")
    findings = sorted(reader.findings, key=lambda f: f.index)  # file order: the file's own first, then by intent
    return IntentsFile(source, tuple(intents), sha256, tuple(findings))


class _Reader:
    """Walks one document, collecting findings; every method returns clean values or raises IntentsError."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.findings: list[Finding] = []
        self.spellings: Counter[str] = Counter()  # "Patterns -> patterns": intents that used it
        self.first_place: dict[str, tuple[int, str]] = {}  # tag -> (number, "intent #3 ('greeting')") first defining it

    def add(self, kind: str, where: str, message: str, tag: str | None = None, index: int = 0) -> None:
        self.findings.append(Finding(kind, where, message, tag, index))

    def place(self, tag: str) -> str:
        return f"{self.source}: {self.first_place[tag][1]}"

    def number(self, tag: str) -> int:
        return self.first_place[tag][0]

    def intent_list(self, document: Any) -> list:
        if isinstance(document, list):
            entries = document
        elif isinstance(document, dict):
            found = [(k, v) for k, v in _pairs(document) if isinstance(k, str) and k.casefold() == "intents"]
            if not found:
                raise IntentsError(
                    f'{self.source}: expected a JSON object with an "intents" list, or a list of intents'
                )
            entries = []
            for key, value in found:
                if key != "intents":
                    self.spellings[f"{key} -> intents"] += 1
                if not isinstance(value, list):
                    raise IntentsError(f'{self.source}: "{key}" must be a list of intents, got {_kind(value)}')
                entries += value
            if len(found) > 1:
                keys = ", ".join(f'"{k}"' for k, _ in found)
                self.add("repeated_key", self.source, f"{len(found)} lists of intents ({keys}); joined in file order")
        else:
            raise IntentsError(f'{self.source}: expected a JSON object with an "intents" list, got {_kind(document)}')
        if not entries:
            raise IntentsError(f"{self.source}: the list of intents is empty")
        return entries

    def intent(self, entry: Any, index: int) -> Intent:
        where = f"intent #{index + 1}"
        if not isinstance(entry, dict):
            raise IntentsError(
                f"{self.source}: {where}: expected an object with tag, patterns and responses, got {_kind(entry)}"
            )
        fields: dict[str, list] = {"tag": [], "patterns": [], "responses": []}
        extra = {}
        for key, value in _pairs(entry):
            canonical = CANONICAL_KEYS.get(key.casefold()) if isinstance(key, str) else None
            if canonical is None:
                extra[key] = value  # a repeated extra key keeps its last value, as JSON readers do
                continue
            if key != canonical:
                self.spellings[f"{key} -> {canonical}"] += 1
            fields[canonical].append((key, value))
        tag = self._tag(fields["tag"], where)
        where = f"{where} ({tag!r})"
        self.first_place.setdefault(tag, (index + 1, where))
        place = f"{self.source}: {where}"
        repeated = [k for k, n in Counter(k for k, _ in _pairs(entry)).items() if n > 1]
        if repeated:
            named = ", ".join(f'"{k}"' for k in repeated)
            self.add(
                "repeated_key",
                place,
                f"key(s) {named} repeated: lists joined, other values the last one kept",
                tag,
                index + 1,
            )
        patterns = self._clean_patterns(self._texts(fields["patterns"], place, tag, index + 1), place, tag, index + 1)
        responses = self._texts(fields["responses"], place, tag, index + 1)
        kept_responses = [r for r in responses if r.strip()]
        if kept_responses and len(kept_responses) < len(responses):
            dropped = len(responses) - len(kept_responses)
            self.add("blank_response", place, f"{dropped} blank response(s) dropped", tag, index + 1)
        try:
            intent_context(extra)
        except ContextKeyError as exc:
            raise IntentsError(f"{place}: {exc}") from None
        return Intent(tag, tuple(patterns), tuple(kept_responses), extra)

    def _tag(self, values: list[tuple[str, Any]], where: str) -> str:
        if not values:
            raise IntentsError(f'{self.source}: {where}: missing "tag"')
        key, tag = values[0]
        if any(value != tag for _, value in values[1:]):
            raise IntentsError(f"{self.source}: {where}: more than one tag ({', '.join(k for k, _ in values)})")
        if not isinstance(tag, str):
            raise IntentsError(f'{self.source}: {where}: "{key}" must be a non-empty string, got {_kind(tag)}')
        if not without_invisible(tag).strip():
            raise IntentsError(f'{self.source}: {where}: "{key}" must be a non-empty string, got a blank one')
        if len(tag) > TAG_CHARS[1]:
            raise IntentsError(
                f'{self.source}: {where}: "{key}" has {len(tag):,} characters; the limit is {TAG_CHARS[1]:,} '
                "(a tag is a name, sent with every answer)"
            )
        if _SURROGATE.search(tag):
            raise IntentsError(
                f'{self.source}: {where}: "{key}" {tag!a} holds half of a UTF-16 pair (a lone \\uD8xx-\\uDFxx '
                "escape), which is not text"
            )
        return tag

    def _texts(self, values: list[tuple[str, Any]], place: str, tag: str, number: int) -> list[str]:
        """A list of NFC texts from every spelling of the key: a bare text is a list of one, numbers become text."""
        texts: list[str] = []
        for key, value in values:
            if isinstance(value, str):
                self.add("text_for_list", place, f'"{key}" is a single text; read as a list of one', tag, number)
                value = [value]
            elif _is_number(value):
                self.add("not_text", place, f'"{key}" is the number {value!r}; read as a list of one text', tag, number)
                value = [str(value)]
            elif not isinstance(value, list):
                if value is not None:
                    self.add("not_text", place, f'"{key}" is {_kind(value)}, not a list of texts; ignored', tag, number)
                continue
            for i, item in enumerate(value):
                if isinstance(item, str):
                    if _SURROGATE.search(item):
                        message = f"{key}[{i}] {item!a} has a lone surrogate escape; now U+FFFD"
                        self.add("broken_text", place, message, tag, number)
                        item = _SURROGATE.sub("\ufffd", item)
                    texts.append(unicodedata.normalize("NFC", item))
                elif _is_number(item):
                    self.add("not_text", place, f"{key}[{i}] is the number {item!r}; read as text", tag, number)
                    texts.append(str(item))
                else:
                    self.add("not_text", place, f"{key}[{i}] is {_kind(item)}, not text; dropped", tag, number)
        return texts

    def _clean_patterns(self, patterns: list[str], place: str, tag: str, number: int) -> list[str]:
        kept: dict[str, str] = {}  # normalized -> first spelling
        repeats = 0
        for i, pattern in enumerate(patterns):
            if len(pattern) > PATTERN_CHARS[1]:
                raise IntentsError(
                    f"{place}: patterns[{i}] has {len(pattern):,} characters; the limit is {PATTERN_CHARS[1]:,} "
                    "(a pattern is a message someone might send; training time grows with its length)"
                )
            if not pattern.strip():
                self.add("blank_pattern", place, f"patterns[{i}] is blank; dropped", tag, number)
            elif not tokenize(pattern):
                self.add("no_words", place, f"patterns[{i}] {pattern!r} has no words; dropped", tag, number)
            elif (key := normalize_pattern(pattern)) in kept:
                repeats += 1
            else:
                kept[key] = pattern
                if len(pattern) > PATTERN_CHARS[0]:
                    message = f"patterns[{i}] has {len(pattern):,} characters, more than {PATTERN_CHARS[0]:,}"
                    self.add("long_pattern", place, message, tag, number)
        if repeats:
            self.add("repeated_pattern", place, f"{repeats} repeated pattern(s) kept once", tag, number)
        return list(kept.values())

    def key_spelling_finding(self) -> None:
        """Once per file: which spellings were read as which keys, and how often."""
        if self.spellings:
            spelled = ", ".join(f"{s} ({n}×)" for s, n in self.spellings.items())
            self.add("key_spelling", self.source, f"keys read as the standard ones: {spelled}")


def _merge_tags(intents: list[Intent], reader: _Reader) -> list[Intent]:
    """One intent per tag, at its first place: patterns and responses joined without duplicates, first extras win."""
    merged: dict[str, Intent] = {}
    for i, intent in enumerate(intents):
        first = merged.get(intent.tag)
        if first is None:
            merged[intent.tag] = intent
            continue
        reader.add(
            "duplicate_tag",
            f"{reader.source}: intent #{i + 1} ({intent.tag!r})",
            f"tag already defined by {reader.first_place[intent.tag][1]}; merged into it",
            intent.tag,
            i + 1,
        )
        seen = {normalize_pattern(p) for p in first.patterns}
        extra_patterns = [p for p in intent.patterns if normalize_pattern(p) not in seen]
        merged[intent.tag] = replace(
            first,
            patterns=first.patterns + tuple(dict.fromkeys(extra_patterns)),
            responses=tuple(dict.fromkeys(first.responses + intent.responses)),
            extra=intent.extra | first.extra,
        )
    return list(merged.values())


def _merged_findings(intents: list[Intent], place: Callable[[str], str], number: Callable[[str], int]) -> list[Finding]:
    """What only the merged intents show: response-only and silent intents, patterns or tags that collide, few
    patterns. Pure: the intents in, the findings out."""
    findings = []

    def add(kind: str, tag: str, message: str) -> None:
        findings.append(Finding(kind, place(tag), message, tag, number(tag)))

    owner: dict[str, str] = {}  # normalized pattern -> tag
    words_owner: dict[tuple[str, ...], tuple[str, str]] = {}  # tokens -> (tag, pattern)
    tag_forms: dict[str, str] = {}  # normalized tag -> first tag
    for intent in intents:
        tag = intent.tag
        if not intent.trainable:
            add("response_only", tag, "no patterns; kept as a response-only intent (not trained)")
        if tag == OUT_OF_SCOPE_TAG and intent.trainable:
            answer = "its own responses" if intent.responses else "the fallback response"
            add("out_of_scope", tag, f"{len(intent.patterns)} out-of-scope example(s): messages like them get {answer}")
        elif not intent.responses:
            add("no_responses", tag, "no responses; it answers with the fallback response")
        similar = tag_forms.setdefault(normalize_pattern(without_invisible(tag)), tag)
        if similar != tag:
            add("similar_tags", tag, f"tag differs from {similar!r} only in case, spacing or Unicode form")
        if len(tag) > TAG_CHARS[0]:
            add("long_tag", tag, f"tag has {len(tag):,} characters, more than {TAG_CHARS[0]:,}")
        for pattern in intent.patterns:
            other = owner.setdefault(normalize_pattern(pattern), tag)
            if other != tag:
                add(
                    "shared_pattern",
                    tag,
                    f"pattern {pattern!r} is also a pattern of {other!r}; kept under both",
                )
                continue
            other_tag, other_pattern = words_owner.setdefault(tuple(tokenize(pattern)), (tag, pattern))
            if other_tag != tag:
                add(
                    "same_words",
                    tag,
                    f"pattern {pattern!r} has the same words as {other_pattern!r} of {other_tag!r}",
                )
        if intent.trainable and len(intent.patterns) < FEW_PATTERNS:
            add(
                "few_patterns",
                tag,
                f"only {len(intent.patterns)} pattern(s); {FEW_PATTERNS} or more make it recognisable",
            )
    return findings


def _size_findings(intents: list[Intent], source: str) -> list[Finding]:
    """Notes on a file larger than any real bot's, and IntentsError where training it would be hopeless."""
    trainable = sum(1 for intent in intents if intent.trainable)
    patterns = sum(len(intent.patterns) for intent in intents)
    findings = []
    for kind, count, what, (note_above, refuse_above), cost in (
        ("many_intents", trainable, "intents with patterns", INTENTS, "time grows with the square of their number"),
        ("many_patterns", patterns, "patterns", PATTERNS, "it would take hours and tens of GB"),
    ):
        if count > refuse_above:
            raise IntentsError(
                f"{source}: {count:,} {what}; the limit is {refuse_above:,} (no real bot has as many; training {cost})"
            )
        if count > note_above:
            findings.append(Finding(kind, source, f"{count:,} {what}, more than {note_above:,}"))
    return findings


def _context_findings(
    intents: list[Intent], place: Callable[[str], str], number: Callable[[str], int]
) -> list[Finding]:
    rules = ContextRules({intent.tag: intent.context for intent in intents})
    findings = []
    for tag, names in rules.unreachable().items():
        findings.append(
            Finding(
                "unreachable_context",
                place(tag),
                f"context_filter {', '.join(map(repr, names))}: no intent sets it, so this intent can never answer",
                tag,
                number(tag),
            )
        )
    for tag, names in rules.unused().items():
        findings.append(
            Finding(
                "unused_context",
                place(tag),
                f"context_set {', '.join(map(repr, names))}: no intent filters on it",
                tag,
                number(tag),
            )
        )
    return findings


def _json_object(pairs: list[tuple[str, Any]]) -> dict:
    """json.loads' object hook: a plain dict, unless a key repeats; then a dict that also keeps every pair."""
    obj = dict(pairs)
    if len(obj) < len(pairs):
        obj = _RepeatedKeys(obj)
        obj.pairs = pairs
    return obj


class _RepeatedKeys(dict):
    """A JSON object whose keys repeat: the dict holds the last value of each, `pairs` every (key, value)."""

    pairs: list[tuple[str, Any]]


def _pairs(obj: dict) -> list[tuple[Any, Any]]:
    return obj.pairs if isinstance(obj, _RepeatedKeys) else list(obj.items())


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _kind(value: Any) -> str:
    names = {dict: "an object", list: "a list", str: "a string", bool: "a boolean", type(None): "null"}
    return names.get(type(value), "a number" if isinstance(value, int | float) else type(value).__name__)
