"""Where a replica finds the model to serve: a model store folder (a shared volume) or the same store over HTTP.

Both give the current manifest and a checkpoint's bytes checked against its SHA-256 (`training.registry` writes
the store). Over HTTP the manifest is fetched with `If-None-Match` (the ETag of the last answer, or the current
digest), and a 304 means that nothing changed; any static file server can serve a store folder.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from training.registry import CURRENT, MODELS, Manifest, RegistryError, current_manifest, read_model

TIMEOUT = 30.0  # seconds for one request to an HTTP store
MAX_MODEL_BYTES = 2 * 1024**3  # a download is cut off here: no checkpoint of a real bot comes close


class FolderSource:
    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self.label = str(self.root)

    def current(self) -> Manifest | None:
        """The current manifest (a folder is cheap to read: never None, which means "unchanged")."""
        return current_manifest(self.root)

    def fetch(self, digest: str) -> bytes:
        return read_model(self.root, digest)

    def forget(self) -> None:
        """Nothing to forget: a folder is read in full every time."""


class HttpSource:
    def __init__(self, url: str) -> None:
        self.base = url.rstrip("/") + "/"
        self.label = self.base
        self.etag: str | None = None
        self.digest: str | None = None

    def current(self) -> Manifest | None:
        """The current manifest, or None when the server says it has not changed since the last call."""
        headers = {"Accept": "application/json"}
        if self.etag or self.digest:
            headers["If-None-Match"] = self.etag or f'"{self.digest}"'
        request = urllib.request.Request(self.base + CURRENT, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=TIMEOUT) as response:
                body = response.read(1024 * 1024)
                etag = response.headers.get("ETag")
        except urllib.error.HTTPError as exc:
            if exc.code == 304:
                return None
            raise RegistryError(f"{self.base}{CURRENT}: HTTP {exc.code}") from None
        except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
            raise RegistryError(f"cannot reach {self.base}{CURRENT}: {getattr(exc, 'reason', exc)}") from None
        try:
            manifest = Manifest.from_dict(json.loads(body), self.base + CURRENT)  # type: ignore[arg-type]
        except ValueError as exc:
            raise RegistryError(f"{self.base}{CURRENT}: not a manifest ({exc})") from None
        self.etag, self.digest = etag, manifest.digest
        return manifest

    def fetch(self, digest: str) -> bytes:
        url = f"{self.base}{MODELS}/{digest}.pt"
        try:
            with urllib.request.urlopen(url, timeout=TIMEOUT) as response:
                data = response.read(MAX_MODEL_BYTES + 1)
        except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:  # IncompleteRead: a cut download
            raise RegistryError(f"cannot download {url}: {getattr(exc, 'reason', exc)}") from None
        if len(data) > MAX_MODEL_BYTES:
            raise RegistryError(f"{url}: larger than {MAX_MODEL_BYTES:,} bytes")
        if hashlib.sha256(data).hexdigest() != digest:
            raise RegistryError(f"{url}: its SHA-256 is not the digest it is published under")
        return data

    def forget(self) -> None:
        """Ask for the manifest again in full next time (after a model that could not be used)."""
        self.etag = None


def open_source(spec: str) -> FolderSource | HttpSource:
    """An http(s):// URL or a folder. A URL with a user name or password is refused: it would be printed in logs."""
    if not spec.startswith(("http://", "https://")):
        return FolderSource(spec)
    if urllib.parse.urlsplit(spec).username is not None:
        raise RegistryError("a model store URL must not carry a user name or password (they would be logged)")
    return HttpSource(spec)
