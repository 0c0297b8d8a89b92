"""Talking to a real server from tests: a free loopback port, and one request over its own connection."""

import http.client
import json
import socket
import urllib.parse
from typing import Any


def free_port() -> int:
    """A loopback port nobody listens on right now (the caller binds it soon after)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def call(url: str, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None):
    """(status, response, decoded body) over a fresh connection, so that requests spread over the workers.

    A dict or list body is sent as JSON, bytes and str as they are; a JSON answer is decoded, any other is bytes.
    """
    parts = urllib.parse.urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=15)
    try:
        data = body if isinstance(body, bytes | str | None) else json.dumps(body)
        connection.request(method, path, body=data, headers={"Content-Type": "application/json", **(headers or {})})
        response = connection.getresponse()
        payload = response.read()
        kind = response.getheader("Content-Type", "")
        return response.status, response, json.loads(payload) if kind.startswith("application/json") else payload
    finally:
        connection.close()
