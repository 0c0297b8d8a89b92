"""Follow-up questions: which intents may answer in a conversation, and how an answer changes what comes next.

The classic contextual-chatbot tutorial's `context_set` and `context_filter` keys, made precise, with Dialogflow's
lifespans (docs/intents.md, "Follow-up questions"):
- a conversation has a set of active context names, empty at the start;
- an intent with `context_filter` (a name or a list) may answer only while one of those names is active;
- `context_set` on the intent that answered (a name or a list) replaces the active names; "" or [] clears them, and an
  intent without the key leaves them as they are. A fallback leaves everything as it was;
- `context_lifespan` (whole turns): the names that intent sets are active for that many of the user's next turns;
  without it they last until replaced.

Pure functions of plain data: the web service carries the active names in a signed token, the terminal chat in a
variable, and both answer the same.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

KEYS = ("context_set", "context_filter", "context_lifespan")
MAX_NAME_CHARS = 100  # a context name travels in every answer's token
MAX_NAMES = 16  # per key of one intent
MAX_LIFESPAN = 1_000  # turns

Active = dict[str, int | None]  # active name -> user turns it stays active for (None: until replaced)


class ContextKeyError(ValueError):
    """A context key of one intent holds something that is not a name, a list of names or a number of turns."""


@dataclass(frozen=True)
class IntentContext:
    filter: frozenset[str] = frozenset()  # may answer only while one of these is active; empty: always
    sets: tuple[str, ...] | None = None  # replace the active names after answering; None: leave them
    lifespan: int | None = None  # user turns the names it sets stay active; None: until replaced


NO_CONTEXT = IntentContext()


def intent_context(extra: Mapping[str, Any]) -> IntentContext:
    """An intent's context keys (from its extra keys), checked; ContextKeyError says which key is wrong and why."""
    if not any(key in extra for key in KEYS):
        return NO_CONTEXT
    lifespan = extra.get("context_lifespan")
    if lifespan is not None and (
        not isinstance(lifespan, int) or isinstance(lifespan, bool) or not 1 <= lifespan <= MAX_LIFESPAN
    ):
        raise ContextKeyError(f'"context_lifespan" must be a whole number of turns from 1 to {MAX_LIFESPAN:,}')
    sets = _names(extra["context_set"], "context_set") if "context_set" in extra else None
    return IntentContext(frozenset(_names(extra.get("context_filter", []), "context_filter")), sets, lifespan)


def _names(value: Any, key: str) -> tuple[str, ...]:
    """A name or a list of names; blank names mean none (the tutorial's files write `"context_set": ""`)."""
    values = [value] if isinstance(value, str) else value
    if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
        raise ContextKeyError(f'"{key}" must be a context name or a list of names')
    names = tuple(dict.fromkeys(v.strip() for v in values if v.strip()))
    if len(names) > MAX_NAMES:
        raise ContextKeyError(f'"{key}" lists {len(names)} names; the limit is {MAX_NAMES}')
    if any(len(name) > MAX_NAME_CHARS for name in names):
        raise ContextKeyError(f'"{key}" has a name longer than {MAX_NAME_CHARS} characters')
    return names


class ContextRules:
    """The context keys of a model's intents, and the turn-by-turn rules that follow from them."""

    def __init__(self, contexts: Mapping[str, IntentContext]) -> None:
        self.contexts = {tag: c for tag, c in contexts.items() if c != NO_CONTEXT}
        self.filtered_names = frozenset(n for c in self.contexts.values() for n in c.filter)
        self.set_names = frozenset(n for c in self.contexts.values() for n in (c.sets or ()))
        self.names = self.filtered_names | self.set_names

    def __bool__(self) -> bool:
        return bool(self.contexts)

    def eligible(self, tags: Iterable[str], active: Mapping[str, Any]) -> list[bool]:
        """For each tag: may it answer while `active` names are active?"""
        contexts = self.contexts
        return [not (f := contexts.get(tag, NO_CONTEXT).filter) or not f.isdisjoint(active) for tag in tags]

    def after(self, active: Active, answered: str | None) -> Active:
        """The active names after a turn answered by the intent `answered` (None: a fallback, which changes nothing).

        Names active in this turn used one of their turns; those that have none left expire. Then the intent's
        `context_set`, if it has the key, replaces them all.
        """
        if answered is None:
            return dict(active)
        context = self.contexts.get(answered, NO_CONTEXT)
        if context.sets is not None:
            return dict.fromkeys(context.sets, context.lifespan)
        return {name: None if left is None else left - 1 for name, left in active.items() if left is None or left > 1}

    def known(self, active: Mapping[str, Any]) -> tuple[Active, list[str]]:
        """`active` without the names these intents never use (a token from an older model), and those names."""
        kept = {name: left for name, left in active.items() if name in self.names}
        return kept, sorted(set(active) - set(kept))

    def unreachable(self) -> dict[str, list[str]]:
        """tag -> the names it filters on that no intent sets: while that is so, the intent can never answer."""
        found = {}
        for tag, context in self.contexts.items():
            if context.filter and context.filter.isdisjoint(self.set_names):
                found[tag] = sorted(context.filter)
        return found

    def unused(self) -> dict[str, list[str]]:
        """tag -> the names it sets that no intent filters on (harmless: they only clear or keep other names)."""
        found = {}
        for tag, context in self.contexts.items():
            if names := sorted(set(context.sets or ()) - self.filtered_names):
                found[tag] = names
        return found
