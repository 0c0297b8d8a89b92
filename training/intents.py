"""The intents data model: intents, the file they came from, and the findings made while reading it.

`training.intents_reader` builds these from a JSON document; training, validation and the checkpoint read them.
"""

from __future__ import annotations

import json
import unicodedata
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import Any

from training.context import IntentContext, intent_context
from training.errors import UserError

FEW_PATTERNS = 3  # below this an intent trains, with a note: it will be recognised poorly
SHOWN_NAMES = 3  # a grouped line names this many intents, then says how many more
# Sizes no real bot reaches (BANKING77: 77 intents, 10,003 patterns of at most 433 characters, tags of at most 48),
# as (noted above, refused above). Past the second figure training takes hours or tens of GB: its time grows with
# the length of a pattern and with the square of the number of intents.
PATTERN_CHARS = (1_000, 10_000)  # the first: the longest message `chatbot serve` answers by default
PATTERNS = (100_000, 1_000_000)
INTENTS = (1_000, 10_000)  # intents with patterns: the network's classes
TAG_CHARS = (100, 1_000)  # a tag is a name, sent with every answer
# The tag whose patterns are messages the bot should not answer: they train a class that always falls back, with its
# own responses if it has any, else the fallback responses
OUT_OF_SCOPE_TAG = "out_of_scope"

# kind -> how the grouped summary describes it; one line per kind, whatever the number of findings
KINDS = {
    "key_spelling": "keys spelled differently, read as tag / patterns / responses",
    "repeated_key": "keys repeated within one object: lists joined, other values the last one kept",
    "text_for_list": "a single text where a list belongs, read as a list of one",
    "not_text": "list entries that are not text: numbers read as text, anything else dropped",
    "broken_text": "texts with a lone UTF-16 surrogate escape (not text), replaced by U+FFFD",
    "duplicate_tag": "tags defined more than once, merged into one intent each",
    "response_only": "intents without patterns, kept as response-only (not trained, not recognised)",
    "blank_pattern": "blank patterns, dropped",
    "no_words": "patterns with no words (only punctuation, symbols or invisible characters), dropped",
    "repeated_pattern": "patterns repeated within an intent, kept once",
    "shared_pattern": "patterns under two tags, kept under both",
    "no_responses": "intents without responses, answering with the fallback response",
    "blank_response": "blank responses, dropped",
    "similar_tags": "tags that differ only in case, spacing or Unicode form, kept as separate intents",
    "same_words": "patterns under two tags with the same words (the network cannot tell them apart)",
    "few_patterns": f"intents with fewer than {FEW_PATTERNS} patterns (more are recognised better)",
    "out_of_scope": f"the '{OUT_OF_SCOPE_TAG}' intent: its patterns teach what not to answer (it falls back)",
    "unreachable_context": "intents filtered on a context no intent sets: they can never answer",
    "unused_context": "contexts set that no intent filters on (they only clear or replace other contexts)",
    "long_pattern": f"patterns longer than {PATTERN_CHARS[0]:,} characters (they slow training; "
    f"refused above {PATTERN_CHARS[1]:,})",
    "long_tag": f"tags longer than {TAG_CHARS[0]:,} characters (sent with every answer; "
    f"refused above {TAG_CHARS[1]:,})",
    "many_intents": f"more than {INTENTS[0]:,} intents with patterns (training time grows with the square of their "
    f"number; refused above {INTENTS[1]:,})",
    "many_patterns": f"more than {PATTERNS[0]:,} patterns (training time and memory grow with their number; "
    f"refused above {PATTERNS[1]:,})",
}
# not repairs, but problems --strict refuses
WARNINGS = {"unreachable_context"}
# advice: never a refusal, even under --strict
NOTES = {
    "unused_context",
    "similar_tags",
    "same_words",
    "few_patterns",
    "out_of_scope",
    "long_pattern",
    "long_tag",
    "many_intents",
    "many_patterns",
}


class IntentsError(UserError, ValueError):
    """intents.json cannot be used; the message names the file and the place."""


@dataclass(frozen=True)
class Finding:
    """One thing the loader repaired (or noted) in the file, with its place, for `chatbot validate` and summaries."""

    kind: str  # a key of KINDS
    where: str  # "intents.json: intent #3 ('greeting')"
    message: str  # what was found and what was done about it
    tag: str | None = None  # the intent concerned, named in the grouped summary
    index: int = 0  # the intent's number in the file (0: the file as a whole), for listing findings in file order

    @property
    def is_repair(self) -> bool:
        """Whether `--strict` refuses the file for it: every finding but the notes."""
        return self.kind not in NOTES

    @property
    def label(self) -> str:
        return "note" if self.kind in NOTES else "warning" if self.kind in WARNINGS else "repair"

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "where": self.where, "message": self.message, "tag": self.tag}

    def __str__(self) -> str:
        return f"{self.where}: {self.message}"


