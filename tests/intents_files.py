"""Writing intents files in tests: a document (JSON-encoded), a str (as is, UTF-8) or bytes (as is)."""

import json
from pathlib import Path


def write(tmp_path: Path, content, name: str = "intents.json") -> Path:
    path = tmp_path / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content if isinstance(content, str) else json.dumps(content), encoding="utf-8")
    return path


TINY = {
    "intents": [
        {"tag": "greet", "patterns": ["hi", "hello", "hey there", "good morning"], "responses": ["Hi!"]},
        {"tag": "bye", "patterns": ["bye", "see you later", "goodbye", "farewell"], "responses": ["Bye!"]},
    ]
}


def tiny(tmp_path: Path, name: str = "intents.json") -> Path:
    """The smallest bot that trains: two intents of four patterns each."""
    return write(tmp_path, TINY, name)
