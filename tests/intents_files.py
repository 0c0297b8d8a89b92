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
