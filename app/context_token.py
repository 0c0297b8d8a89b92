"""The conversation's active contexts, carried by the client in a signed token: the service itself keeps no state.

Any worker of any replica that shares the secret (CHATBOT_SECRET_KEY) reads the token another one wrote. A token that
was tampered with, signed with another secret, expired, or malformed is never an error: the turn starts with no
context and the answer says why it was reset. The signature is itsdangerous' (installed with Flask): an HMAC over
the payload and its time, no hand-written cryptography.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from itsdangerous import BadData, SignatureExpired, URLSafeTimedSerializer

from training.context import Active

SALT = "chatbot-context"  # keeps these tokens apart from anything else the same secret signs
MAX_TOKEN_CHARS = 4096  # what this service writes stays far under 1 KB; a longer token is not one of ours


@dataclass(frozen=True)
class Received:
    active: Active
    reset: str | None  # why the client's context was not used: "expired", "invalid"; None when it was


class ContextTokens:
    def __init__(self, secret: str, max_age: float) -> None:
        self.serializer = URLSafeTimedSerializer(secret, salt=SALT)
        self.max_age = max_age

    def dumps(self, active: Active, model: str) -> str:
        """A token for the active names (and their remaining turns) of a conversation with `model`."""
        return self.serializer.dumps({"a": active, "m": model})

    def loads(self, token: str | None) -> Received:
        """The active names a client's token holds; an unusable token gives none, and the reason."""
        if not token:
            return Received({}, None)
        if len(token) > MAX_TOKEN_CHARS:
            return Received({}, "invalid")
        try:
            payload = self.serializer.loads(token, max_age=self.max_age)
        except SignatureExpired:
            return Received({}, "expired")
        except BadData:
            return Received({}, "invalid")
        active = _active(payload)
        return Received({}, "invalid") if active is None else Received(active, None)


def _active(payload: Any) -> Active | None:
    """The payload's active names, or None when it is not what `dumps` writes (a token from another version)."""
    if not isinstance(payload, dict) or not isinstance(payload.get("a"), dict):
        return None
    active = payload["a"]
    for name, left in active.items():
        if not isinstance(name, str) or not (left is None or (type(left) is int and left > 0)):
            return None
    return active
