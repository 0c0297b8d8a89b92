"""`chatbot serve` against hostile and broken clients: slow requests, malformed ones, token guessing, overlapping
reloads, a port in use, a killed server's leftovers. Servers run on 127.0.0.1, every socket has a timeout.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from pathlib import Path

import pytest

from app import create_app
from app.framing import RequestBuffer, chunked_end
from app.model_store import ModelStore, create_shared_dir
from app.settings import settings_from_env

TOKEN = "hardening-admin-token-3b8e"
CHAT_HEAD = b"POST /api/chat HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
HELLO = b'{"message": "hello"}'
ROOT = Path(__file__).resolve().parent.parent


def address(server) -> tuple[str, int]:
    parts = urllib.parse.urlsplit(server.url)
    return parts.hostname, parts.port


def exchange(server, data: bytes, trickle: bytes = b"", timeout: float = 10) -> bytes:
    """Send `data`, then `trickle` a byte every 0.2 s (while the server listens), and read until the server closes."""
    with socket.create_connection(address(server), timeout=timeout) as sock:
        sock.sendall(data)
        for byte in trickle:
            time.sleep(0.2)
            try:
                sock.send(bytes([byte]))
            except OSError:  # the server gave up on us: its answer is waiting
                break
        return read_to_end(sock)


def read_to_end(sock: socket.socket) -> bytes:
    """What the server sent until it closed; a reset after its answer (we were still sending) ends it too."""
    answer = b""
    try:
        while chunk := sock.recv(65536):
            answer += chunk
    except ConnectionResetError:
        pass
    return answer


def split_answer(answer: bytes) -> tuple[bytes, dict[str, str], bytes]:
    head, _, body = answer.partition(b"\r\n\r\n")
    status, *fields = head.decode("latin-1").split("\r\n")
    return status.encode(), {k.lower(): v.strip() for k, _, v in (f.partition(":") for f in fields)}, body


def json_answer(answer: bytes) -> tuple[int, dict]:
    status, headers, body = split_answer(answer)
    assert headers["content-type"] == "application/json", answer[:300]
    return int(status.split()[1]), json.loads(body)


def get_health(server, timeout: float) -> int:
    connection = http.client.HTTPConnection(*address(server), timeout=timeout)
    try:
        connection.request("GET", "/api/health")
        response = connection.getresponse()
        response.read()
        return response.status
    finally:
        connection.close()


@pytest.fixture(scope="module")
def server(start_server, trained_model):
    """As shipped: 2 workers x 4 threads, the default read deadline (10 s)."""
    return start_server(trained_model, workers=2, threads=4)


@pytest.fixture(scope="module")
def impatient_server(start_server, trained_model):
    """A read deadline of one second, to watch it fire."""
    return start_server(trained_model, workers=2, threads=4, env={"CHATBOT_READ_TIMEOUT": "1"})


# --- slow clients -------------------------------------------------------------------------------------------------

SLOW_REQUESTS = {  # what a slow client sends at once, then what it trickles
    "trickled head": (b"", CHAT_HEAD + b"Content-Length: 20\r\n\r\n" + HELLO),
    "head without its body": (CHAT_HEAD + b"Content-Length: 20\r\n\r\n", b""),
    "trickled body": (CHAT_HEAD + b"Content-Length: 20\r\n\r\n", HELLO),
    "trickled chunked body": (CHAT_HEAD + b"Transfer-Encoding: chunked\r\n\r\n", b"14\r\n" + HELLO + b"\r\n0\r\n\r\n"),
    "100-continue, no body": (CHAT_HEAD + b"Expect: 100-continue\r\nContent-Length: 20\r\n\r\n", b""),
    "nothing at all": (b"", b""),
    "answered but never closing": (b"GET /api/health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", b""),
}


def test_slow_clients_do_not_keep_other_clients_waiting(server):
    """24 slow connections (three per worker thread) while a normal client asks 20 times, a 3 s timeout each."""
    kinds = (list(SLOW_REQUESTS.values()) * 4)[:24]
    slow = [socket.create_connection(address(server), timeout=5) for _ in kinds]
    stop = threading.Event()

    def trickle() -> None:
        for step in range(100):
            for sock, (_, later) in zip(slow, kinds, strict=True):
                if step < len(later) and not stop.is_set():
                    with contextlib.suppress(OSError):  # cut off by the server
                        sock.send(later[step : step + 1])
            if stop.wait(0.1):
                return

    for sock, (now, _) in zip(slow, kinds, strict=True):
        sock.sendall(now)
    trickler = threading.Thread(target=trickle)
    trickler.start()
    try:
        time.sleep(0.5)  # the server has taken every slow connection by now
        assert [get_health(server, timeout=3) for _ in range(20)] == [200] * 20
    finally:
        stop.set()
        trickler.join()
        for sock in slow:
            sock.close()


@pytest.mark.parametrize(
    ("name", "waiting_for"),
    [
        ("trickled head", "head did not arrive within 1 s of the connection"),
        ("head without its body", "body did not arrive within 1 s of the request head"),
        ("trickled chunked body", "body did not arrive within 1 s of the request head"),
        ("100-continue, no body", "body did not arrive within 1 s of the request head"),
    ],
)
def test_a_request_that_does_not_arrive_in_time_gets_a_json_408(impatient_server, name, waiting_for):
    """The deadline holds for the whole head or body: a byte every 0.2 s does not keep a connection forever."""
    now, later = SLOW_REQUESTS[name]
    started = time.monotonic()
    answer = exchange(impatient_server, now, later * 10)  # still trickling when the deadline passes
    status, error = json_answer(answer.removeprefix(b"HTTP/1.1 100 Continue\r\n\r\n"))
    assert (status, error) == (408, {"error": f"request timeout: the {waiting_for}"})
    assert time.monotonic() - started < 5


def test_a_huge_head_read_by_a_worker_thread_is_cut_at_the_deadline_too(impatient_server):
    """Over 64 KiB of head is left to gunicorn's parser in a thread: it stops waiting at the same deadline."""
    head = b"GET /api/health HTTP/1.1\r\nHost: 127.0.0.1\r\n" + b"".join(
        b"X-%d: %s\r\n" % (i, b"a" * 1000) for i in range(70)
    )
    assert json_answer(exchange(impatient_server, head)) == (
        408,
        {"error": "request timeout: the head did not arrive within 1 s of the connection"},
    )
    assert json_answer(exchange(impatient_server, head + b"\r\n"))[0] == 200


