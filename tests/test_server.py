"""`chatbot serve` end to end: a real gunicorn in a subprocess, spoken to through real sockets, then stopped."""

from __future__ import annotations

import json
import re
import shutil
import signal
import threading
import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from http_calls import call

from chatbot.cli import main

TOKEN = "reload-token-for-tests"


@pytest.fixture(scope="module")
def server(start_server, trained_model):
    return start_server(trained_model, workers=2, threads=4)


def test_serve_prints_the_page_url_on_127_0_0_1(server):
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+/", server.url)
    assert f"Chat page: {server.url}  (Ctrl-C to stop)" in server.stdout


def test_serve_answers_chat_predict_and_health(server, classifier):
    status, _, answer = call(server.url, "POST", "/api/chat", {"message": "hello there"})
    assert status == 200
    assert answer["intent"] == classifier.predict("hello there").intent
    status, _, batch = call(server.url, "POST", "/api/predict", {"messages": ["hi", "thanks", "bye"]})
    assert status == 200 and [p["text"] for p in batch["predictions"]] == ["hi", "thanks", "bye"]
    status, _, health = call(server.url, "GET", "/api/health")
    assert status == 200 and health["status"] == "ok" and health["model"]["intents"] == 20


def test_serve_serves_the_chat_page_with_its_policy(server):
    status, response, page = call(server.url, "GET", "/")
    assert status == 200 and b"/static/chat.js" in page
    assert "script-src 'self'" in response.getheader("Content-Security-Policy")
    assert response.getheader("X-Content-Type-Options") == "nosniff"


def test_serve_answers_errors_as_json(server):
    assert call(server.url, "GET", "/api/nope")[::2] == (404, {"error": "not found: /api/nope"})
    assert call(server.url, "GET", "/api/chat")[::2] == (
        405,
        {"error": "method GET not allowed on /api/chat; use POST"},
    )
    assert call(server.url, "POST", "/api/chat", "{oops")[::2] == (400, {"error": "the body is not valid JSON"})
    assert call(server.url, "POST", "/api/model/reload")[::2] == (
        403,
        {"error": "model reload is disabled: set CHATBOT_ADMIN_TOKEN on the server to enable it"},
    )


def test_serve_answers_413_to_a_body_a_little_over_the_limit(server):
    body = json.dumps({"message": "a" * (64 * 1024)})
    assert call(server.url, "POST", "/api/chat", body)[::2] == (
        413,
        {"error": "request body too large: the limit is 65536 bytes"},
    )


def test_serve_logs_one_line_per_request_without_message_texts(server):
    call(server.url, "POST", "/api/chat", {"message": "a very private question"})
    time.sleep(0.2)
    log = server.log()
    assert re.search(r"POST /api/chat 200 \d+\.\d\dms", log)
    assert "a very private question" not in log


def test_serve_stops_cleanly_on_ctrl_c(start_server, trained_model):
    server = start_server(trained_model, workers=1, threads=2)
    server.process.send_signal(signal.SIGINT)
    assert server.process.wait(15) == 0


def test_serve_refuses_a_bad_checkpoint_with_one_line(tmp_path):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a model")
    result = CliRunner().invoke(main, ["serve", "--model", str(bad), "--port", "0"])
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"Error: {bad}: not a readable chatbot checkpoint")


def test_serve_refuses_a_missing_checkpoint_and_a_bad_setting(tmp_path, trained_model, monkeypatch):
    result = CliRunner().invoke(main, ["serve", "--model", str(tmp_path / "absent.pt")])
    assert (result.exit_code, result.output.strip()) == (
        1,
        f"Error: model not found: {tmp_path / 'absent.pt'} (run `chatbot train` first)",
    )
    monkeypatch.setenv("CHATBOT_RATE_LIMIT", "fast")
    result = CliRunner().invoke(main, ["serve", "--model", str(trained_model)])
    assert result.exit_code == 1 and "CHATBOT_RATE_LIMIT must look like '60/minute'" in result.output


def test_reload_under_load_reaches_every_worker_and_no_request_fails(
    start_server, trained_model, tmp_path, edit_checkpoint
):
    model = Path(shutil.copy(trained_model, tmp_path / "chatbot.pt"))
    server = start_server(model, workers=2, threads=4, env={"CHATBOT_ADMIN_TOKEN": TOKEN})
    auth = {"Authorization": f"Bearer {TOKEN}"}
    stop = threading.Event()
    failures: list[str] = []
    answered: list[int] = []

    def keep_chatting() -> None:
        for _ in range(400):
            if stop.is_set():
                return
            try:
                status, _, answer = call(server.url, "POST", "/api/chat", {"message": "hello"})
                if status != 200 or not answer.get("response"):
                    failures.append(f"{status} {answer}")
                answered.append(status)
            except OSError as exc:
                failures.append(repr(exc))

    clients = [threading.Thread(target=keep_chatting) for _ in range(4)]
    for client in clients:
        client.start()
    try:
        time.sleep(0.3)
        model.write_bytes(b"a corrupt checkpoint")
        status, _, refused = call(server.url, "POST", "/api/model/reload", headers=auth)
        assert status == 422
        assert refused["error"].startswith(f"reload failed, still serving the previous model: {model}: not a readable")
        time.sleep(0.3)
        edit_checkpoint(trained_model, model, "Answer from the new model.", created_at="2030-01-01T00:00:00+00:00")
        status, _, reloaded = call(server.url, "POST", "/api/model/reload", headers=auth)
        assert (status, reloaded["model"]["created_at"]) == (200, "2030-01-01T00:00:00+00:00")
        time.sleep(0.3)
    finally:
        stop.set()
        for client in clients:
            client.join()
    assert failures == []
    assert len(answered) > 20

    after = [call(server.url, "POST", "/api/chat", {"message": "hello"})[2]["response"] for _ in range(30)]
    assert set(after) == {"Answer from the new model."}
    log = server.log()
    reloader = re.findall(r"pid (\d+): model reloaded from", log)
    followers = re.findall(r"pid (\d+): now answering with the model reloaded by another worker", log)
    assert len(reloader) == 1 and len(followers) == 1 and followers != reloader  # both workers use the new model
    assert server.stop() == 0
