"""Security of `chatbot serve` through real sockets, beyond what tests/test_app.py asserts through the test client:
the admin token stays out of the server's log, body limits hold for chunked and announced bodies, the server listens
on the loopback address only, never runs in Flask's debug mode, and its optional rate limit answers 429 in JSON.
"""

from __future__ import annotations

import http.client
import json
import socket
import struct
import time
import urllib.parse
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from chatbot.cli import main

TOKEN = "security-admin-token-7f3a9c51"
WRONG_TOKEN = "not-the-admin-token-e5d1"
LIMIT = 64 * 1024
TOO_LARGE = {"error": f"request body too large: the limit is {LIMIT} bytes"}
# Loaded at interpreter start by the Python of one server under test (PYTHONPATH): a page whose view always raises.
FAILING_PAGE = '''"""Test-only: a page whose view raises, to see what a bug looks like from outside."""
from app.routes import pages


def boom():
    raise RuntimeError("boom: a bug in a view")


pages.add_url_rule("/boom", "boom", boom)
'''


def request(
    url: str, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None
) -> tuple[int, http.client.HTTPResponse, bytes]:
    """(status, response, raw body) over a fresh connection; an iterable body is sent chunked, without a length."""
    parts = urllib.parse.urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=15)
    try:
        if isinstance(body, dict | list):
            body = json.dumps(body)
        chunked = body is not None and not isinstance(body, str | bytes)
        headers = {"Content-Type": "application/json", **(headers or {})}
        connection.request(method, path, body=body, headers=headers, encode_chunked=chunked)
        response = connection.getresponse()
        return response.status, response, response.read()
    finally:
        connection.close()


def json_request(url: str, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None):
    status, response, raw = request(url, method, path, body, headers)
    assert response.getheader("Content-Type") == "application/json", raw[:200]
    return status, json.loads(raw)


def chunks(data: bytes, size: int = 8192) -> Iterable[bytes]:
    return (data[i : i + size] for i in range(0, len(data), size))


@pytest.fixture(scope="module")
def server(start_server, trained_model):
    """`chatbot serve` as shipped (2 workers, 4 threads), with model reload enabled."""
    return start_server(trained_model, env={"CHATBOT_ADMIN_TOKEN": TOKEN})


@pytest.fixture(scope="module")
def strict_server(start_server, trained_model, tmp_path_factory):
    """A server started with FLASK_DEBUG=1 (as a developer's shell may export), a rate limit, and a failing page."""
    site = tmp_path_factory.mktemp("site")
    (site / "sitecustomize.py").write_text(FAILING_PAGE)
    env = {"PYTHONPATH": str(site), "FLASK_DEBUG": "1", "CHATBOT_RATE_LIMIT": "5/minute"}
    return start_server(trained_model, workers=1, threads=2, env=env)


# --- the admin token ----------------------------------------------------------------------------------------------


def test_reload_tokens_are_checked_and_never_reach_the_server_log(server):
    status, response, raw = request(server.url, "POST", "/api/model/reload")
    assert (status, json.loads(raw)) == (401, {"error": "admin token required: send Authorization: Bearer <token>"})
    assert response.getheader("WWW-Authenticate") == "Bearer"
    basic = json_request(server.url, "POST", "/api/model/reload", headers={"Authorization": f"Basic {TOKEN}"})
    assert basic[0] == 401
    wrong = json_request(server.url, "POST", "/api/model/reload", headers={"Authorization": f"Bearer {WRONG_TOKEN}"})
    assert wrong == (403, {"error": "wrong admin token"})
    status, answer = json_request(server.url, "POST", "/api/model/reload", headers={"Authorization": f"Bearer {TOKEN}"})
    assert (status, answer["status"]) == (200, "reloaded")
    time.sleep(0.3)  # the workers' log lines reach the file
    log = server.log()
    for line in ("POST /api/model/reload 401", "POST /api/model/reload 403", "POST /api/model/reload 200"):
        assert line in log
    assert "model reload refused: wrong admin token from 127.0.0.1" in log
    assert TOKEN not in log and WRONG_TOKEN not in log
    assert not any(TOKEN in line for line in server.stdout)


# --- body limits --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "data",
    [
        json.dumps({"message": "a" * LIMIT}).encode(),
        json.dumps({"message": "hello"}).encode() + b" " * LIMIT,  # valid JSON if cut at the limit
    ],
    ids=["long-message", "padded-json"],
)
@pytest.mark.parametrize("path", ["/api/chat", "/api/predict"])
def test_a_chunked_body_over_the_limit_gets_413(server, path, data):
    assert json_request(server.url, "POST", path, chunks(data)) == (413, TOO_LARGE)


@pytest.mark.parametrize("size", [20, LIMIT], ids=["small", "exactly-the-limit"])
def test_a_chunked_body_within_the_limit_is_answered(server, size):
    data = json.dumps({"message": "hello"}).encode().ljust(size)
    assert len(data) == size
    status, answer = json_request(server.url, "POST", "/api/chat", chunks(data))
    assert (status, answer["intent"]) == (200, "greeting")


