"""The conversation's active contexts, carried by the client in a signed token: the service itself keeps no state.

Any worker of any replica that shares the secret (CHATBOT_SECRET_KEY) reads the token another one wrote. A token that
was tampered with, signed with another secret, expired, or malformed is never an error: the turn starts with no
context and the answer says why it was reset. The signature is itsdangerous' (installed with Flask): an HMAC over
the payload and its time, no hand-written cryptography.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from typing import Any

from itsdangerous import BadData, SignatureExpired, URLSafeTimedSerializer

from training.context import Active

SALT = "chatbot-context"  # keeps these tokens apart from anything else the same secret signs
MAX_TOKEN_CHARS = 4096  # what this service writes stays far under 1 KB; a longer token is not one of ours
PLAIN_PREFIX = "c."  # a conversation with no active context: its id, unsigned (a signed token never starts so)
PLAIN_ID = re.compile(r"[A-Za-z0-9_-]{8,64}")


@dataclass(frozen=True)
class Received:
    active: Active
    reset: str | None  # why the client's context was not used: "expired", "invalid"; None when it was
    conversation: str  # the conversation's random id: the token's, or a new one when there is none


class ContextTokens:
    def __init__(self, secret: str, max_age: float) -> None:
        self.serializer = URLSafeTimedSerializer(secret, salt=SALT)
        self.max_age = max_age

    def dumps(self, active: Active, model: str, conversation: str) -> str:
        """A token for the active names (and their remaining turns) of a conversation with `model`.

        With no active name there is nothing to protect: the token is the conversation's random id in clear
        ("c.<id>"), which costs next to nothing to make or read, where signing costs tens of µs a turn (docs/design.md).
        """
        if not active:
            return PLAIN_PREFIX + conversation
        return self.serializer.dumps({"a": active, "m": model, "c": conversation})

    def loads(self, token: str | None) -> Received:
        """The active names a client's token holds; an unusable token gives none, and the reason."""
        if not token:
            return Received({}, None, new_conversation())
        if len(token) > MAX_TOKEN_CHARS:
            return Received({}, "invalid", new_conversation())
        if token.startswith(PLAIN_PREFIX):
            conversation = token[len(PLAIN_PREFIX) :]
            if PLAIN_ID.fullmatch(conversation):
                return Received({}, None, conversation)
            return Received({}, "invalid", new_conversation())
        try:
            payload = self.serializer.loads(token, max_age=self.max_age)
        except SignatureExpired:
            return Received({}, "expired", new_conversation())
        except BadData:
            return Received({}, "invalid", new_conversation())
        active = _active(payload)
        if active is None:
            return Received({}, "invalid", new_conversation())
        conversation = payload.get("c")
        ok = isinstance(conversation, str) and 0 < len(conversation) <= 64
        return Received(active, None, conversation if ok else new_conversation())


def new_conversation() -> str:
    return secrets.token_urlsafe(12)


def _active(payload: Any) -> Active | None:
    """The payload's active names, or None when it is not what `dumps` writes (a token from another version)."""
    if not isinstance(payload, dict) or not isinstance(payload.get("a"), dict):
        return None
    active = payload["a"]
    for name, left in active.items():
        if not isinstance(name, str) or not (left is None or (type(left) is int and left > 0)):
            return None
    return active


def conversation_hash(conversation_id: str | None) -> str | None:
    """A conversation's name in the message log: a hash of the random id its token carries, never an address."""
    if not conversation_id:
        return None
    return hashlib.sha256(conversation_id.encode()).hexdigest()[:16]
