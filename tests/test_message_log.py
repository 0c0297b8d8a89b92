"""The message log: what `chatbot serve --message-log` writes, safely from several processes, masked by default."""

from __future__ import annotations

import json
import multiprocessing
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from app.message_log import MessageLog
from training.classifier import Prediction
from training.messages import answer_record, log_files, mask, read_logs, reasons

ROOT = Path(__file__).resolve().parent.parent


def prediction(**fields) -> Prediction:
    values = {
        "text": "hi",
        "intent": "greeting",
        "confidence": 0.9,
        "fallback": False,
        "response": "Hello",
        "alternatives": [("greeting", 0.9), ("goodbye", 0.05)],
        "reason": None,
    }
    return Prediction(**(values | fields))


def test_digits_and_email_addresses_are_masked():
    assert mask("call 555 0100 or mail bob.smith+x@example.co.uk") == "call ### #### or mail <email>"
    assert mask("my id is ১২৩") == "my id is ###"  # Bengali digits are digits too
    assert mask("no numbers here") == "no numbers here"


def test_reasons_say_why_the_bot_may_have_misunderstood():
    assert reasons(prediction()) == []
    assert reasons(prediction(fallback=True, reason="low_confidence")) == ["low_confidence"]
    assert reasons(prediction(alternatives=[("a", 0.48), ("b", 0.45)])) == ["ambiguous"]
    assert reasons(prediction(fallback=True, reason="no_known_word", alternatives=[("a", 0.0), ("b", 0.0)])) == [
        "no_known_word"
    ]
    assert reasons(prediction(), filtered=["today"]) == ["filtered"]


def test_a_record_holds_the_masked_message_and_never_more_than_it_needs():
    record = answer_record(prediction(text="my card 4111 1111"), [], "abc", "c0ffee")
    assert record["message"] == "my card #### ####"
    assert set(record) == {
        "time",
        "kind",
        "message",
        "intent",
        "confidence",
        "alternatives",
        "fallback",
        "reasons",
        "model",
        "conversation",
    }
    assert answer_record(prediction(text="my card 4111"), [], "abc", None, raw=True)["message"] == "my card 4111"


def _write_many(path: str, writer: int, count: int) -> None:
    log = MessageLog(path, max_bytes=20_000, backups=200)
    for seq in range(count):
        log.write({"message": f"writer {writer} message {seq} " + "x" * (seq % 50), "writer": writer, "seq": seq})
    log.close()


def test_several_processes_appending_at_once_never_tear_or_lose_a_line(tmp_path: Path):
    path = tmp_path / "messages.log"
    context = multiprocessing.get_context("spawn")
    writers = [context.Process(target=_write_many, args=(str(path), w, 400)) for w in range(4)]
    for process in writers:
        process.start()
    for process in writers:
        process.join(120)
        assert process.exitcode == 0
    files = log_files(path)
    assert len(files) > 5  # it rotated many times while four processes wrote
    lines = read_logs([path])
    assert lines.unreadable == 0
    seen = sorted((r["writer"], r["seq"]) for r in lines.records)
    assert seen == [(w, s) for w in range(4) for s in range(400)]  # every line once, none torn
    for writer in range(4):  # each writer's lines in its own order
        order = [r["seq"] for r in lines.records if r["writer"] == writer]
        assert order == sorted(order)


def test_rotation_keeps_the_configured_size_and_number_of_files(tmp_path: Path):
    path = tmp_path / "messages.log"
    log = MessageLog(path, max_bytes=4_000, backups=2, batch_lines=1)  # one write per line: exact rotation
    for seq in range(400):
        log.write({"message": f"message number {seq}", "seq": seq})
    log.close()
    assert [p.name for p in log_files(path)] == ["messages.log.2", "messages.log.1", "messages.log"]
    line = len(json.dumps({"message": "message number 399", "seq": 399})) + 1
    assert all(p.stat().st_size <= 4_000 + line for p in log_files(path))  # a file ends at the line that passes it
    kept = [r["seq"] for r in read_logs([path]).records]
    assert kept == list(range(kept[0], 400))  # the newest lines, in order: only the oldest were dropped


def test_a_torn_or_foreign_line_is_counted_not_fatal(tmp_path: Path):
    path = tmp_path / "messages.log"
    path.write_text('{"message": "ok", "kind": "answer"}\n{"message": "cut of\n[1, 2]\n', encoding="utf-8")
    lines = read_logs([path])
    assert ([r["message"] for r in lines.records], lines.unreadable) == (["ok"], 2)


# --- Through the service -------------------------------------------------------------------------------------------


def wait_for_lines(path: Path, count: int, timeout: float = 10) -> str:
    """The log's text once it has `count` lines: each worker writes its lines every 0.2 s."""
    deadline = time.monotonic() + timeout
    while True:
        text = path.read_text(encoding="utf-8") if path.exists() else ""
        if text.count("\n") >= count or time.monotonic() > deadline:
            return text
        time.sleep(0.05)