def test_a_body_announced_over_the_limit_is_refused_without_waiting_for_it(server):
    """The client announces 10 MiB and sends none of it: the 413 comes at once, not after a read timeout."""
    parts = urllib.parse.urlsplit(server.url)
    head = (
        "POST /api/chat HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"Content-Length: {10 * 1024 * 1024}\r\n\r\n"
    )
    with socket.create_connection((parts.hostname, parts.port), timeout=5) as sock:
        sock.sendall(head.encode())
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 413 ")
    assert json.loads(body) == TOO_LARGE


def test_a_multi_mebibyte_body_gets_413_or_a_reset_and_the_server_keeps_answering(server):
    """NOTES: the server may close the connection on an 8 MiB body before the client can read the 413."""
    parts = urllib.parse.urlsplit(server.url)
    body = b'{"message": "' + b"a" * (8 * 1024 * 1024) + b'"}'
    head = (
        f"POST /api/chat HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {len(body)}"
    )
    answer = b""
    with socket.create_connection((parts.hostname, parts.port), timeout=10) as sock:
        try:
            sock.sendall(head.encode() + b"\r\n\r\n" + body)
            while chunk := sock.recv(65536):
                answer += chunk
        except (ConnectionResetError, BrokenPipeError):
            pass
    if answer:
        assert answer.startswith(b"HTTP/1.1 413 ") and json.loads(answer.partition(b"\r\n\r\n")[2]) == TOO_LARGE
    assert json_request(server.url, "GET", "/api/health")[1]["status"] == "ok"


def test_message_and_batch_limits_hold_on_serve(server):
    assert json_request(server.url, "POST", "/api/chat", {"message": "a" * 1000})[0] == 200
    assert json_request(server.url, "POST", "/api/chat", {"message": "a" * 1001}) == (
        413,
        {"error": "'message' is too long: 1001 characters, the limit is 1000"},
    )
    assert json_request(server.url, "POST", "/api/predict", {"messages": ["hi"] * 1001}) == (
        413,
        {"error": "too many messages: 1001, the limit is 1000 per request"},
    )


# --- where and how it runs ----------------------------------------------------------------------------------------


def listening_addresses(port: int) -> set[str]:
    """The local addresses of the sockets listening on `port`, from the kernel's tables."""
    addresses = set()
    for table, family in ((Path("/proc/net/tcp"), socket.AF_INET), (Path("/proc/net/tcp6"), socket.AF_INET6)):
        if not table.exists():
            continue
        for row in table.read_text().splitlines()[1:]:
            local, state = row.split()[1], row.split()[3]
            address, _, hex_port = local.partition(":")
            if state != "0A" or int(hex_port, 16) != port:  # 0A: LISTEN
                continue
            raw = bytes.fromhex(address)
            words = b"".join(struct.pack("<I", w) for w in struct.unpack(f">{len(raw) // 4}I", raw))
            addresses.add(socket.inet_ntop(family, words))
    return addresses


def test_serve_listens_on_the_loopback_address_only_by_default(server):
    if not Path("/proc/net/tcp").exists():
        pytest.skip("no /proc/net/tcp on this system")
    assert listening_addresses(urllib.parse.urlsplit(server.url).port) == {"127.0.0.1"}
    assert "[default: 127.0.0.1]" in CliRunner().invoke(main, ["serve", "--help"]).output


def test_the_worker_app_is_never_in_debug_mode(model_copy, monkeypatch):
    from app.server import worker_app
    from app.settings import DEFAULTS

    monkeypatch.setenv("FLASK_DEBUG", "1")
    app = worker_app(DEFAULTS | {"MODEL_PATH": str(model_copy)})
    assert app.debug is False


def test_a_bug_in_a_view_is_a_bare_json_500_even_with_flask_debug_exported(strict_server):
    status, response, raw = request(strict_server.url, "GET", "/boom")
    assert (status, response.getheader("Content-Type")) == (500, "application/json")
    assert raw == b'{"error":"internal server error"}\n'  # compact: debug mode would indent it
    for leak in (b"Traceback", b"RuntimeError", b"boom", b"Werkzeug", b"debugger", b"console"):
        assert leak not in raw
    time.sleep(0.2)
    assert "RuntimeError: boom: a bug in a view" in strict_server.log()  # the traceback goes to the log only


def test_rate_limit_on_serve_answers_429_in_json(strict_server):
    answers = [request(strict_server.url, "POST", "/api/chat", {"message": "hi"}) for _ in range(7)]
    statuses = [status for status, _, _ in answers]
    first_refused = statuses.index(429)
    assert 1 <= first_refused <= 5 and set(statuses[first_refused:]) == {429}  # 5 a minute, no more
    _, response, raw = answers[-1]
    assert json.loads(raw) == {"error": "too many requests: the limit is 5/minute"}
    assert response.getheader("Content-Type") == "application/json"
    assert 1 <= int(response.getheader("Retry-After")) <= 60
    assert request(strict_server.url, "GET", "/")[0] == 200  # the page itself is not limited


def test_no_rate_limit_unless_configured(server):
    assert {request(server.url, "POST", "/api/chat", {"message": "hi"})[0] for _ in range(40)} == {200}