def test_expect_100_continue_gets_one_interim_answer_then_the_answer(server):
    with socket.create_connection(address(server), timeout=10) as sock:
        sock.sendall(CHAT_HEAD + b"Expect: 100-continue\r\nContent-Length: 20\r\n\r\n")
        assert sock.recv(100) == b"HTTP/1.1 100 Continue\r\n\r\n"
        sock.sendall(HELLO)
        answer = read_to_end(sock)
    status, body = json_answer(answer)
    assert (status, body["intent"]) == (200, "greeting")


# --- malformed requests -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("size", [b"zz", b"-1", b"1x"])
def test_a_malformed_chunk_size_is_a_json_400_without_a_traceback(server, size):
    request = CHAT_HEAD + b"Transfer-Encoding: chunked\r\n\r\n" + size + b"\r\n" + HELLO + b"\r\n0\r\n\r\n"
    assert json_answer(exchange(server, request)) == (400, {"error": "malformed chunked body: bad chunk size"})
    time.sleep(0.2)
    log = server.log()
    assert "Traceback" not in log and "InvalidChunkSize" not in log
    assert "POST /api/chat 400" in log


@pytest.mark.parametrize(
    ("request_bytes", "status", "message"),
    [
        (b"GARBAGE\r\n\r\n", 400, "malformed HTTP request"),
        (b"GET /" + b"a" * 5000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 414, "request line too long"),
        (
            b"GET / HTTP/1.1\r\nHost: x\r\n" + b"".join(b"X-%d: y\r\n" % i for i in range(200)) + b"\r\n",
            431,
            "request header fields too large",
        ),
        (
            CHAT_HEAD + b"Transfer-Encoding: br\r\n\r\n",
            501,
            "transfer coding not supported: send Content-Length or chunked",
        ),
        (CHAT_HEAD + b"Content-Length: 1\r\nContent-Length: 2\r\n\r\n{}", 400, "malformed HTTP request"),
    ],
    ids=["request-line", "uri-too-long", "too-many-headers", "transfer-coding", "two-lengths"],
)
def test_protocol_errors_are_json_like_the_api_errors(server, request_bytes, status, message):
    answer = exchange(server, request_bytes)
    assert json_answer(answer) == (status, {"error": message})
    assert split_answer(answer)[1]["x-content-type-options"] == "nosniff"
    time.sleep(0.1)
    assert "Traceback" not in server.log()


# --- the reading rules, piece by piece ----------------------------------------------------------------------------