@dataclass(frozen=True)
class Intent:
    tag: str
    patterns: tuple[str, ...]
    responses: tuple[str, ...]
    extra: dict[str, Any] = field(default_factory=dict)  # keys we do not use, kept for the user's own tools

    @property
    def trainable(self) -> bool:
        """Has patterns, so it is a class of the network; the others answer only when something else routes to them."""
        return bool(self.patterns)

    @property
    def context(self) -> IntentContext:
        """Its follow-up rules (`context_filter`, `context_set`, `context_lifespan`); the reader checked them."""
        return intent_context(self.extra)

    def record(self) -> dict[str, Any]:
        """What the checkpoint keeps of every intent, trainable or not."""
        return {
            "tag": self.tag,
            "trainable": self.trainable,
            "patterns": len(self.patterns),
            "responses": list(self.responses),
            # as JSON text: any JSON value fits, however deep, and the checkpoint stays plain strings and numbers
            "extra_json": json.dumps(self.extra, ensure_ascii=False),
        }


@dataclass(frozen=True)
class IntentsFile:
    source: str
    intents: tuple[Intent, ...]  # every intent, merged by tag, in order of first definition
    sha256: str
    findings: tuple[Finding, ...] = ()

    @property
    def trainable(self) -> list[Intent]:
        return [intent for intent in self.intents if intent.trainable]

    @property
    def response_only(self) -> list[Intent]:
        return [intent for intent in self.intents if not intent.trainable]

    @property
    def tags(self) -> list[str]:
        """The network's classes: the tags of the intents that have patterns."""
        return [intent.tag for intent in self.trainable]

    @property
    def repairs(self) -> list[Finding]:
        return [f for f in self.findings if f.is_repair]

    def examples(self) -> tuple[list[str], list[str]]:
        """(patterns, tags), one pair per training example."""
        texts = [p for intent in self.trainable for p in intent.patterns]
        labels = [intent.tag for intent in self.trainable for _ in intent.patterns]
        return texts, labels

    def with_context_lifespan(self, turns: int) -> IntentsFile:
        """This file with `turns` as the `context_lifespan` of every intent that sets context names and has no
        lifespan of its own (`chatbot train --context-lifespan`): one default for a whole bot, as Dialogflow gives
        every context one. The bytes (and so `sha256`) are the file's; the checkpoint keeps the lifespans given."""
        intents = tuple(
            replace(intent, extra={**intent.extra, "context_lifespan": turns})
            if intent.context.sets and "context_lifespan" not in intent.extra
            else intent
            for intent in self.intents
        )
        return replace(self, intents=intents)

    def finding_counts(self) -> dict[str, int]:
        return dict(Counter(f.kind for f in self.findings))

    @property
    def n_patterns(self) -> int:
        return sum(len(intent.patterns) for intent in self.intents)

    def summary(self) -> str:
        """One line about the data: what `chatbot train` and `chatbot validate` print first."""
        return (
            f"{self.source}: {len(self.intents)} intents ({len(self.trainable)} trainable), {self.n_patterns} patterns"
        )

    def grouped_findings(self) -> list[str]:
        """One line per kind of finding, with its count and the first few intents: never hundreds of lines."""
        return list(group_findings(self.findings).values())


def group_findings(findings: Iterable[Finding]) -> dict[str, str]:
    """kind -> its summary line, in the order of KINDS."""
    by_kind: dict[str, list[Finding]] = {}
    for finding in findings:
        by_kind.setdefault(finding.kind, []).append(finding)
    lines = {}
    for kind in KINDS:
        if kind not in by_kind:
            continue
        group = by_kind[kind]
        tags = list(dict.fromkeys(f.tag for f in group if f.tag is not None))
        named = ", ".join(repr(t) for t in tags[:SHOWN_NAMES])
        if len(tags) > SHOWN_NAMES:
            named += f" and {len(tags) - SHOWN_NAMES} more"
        lines[kind] = f"{len(group)} × {KINDS[kind]}" + (f": {named}" if named else "")
    return lines


def normalize_pattern(text: str) -> str:
    """The form in which two patterns count as the same: NFC, case-folded, whitespace collapsed.

    Punctuation is kept on purpose: "top up" and "top-up" are different patterns in real data sets.
    """
    return " ".join(unicodedata.normalize("NFC", text).casefold().split())


def strict_error(intents: IntentsFile) -> str | None:
    """Why `--strict` refuses this file, in one line, or None when it has nothing to repair."""
    repairs = intents.repairs
    if not repairs:
        return None
    return f"{intents.source}: --strict: {len(repairs)} repair(s) needed, first: {repairs[0]}"
