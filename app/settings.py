"""The app's settings: defaults, and the CHATBOT_* environment variables that override them.

Read once by the application factory, never at import time, and checked there, so that a typo in a variable stops
`chatbot serve` with one line naming the variable instead of surfacing later as a failed request.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

from training.defaults import DEFAULT_MODEL
from training.errors import UserError

DEFAULT_WORKERS = 2  # processes: one per core here
DEFAULT_THREADS = 4  # per worker

DEFAULTS: dict[str, Any] = {
    "MODEL_PATH": DEFAULT_MODEL,
    "MODEL_SHARED_DIR": None,  # set by `chatbot serve`: where worker processes find the accepted checkpoint
    "ADMIN_TOKEN": None,  # no token: model reload is disabled
    "CORS_ORIGINS": [],  # no origin: no cross-origin use
    "RATE_LIMIT": None,  # e.g. "60/minute", per client address and per worker process
    "BENCH_ENDPOINT": False,  # POST /api/echo for the server benchmark
    "MAX_MESSAGE_CHARS": 1_000,
    "MAX_BATCH": 1_000,
    "MAX_CONTENT_LENGTH": 64 * 1024,
    "READ_TIMEOUT": 10.0,  # seconds `chatbot serve` waits for a request's head, then as long again for its body
    "LOG_LEVEL": "INFO",  # DEBUG also logs message texts
    # Signs the conversation-context tokens (CHATBOT_SECRET_KEY); None: made at start (by `chatbot serve` for all its
    # workers), so tokens do not outlive the process. Replicas behind one load balancer need the same one. Not Flask's
    # SECRET_KEY: with that set, Flask opens a cookie session on every request (docs/design.md); the service has none.
    "CONTEXT_SECRET": None,
    "CONTEXT_MAX_AGE": 30 * 60.0,  # seconds a context token stays valid: a stale tab does not steer a new question
    "STORE": None,  # a model store (folder or URL) to serve the current model of, and follow (`chatbot serve --store`)
    "POLL": 30.0,  # seconds between two looks at the store's manifest
    "MESSAGE_LOG": None,  # a path: one JSON line per answer and per feedback, for `chatbot review`
    "MESSAGE_LOG_RAW": False,  # keep digits and e-mail addresses instead of masking them
    "MESSAGE_LOG_MAX_BYTES": 10 * 1024 * 1024,  # rotated past this size ...
    "MESSAGE_LOG_BACKUPS": 5,  # ... keeping this many older files
}


class SettingsError(UserError, ValueError):
    """A CHATBOT_* variable is malformed; the message names it."""


MIN_SECRET_CHARS = 16  # a short secret can be guessed offline from one token
PERIODS = {"second": 1, "minute": 60, "hour": 3600, "day": 86400}
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")


def settings_from_env(environ: Mapping[str, str]) -> dict[str, Any]:
    """The settings the environment sets; raise SettingsError naming the variable when one is malformed."""
    settings: dict[str, Any] = {}
    if environ.get("CHATBOT_MODEL"):
        settings["MODEL_PATH"] = environ["CHATBOT_MODEL"]
    for key, parse in PARSERS.items():  # each from CHATBOT_<key>
        variable = f"CHATBOT_{key}"
        if environ.get(variable):
            settings[key] = parse(environ[variable], variable)
    if environ.get("CHATBOT_CORS_ORIGINS"):
        settings["CORS_ORIGINS"] = [
            o.strip().rstrip("/") for o in environ["CHATBOT_CORS_ORIGINS"].split(",") if o.strip()
        ]
    if environ.get("CHATBOT_RATE_LIMIT"):
        parse_rate_limit(environ["CHATBOT_RATE_LIMIT"], name="CHATBOT_RATE_LIMIT")
        settings["RATE_LIMIT"] = environ["CHATBOT_RATE_LIMIT"]
    if environ.get("CHATBOT_SECRET_KEY"):
        if len(environ["CHATBOT_SECRET_KEY"]) < MIN_SECRET_CHARS:
            raise SettingsError(f"CHATBOT_SECRET_KEY must have at least {MIN_SECRET_CHARS} characters")
        settings["CONTEXT_SECRET"] = environ["CHATBOT_SECRET_KEY"]
    if environ.get("CHATBOT_LOG_LEVEL"):
        level = environ["CHATBOT_LOG_LEVEL"].upper()
        if level not in LOG_LEVELS:
            raise SettingsError(f"CHATBOT_LOG_LEVEL must be one of {', '.join(LOG_LEVELS)}, not {level!r}")
        settings["LOG_LEVEL"] = level
    return settings


def parse_rate_limit(value: str, name: str = "RATE_LIMIT") -> tuple[int, int]:
    """'60/minute' -> (60, 60): requests allowed per period of seconds."""
    match = re.fullmatch(r"\s*(\d+)\s*/\s*(second|minute|hour|day)s?\s*", value)
    if not match or int(match.group(1)) < 1:
        raise SettingsError(
            f"{name} must look like '60/minute' (a count per second, minute, hour or day), not {value!r}"
        )
    return int(match.group(1)), PERIODS[match.group(2)]


def _flag(value: str, name: str) -> bool:
    lowered = value.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off", ""):
        return False
    raise SettingsError(f"{name} must be 1 or 0, not {value!r}")


def _positive_int(value: str, name: str) -> int:
    try:
        number = int(value)
    except ValueError:
        number = 0
    if number < 1:
        raise SettingsError(f"{name} must be a positive whole number, not {value!r}")
    return number


def _positive_seconds(value: str, name: str) -> float:
    try:
        seconds = float(value)
    except ValueError:
        seconds = 0.0
    if not 0 < seconds < math.inf:
        raise SettingsError(f"{name} must be a positive number of seconds, not {value!r}")
    return seconds


def _text(value: str, name: str) -> str:
    return value


# The settings read from CHATBOT_<key> as they are, each with the function that checks it.
PARSERS = {
    "ADMIN_TOKEN": _text,
    "STORE": _text,
    "MESSAGE_LOG": _text,
    "BENCH_ENDPOINT": _flag,
    "MESSAGE_LOG_RAW": _flag,
    "MAX_MESSAGE_CHARS": _positive_int,
    "MAX_BATCH": _positive_int,
    "MAX_CONTENT_LENGTH": _positive_int,
    "MESSAGE_LOG_MAX_BYTES": _positive_int,
    "MESSAGE_LOG_BACKUPS": _positive_int,
    "CONTEXT_MAX_AGE": _positive_seconds,
    "POLL": _positive_seconds,
    "READ_TIMEOUT": _positive_seconds,
}