def test_lines_are_written_in_batches_and_none_is_lost_at_close(tmp_path: Path):
    path = tmp_path / "messages.log"
    log = MessageLog(path, max_bytes=1_000_000, backups=1)
    log.write({"message": "first"})
    assert not path.exists() or path.read_text(encoding="utf-8") == ""  # waiting for its batch
    assert wait_for_lines(path, 1, timeout=5) == '{"message": "first"}\n'  # written within FLUSH_SECONDS
    for seq in range(100):
        log.write({"message": f"m{seq}"})
    log.close()
    assert [r["message"] for r in read_logs([path]).records] == ["first", *(f"m{seq}" for seq in range(100))]


def post(url: str, path: str, body: dict) -> tuple[int, dict, dict]:
    request = urllib.request.Request(
        url + path, json.dumps(body).encode(), {"Content-Type": "application/json"}, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            return answer.status, json.load(answer), dict(answer.headers)
    except urllib.error.HTTPError as error:
        return error.code, json.load(error), dict(error.headers)


def test_serve_logs_every_chat_answer_and_thumbs_down_masked_over_real_http(
    start_server, rental_model: Path, tmp_path: Path
):
    log_path = tmp_path / "messages.log"
    server = start_server(rental_model, workers=2, threads=2, env={"CHATBOT_MESSAGE_LOG": str(log_path)})
    status, first, headers = post(server.url, "api/chat", {"message": "can we rent a moped? call 555 0100"})
    assert status == 200 and headers["X-Model-Digest"]
    token = first["context"]["token"]
    post(server.url, "api/chat", {"message": "today", "context": token})
    post(server.url, "api/chat", {"message": "today"})  # another conversation: filtered, falls back
    status, answer, _ = post(
        server.url,
        "api/feedback",
        {"message": "today", "intent": "goodbye", "model": headers["X-Model-Digest"], "context": token},
    )
    assert (status, answer) == (202, {"status": "recorded"})
    status, answer, _ = post(server.url, "api/feedback", {"message": "today", "intent": 5})
    assert status == 400 and "'intent'" in answer["error"]
    health = json.load(urllib.request.urlopen(server.url + "api/health", timeout=10))
    assert health["feedback"] is True

    text = wait_for_lines(log_path, 4)
    # Each of the two workers writes its own batches, so lines from different workers need not be in request order.
    records = sorted((json.loads(line) for line in text.splitlines()), key=lambda r: (r["kind"], r["message"]))
    assert [(r["kind"], r["message"]) for r in records] == [
        ("answer", "can we rent a moped? call ### ####"),
        ("answer", "today"),
        ("answer", "today"),
        ("feedback", "today"),
    ]
    rental, feedback = records[0], records[3]
    followed, alone = sorted(records[1:3], key=lambda r: r["fallback"])
    assert not followed["fallback"] and followed["intent"] == "today"
    assert rental["conversation"] == followed["conversation"] == feedback["conversation"] != alone["conversation"]
    assert (
        alone["fallback"] and alone["reasons"][0] in ("filtered", "low_confidence") and "filtered" in alone["reasons"]
    )
    assert feedback["reasons"] == ["feedback"] and feedback["model"] == rental["model"] == headers["X-Model-Digest"]
    assert token not in text and "127.0.0.1" not in text and "Content-Type" not in text


def test_feedback_without_a_message_log_is_a_404(client):
    response = client.post("/api/feedback", json={"message": "hi", "intent": "greeting"})
    assert response.status_code == 404 and "message log" in response.get_json()["error"]
    assert client.get("/api/health").get_json()["feedback"] is False


def test_an_unwritable_message_log_stops_serve_with_one_line(trained_model: Path, tmp_path: Path):
    result = subprocess.run(
        [sys.executable, "-m", "chatbot", "serve", "--model", str(trained_model), "--port", "0", "--message-log",
         str(tmp_path / "missing-folder" / "messages.log")],
        capture_output=True, text=True, timeout=120, cwd=ROOT,
    )  # fmt: skip
    assert result.returncode == 1
    assert result.stderr.strip().startswith("Error: cannot write the message log ")
    assert "No such file or directory" in result.stderr


@pytest.mark.parametrize("variable", ["CHATBOT_MESSAGE_LOG_MAX_BYTES", "CHATBOT_MESSAGE_LOG_BACKUPS"])
def test_message_log_sizes_are_checked(variable):
    from app.settings import SettingsError, settings_from_env

    with pytest.raises(SettingsError, match=variable):
        settings_from_env({variable: "lots"})


def test_feedback_is_rate_limited_and_size_limited_like_the_other_endpoints(model_copy, tmp_path, monkeypatch):
    from app import create_app

    monkeypatch.setenv("CHATBOT_RATE_LIMIT", "3/minute")
    app = create_app({"TESTING": True, "MODEL_PATH": str(model_copy), "MESSAGE_LOG": str(tmp_path / "m.log")})
    client = app.test_client()
    body = {"message": "hello there", "intent": "greeting"}
    too_long = client.post("/api/feedback", json=body | {"message": "x" * 1001})
    assert too_long.status_code == 413 and "'message' is too long" in too_long.json["error"]
    too_big = client.post("/api/feedback", data=b"{" + b" " * 70_000 + b"}", content_type="application/json")
    assert too_big.status_code == 413 and "request body too large" in too_big.json["error"]
    assert client.post("/api/feedback", json=body).status_code == 202
    limited = client.post("/api/feedback", json=body)
    assert limited.status_code == 429 and "too many requests" in limited.json["error"]