def test_a_request_buffer_is_ready_when_the_request_is_whole():
    buffer = RequestBuffer(body_limit=100)
    for piece, ready in [
        (CHAT_HEAD, False),
        (b"Content-Length: 20\r\n\r", False),
        (b"\n" + HELLO[:10], False),
        (HELLO[10:], True),
    ]:
        buffer.add(piece)
        assert buffer.ready() is ready
    assert buffer.head_end == len(CHAT_HEAD) + 22 and buffer.framing.length == 20


@pytest.mark.parametrize(
    ("head", "ready"),
    [
        (b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", True),  # no body
        (CHAT_HEAD + b"Content-Length: 101\r\n\r\n", True),  # over the limit: the app answers 413 at once
        (CHAT_HEAD + b"Content-Length: 1\r\nContent-Length: 1\r\n\r\n", True),  # ambiguous: the parser answers 400
        (CHAT_HEAD + b"Transfer-Encoding: gzip, chunked\r\n\r\n", True),  # not plain chunked: the parser answers
        (CHAT_HEAD + b"Transfer-Encoding: chunked\r\n\r\n", False),
        (CHAT_HEAD + b"content-length:  5\r\n\r\n", False),
    ],
)
def test_a_request_buffer_waits_only_for_a_body_it_can_frame(head, ready):
    buffer = RequestBuffer(body_limit=100)
    buffer.add(head)
    assert buffer.ready() is ready


@pytest.mark.parametrize(
    ("body", "done"),
    [
        (b"5\r\nhello\r\n0\r\n\r\n", True),
        (b"5;name=value\r\nhello\r\n0\r\nTrailer: x\r\n\r\n", True),
        (b"5\r\nhello\r\n0\r\nTrailer: x\r\n", False),  # the trailers are not finished
        (b"5\r\nhel", False),
        (b"zz\r\nhello\r\n", True),  # malformed: the parser answers 400 at once
        (b"-1\r\n", True),
    ],
)
def test_chunked_end_finds_the_last_chunk_and_its_trailers(body, done):
    assert chunked_end(body, 0)[0] is done


def test_chunked_end_resumes_at_the_first_incomplete_chunk():
    body = b"5\r\nhello\r\n3\r\nab"
    assert chunked_end(body, 0) == (False, 10)
    assert chunked_end(body + b"c\r\n0\r\n\r\n", 10)[0] is True


def test_read_timeout_setting_must_be_a_positive_number_of_seconds():
    assert settings_from_env({"CHATBOT_READ_TIMEOUT": "2.5"}) == {"READ_TIMEOUT": 2.5}
    for bad in ("0", "-1", "soon", "inf"):
        with pytest.raises(ValueError, match="CHATBOT_READ_TIMEOUT must be a positive number of seconds"):
            settings_from_env({"CHATBOT_READ_TIMEOUT": bad})


# --- reloads, tokens, rate limits ---------------------------------------------------------------------------------


def test_overlapping_reloads_take_turns_and_the_later_one_wins(trained_model, tmp_path, edit_checkpoint, monkeypatch):
    """Two workers share a folder; the first reload is slow. The later one must not answer first and then lose."""
    import app.model_store as model_store

    model = Path(shutil.copy(trained_model, tmp_path / "chatbot.pt"))
    shared = create_shared_dir(model)
    try:
        first_worker, second_worker = ModelStore(model, shared), ModelStore(model, shared)
        load = model_store.load_warm
        slow_load_started, finish_slow_load = threading.Event(), threading.Event()

        def load_warm(path):
            classifier = load(path)
            if classifier.predict("hello").response == "Old answer.":
                slow_load_started.set()
                finish_slow_load.wait(10)
            return classifier

        monkeypatch.setattr(model_store, "load_warm", load_warm)
        answered: list[str] = []
        edit_checkpoint(trained_model, model, "Old answer.")
        slow = threading.Thread(target=lambda: answered.append(first_worker.reload().predict("hi").response))
        slow.start()
        assert slow_load_started.wait(10)
        edit_checkpoint(trained_model, model, "New answer.")
        later = threading.Thread(target=lambda: answered.append(second_worker.reload().predict("hi").response))
        later.start()
        later.join(1.0)  # with turns, it waits for the slow one
        finish_slow_load.set()
        slow.join(10)
        later.join(10)
        assert answered == ["Old answer.", "New answer."]
        assert {
            first_worker.classifier().predict("hi").response,
            second_worker.classifier().predict("hi").response,
        } == {"New answer."}
    finally:
        shutil.rmtree(shared, ignore_errors=True)


@pytest.fixture
def admin_app(model_copy, monkeypatch):
    for name in ("CHATBOT_ADMIN_TOKEN", "CHATBOT_RATE_LIMIT", "CHATBOT_MODEL"):
        monkeypatch.delenv(name, raising=False)
    return create_app({"TESTING": True, "MODEL_PATH": str(model_copy), "ADMIN_TOKEN": TOKEN, "RATE_LIMIT": "2/minute"})


def reload_from(client, address: str, token: str):
    return client.post(
        "/api/model/reload", headers={"Authorization": f"Bearer {token}"}, environ_base={"REMOTE_ADDR": address}
    )


def test_wrong_admin_tokens_are_throttled_per_client(admin_app):
    client = admin_app.test_client()
    assert [reload_from(client, "10.0.0.1", f"guess-{i}").status_code for i in range(5)] == [403] * 5
    refused = reload_from(client, "10.0.0.1", "guess-5")
    wait = refused.headers["Retry-After"]
    assert refused.status_code == 429 and refused.json == {
        "error": f"too many wrong admin tokens: try again in {wait} s"
    }
    assert wait in ("11", "12")  # one more try every 12 s, less what has passed since the fifth
    assert reload_from(client, "10.0.0.1", TOKEN).status_code == 429  # not even compared while throttled
    assert reload_from(client, "10.0.0.2", TOKEN).status_code == 200  # another client is not locked out


def test_health_and_reload_are_not_rate_limited_but_chat_is(admin_app):
    client = admin_app.test_client()
    assert {client.get("/api/health").status_code for _ in range(5)} == {200}
    assert {reload_from(client, "127.0.0.1", TOKEN).status_code for _ in range(3)} == {200}
    chats = [client.post("/api/chat", json={"message": "hi"}).status_code for _ in range(3)]
    assert chats == [200, 200, 429]


# --- starting and stopping ----------------------------------------------------------------------------------------


def test_a_port_in_use_is_one_line_and_exit_code_1(trained_model, tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            [sys.executable, "-m", "chatbot", "serve", "--model", str(trained_model), "--port", str(port)],
            capture_output=True,
            text=True,
            timeout=60,
            cwd=ROOT,
            env={k: v for k, v in os.environ.items() if not k.startswith("CHATBOT_")} | {"TMPDIR": str(tmp_path)},
        )
    assert result.returncode == 1
    assert (result.stdout + result.stderr).strip() == (
        f"Error: cannot listen on 127.0.0.1:{port}: the port is in use (choose another with --port)"
    )
    assert list(tmp_path.iterdir()) == []  # the model copy made before binding is gone too


def test_a_killed_servers_model_copy_is_removed_at_the_next_start(start_server, trained_model, tmp_path):
    env = {"TMPDIR": str(tmp_path)}
    killed = start_server(trained_model, workers=1, threads=1, env=env)
    killed.process.kill()  # SIGKILL: no cleanup runs
    killed.process.wait(10)
    [left] = tmp_path.glob("chatbot-serve-*")
    assert left.name.startswith(f"chatbot-serve-{killed.process.pid}-") and (left / "current.pt").exists()
    second = start_server(trained_model, workers=1, threads=1, env=env)
    [current] = tmp_path.glob("chatbot-serve-*")
    assert current.name.startswith(f"chatbot-serve-{second.process.pid}-")
    assert second.stop() == 0
    assert list(tmp_path.glob("chatbot-serve-*")) == []


def test_only_this_users_folders_of_dead_servers_are_removed(trained_model, tmp_path, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    finished = subprocess.Popen([sys.executable, "-c", "pass"])
    finished.wait()
    stale = tmp_path / f"chatbot-serve-{finished.pid}-abc123de"
    running = tmp_path / "chatbot-serve-1-fgh456ij"  # pid 1 always runs
    older = tmp_path / "chatbot-serve-klm789no"  # no pid in the name: not ours to judge
    huge = tmp_path / f"chatbot-serve-{2**64}-pqr012st"  # beyond any pid: os.kill raised OverflowError
    for folder in (stale, running, older, huge):
        folder.mkdir()
        shutil.copy(trained_model, folder / "current.pt")
    link = tmp_path / f"chatbot-serve-{finished.pid}-linkedxx"
    link.symlink_to(running)
    fresh = create_shared_dir(trained_model)
    try:
        assert sorted(p.name for p in tmp_path.iterdir()) == sorted([running.name, older.name, link.name, fresh.name])
        assert fresh.name.startswith(f"chatbot-serve-{os.getpid()}-")
        assert (running / "current.pt").exists()
    finally:
        shutil.rmtree(fresh)
