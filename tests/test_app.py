"""The Flask app through its test client: every endpoint, every refusal with its exact status and JSON body."""

from __future__ import annotations

import hashlib
import json
import logging
import re
import threading
from pathlib import Path

import pytest

from app import create_app
from app.settings import settings_from_env
from training.checkpoint import FORMAT_VERSION, CheckpointError, load_checkpoint

TOKEN = "s3cret-admin-token"
ANSWER_FIELDS = ["text", "intent", "confidence", "fallback", "response", "alternatives"]
CHAT_FIELDS = [*ANSWER_FIELDS, "filtered_out", "context"]  # a conversation's answer: tests/test_context.py


def chat(client, message, **kwargs):
    return client.post("/api/chat", json={"message": message}, **kwargs)


def reload(client, token: str | None = TOKEN):
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    return client.post("/api/model/reload", headers=headers)


@pytest.fixture
def admin_app(app):
    app.config["ADMIN_TOKEN"] = TOKEN
    return app


# --- chat, predict, health --------------------------------------------------------------------------------------------


def test_chat_answers_with_the_fields_and_values_of_chatbot_predict(client, classifier):
    answer = chat(client, "hello there")
    assert answer.status_code == 200
    assert answer.content_type == "application/json"
    assert list(answer.json) == CHAT_FIELDS
    expected = classifier.predict("hello there").to_dict()
    assert {k: v for k, v in answer.json.items() if k in ANSWER_FIELDS and k != "response"} == {
        k: v for k, v in expected.items() if k != "response"
    }
    assert answer.json["intent"] == "greeting"
    assert answer.json["response"] in classifier.responses["greeting"]


def test_chat_accepts_a_message_of_exactly_the_limit(client):
    assert chat(client, "a" * 1000).status_code == 200


def test_predict_answers_a_batch_in_order(client, classifier):
    messages = ["hello there", "thanks a lot", "goodbye for now"]
    answer = client.post("/api/predict", json={"messages": messages})
    assert answer.status_code == 200
    predictions = answer.json["predictions"]
    assert [p["text"] for p in predictions] == messages
    assert [p["intent"] for p in predictions] == [p.intent for p in classifier.predict_batch(messages)]
    assert all(list(p) == ANSWER_FIELDS for p in predictions)


def test_predict_answers_an_empty_batch_with_no_predictions(client):
    answer = client.post("/api/predict", json={"messages": []})
    assert (answer.status_code, answer.json) == (200, {"predictions": []})


def test_predict_takes_up_to_a_thousand_messages(client):
    assert len(client.post("/api/predict", json={"messages": ["hi"] * 1000}).json["predictions"]) == 1000
    answer = client.post("/api/predict", json={"messages": ["hi"] * 1001})
    assert (answer.status_code, answer.json) == (
        413,
        {"error": "too many messages: 1001, the limit is 1000 per request"},
    )


@pytest.mark.parametrize(
    ("body", "status", "error"),
    [
        ({}, 400, "'messages' is required: a list of strings"),
        ({"messages": "hi"}, 400, "'messages' must be a list of strings"),
        ({"messages": ["hi", 3]}, 400, "'messages[1]' must be a string"),
        ({"messages": ["hi", " "]}, 400, "'messages[1]' must not be empty"),
        ({"messages": ["x" * 1001]}, 413, "'messages[0]' is too long: 1001 characters, the limit is 1000"),
    ],
)
def test_predict_refuses_bad_batches(client, body, status, error):
    answer = client.post("/api/predict", json=body)
    assert (answer.status_code, answer.json) == (status, {"error": error})


def test_health_reports_the_loaded_model(client, trained_model, intents_path):
    answer = client.get("/api/health")
    assert answer.status_code == 200
    assert answer.json["status"] == "ok"
    model = answer.json["model"]
    checkpoint = load_checkpoint(trained_model)
    assert model["intents"] == 20
    assert model["format_version"] == FORMAT_VERSION
    assert model["training_seconds"] == checkpoint["training_seconds"]
    assert model["created_at"] == checkpoint["created_at"]
    assert model["metrics"] == checkpoint["metrics"]
    assert model["intents_sha256"] == hashlib.sha256(intents_path.read_bytes()).hexdigest()
    assert "path" not in model  # no server file paths in a public answer


# --- refusals -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "content_type", "status", "error"),
    [
        ('{"message": "hi"}', "text/plain", 415, "send a JSON body with Content-Type: application/json"),
        (
            "message=hi",
            "application/x-www-form-urlencoded",
            415,
            "send a JSON body with Content-Type: application/json",
        ),
        ('{"message": "hi"', "application/json", 400, "the body is not valid JSON"),
        ("", "application/json", 400, "the body is not valid JSON"),
        (b'{"message": "\xff"}', "application/json", 400, "the body is not valid JSON"),
        ("[" * 5_000 + "]" * 5_000, "application/json", 400, "the body is nested too deeply"),
        ('["hi"]', "application/json", 400, "the body must be a JSON object"),
        ("{}", "application/json", 400, "'message' is required"),
        ('{"message": null}', "application/json", 400, "'message' is required"),
        ('{"message": ""}', "application/json", 400, "'message' must not be empty"),
        ('{"message": " \\n\\t"}', "application/json", 400, "'message' must not be empty"),
        ('{"message": 42}', "application/json", 400, "'message' must be a string"),
        ('{"message": ["hi"]}', "application/json", 400, "'message' must be a string"),
        (
            json.dumps({"message": "a" * 1001}),
            "application/json",
            413,
            "'message' is too long: 1001 characters, the limit is 1000",
        ),
    ],
)
def test_chat_refuses_bad_bodies_with_a_json_error(client, data, content_type, status, error):
    answer = client.post("/api/chat", data=data, content_type=content_type)
    assert (answer.status_code, answer.json) == (status, {"error": error})


def test_a_body_over_max_content_length_gets_413(client):
    body = json.dumps({"message": "a" * (64 * 1024)})
    answer = client.post("/api/chat", data=body, content_type="application/json")
    assert (answer.status_code, answer.json) == (413, {"error": "request body too large: the limit is 65536 bytes"})


def test_message_limit_is_configurable(app, client):
    app.config["MAX_MESSAGE_CHARS"] = 5
    answer = chat(client, "hello!")
    assert (answer.status_code, answer.json) == (413, {"error": "'message' is too long: 6 characters, the limit is 5"})


def test_unknown_api_route_gets_a_json_404(client):
    answer = client.get("/api/nope")
    assert (answer.status_code, answer.json) == (404, {"error": "not found: /api/nope"})


def test_wrong_method_gets_a_json_405_with_allow(client):
    answer = client.get("/api/chat")
    assert (answer.status_code, answer.json) == (405, {"error": "method GET not allowed on /api/chat; use POST"})
    assert "POST" in answer.headers["Allow"]
    answer = client.post("/api/health")
    assert (answer.status_code, answer.json) == (405, {"error": "method POST not allowed on /api/health; use GET"})


def test_an_unexpected_error_is_a_bare_json_500_with_the_traceback_in_the_log(app, client, monkeypatch, caplog):
    def broken() -> None:
        raise RuntimeError("secret internals")

    monkeypatch.setattr(app.extensions["model_store"], "classifier", broken)
    with caplog.at_level(logging.INFO, logger="app"):
        answer = chat(client, "hello")
    assert (answer.status_code, answer.json) == (500, {"error": "internal server error"})
    assert "secret internals" not in answer.get_data(as_text=True)
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1 and errors[0].exc_info and "secret internals" in str(errors[0].exc_info[1])


# --- logging, headers, CORS, rate limit, echo ---------------------------------------------------------------------


def test_one_log_line_per_request_without_the_message(client, caplog):
    with caplog.at_level(logging.INFO, logger="app"):
        chat(client, "my secret question")
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 1
    assert re.fullmatch(r"POST /api/chat 200 \d+\.\d\dms", lines[0])
    assert "my secret question" not in caplog.text


def test_message_texts_are_logged_only_at_debug_level(app, client, caplog):
    app.logger.setLevel(logging.DEBUG)
    with caplog.at_level(logging.DEBUG, logger="app"):
        chat(client, "my secret question")
    assert "my secret question" in caplog.text


@pytest.mark.parametrize("path", ["/", "/api/health", "/api/nope", "/static/chat.js"])
def test_every_response_has_security_headers(client, path):
    with client.get(path) as answer:  # a static file answer holds the file open until closed
        pass
    assert answer.headers["X-Content-Type-Options"] == "nosniff"
    policy = answer.headers["Content-Security-Policy"]
    assert "default-src 'self'" in policy and "script-src 'self';" in policy and "style-src 'self';" in policy
    assert "unsafe-inline" not in policy


def test_the_chat_page_loads_its_script_and_style_from_files_only(client):
    page = client.get("/")
    assert page.status_code == 200 and page.content_type.startswith("text/html")
    html = page.get_data(as_text=True)
    scripts = re.findall(r"<script\b[^>]*>(.*?)</script>", html, flags=re.S)
    assert scripts == [""]  # one script, from a file: no inline code
    assert 'src="/static/chat.js"' in html and 'href="/static/chat.css"' in html
    assert "style=" not in html and not re.search(r"\son[a-z]+\s*=", html)  # no inline style or handler
    assert 'maxlength="1000"' in html
    for asset in ("/static/chat.js", "/static/chat.css", "/static/favicon.svg"):
        with client.get(asset) as answer:
            assert answer.status_code == 200


def test_the_page_script_never_uses_inner_html():
    script = (Path(__file__).parent.parent / "app" / "static" / "chat.js").read_text()
    assert "innerHTML" not in script.replace("never innerHTML", "") and "insertAdjacentHTML" not in script
    assert "textContent" in script


def test_cross_origin_use_is_off_by_default(client):
    answer = chat(client, "hi", headers={"Origin": "https://elsewhere.example"})
    assert "Access-Control-Allow-Origin" not in answer.headers


def test_cross_origin_use_from_configured_origins(app, client):
    app.config["CORS_ORIGINS"] = ["https://shop.example"]
    allowed = chat(client, "hi", headers={"Origin": "https://shop.example"})
    assert allowed.headers["Access-Control-Allow-Origin"] == "https://shop.example"
    assert allowed.headers["Access-Control-Expose-Headers"] == "X-Model-Digest"  # their script may read it
    assert allowed.headers["X-Model-Digest"]
    assert "Origin" in allowed.headers["Vary"]
    other = chat(client, "hi", headers={"Origin": "https://evil.example"})
    assert "Access-Control-Allow-Origin" not in other.headers
    preflight = client.options(
        "/api/chat",
        headers={
            "Origin": "https://shop.example",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type",
        },
    )
    assert preflight.status_code == 200
    assert preflight.headers["Access-Control-Allow-Origin"] == "https://shop.example"
    assert "POST" in preflight.headers["Access-Control-Allow-Methods"]
    assert "Content-Type" in preflight.headers["Access-Control-Allow-Headers"]


def test_rate_limit_answers_429_once_a_client_is_over_it(model_copy, monkeypatch):
    monkeypatch.setenv("CHATBOT_RATE_LIMIT", "2/minute")
    client = create_app({"TESTING": True, "MODEL_PATH": str(model_copy)}).test_client()
    assert [chat(client, "hi").status_code for _ in range(2)] == [200, 200]
    answer = chat(client, "hi")
    assert (answer.status_code, answer.json) == (429, {"error": "too many requests: the limit is 2/minute"})
    assert 1 <= int(answer.headers["Retry-After"]) <= 30
    assert chat(client, "hi", environ_base={"REMOTE_ADDR": "10.0.0.9"}).status_code == 200  # another client


def test_no_rate_limit_by_default(client):
    assert {chat(client, "hi").status_code for _ in range(100)} == {200}


def test_echo_endpoint_is_off_by_default(client):
    answer = client.post("/api/echo", json={"message": "hi"})
    assert (answer.status_code, answer.json) == (404, {"error": "not found: /api/echo"})


def test_echo_endpoint_parses_json_without_the_model(app, client):
    app.config["BENCH_ENDPOINT"] = True
    answer = client.post("/api/echo", json={"message": "hello"})
    assert (answer.status_code, answer.json) == (200, {"echo": "hello", "length": 5})
    assert client.post("/api/echo", data="nope", content_type="application/json").status_code == 400


# --- reload ---------------------------------------------------------------------------------------------------------


def test_reload_is_disabled_without_a_configured_token(client):
    answer = reload(client)
    assert (answer.status_code, answer.json) == (
        403,
        {"error": "model reload is disabled: set CHATBOT_ADMIN_TOKEN on the server to enable it"},
    )


def test_reload_without_a_token_gets_401(admin_app, client):
    answer = reload(client, token=None)
    assert (answer.status_code, answer.json) == (
        401,
        {"error": "admin token required: send Authorization: Bearer <token>"},
    )
    assert answer.headers["WWW-Authenticate"] == "Bearer"
    basic = client.post("/api/model/reload", headers={"Authorization": f"Basic {TOKEN}"})
    assert basic.status_code == 401


def test_reload_with_a_wrong_token_gets_403(admin_app, client):
    for token in ("wrong", TOKEN + "x", TOKEN[:-1], "tökén"):
        answer = reload(client, token=token)
        assert (answer.status_code, answer.json) == (403, {"error": "wrong admin token"})


def test_reload_swaps_in_the_new_checkpoint(admin_app, client, model_copy, edit_checkpoint):
    edit_checkpoint(model_copy, model_copy, "Answer from the new model.", created_at="2030-01-01T00:00:00+00:00")
    answer = reload(client)
    assert answer.status_code == 200
    assert answer.json["status"] == "reloaded"
    assert answer.json["model"]["created_at"] == "2030-01-01T00:00:00+00:00"
    assert chat(client, "hello").json["response"] == "Answer from the new model."
    assert client.get("/api/health").json["model"]["created_at"] == "2030-01-01T00:00:00+00:00"


@pytest.mark.parametrize(
    ("damage", "reason"),
    [
        (lambda path: path.write_bytes(b"not a checkpoint at all"), "not a readable chatbot checkpoint"),
        (lambda path: path.write_bytes(path.read_bytes()[:5000]), "not a readable chatbot checkpoint"),
        (lambda path: path.unlink(), "model not found"),
    ],
    ids=["garbage", "truncated", "missing"],
)
def test_a_bad_checkpoint_fails_the_reload_and_the_old_model_keeps_answering(
    admin_app, client, model_copy, damage, reason
):
    before = chat(client, "hello").json
    damage(model_copy)
    answer = reload(client)
    assert answer.status_code == 422
    assert answer.json["error"].startswith("reload failed, still serving the previous model: ")
    assert reason in answer.json["error"] and str(model_copy) in answer.json["error"]
    after = chat(client, "hello")
    assert after.status_code == 200
    assert {k: after.json[k] for k in ("intent", "confidence")} == {k: before[k] for k in ("intent", "confidence")}


def test_the_admin_token_is_never_logged(admin_app, client, caplog):
    with caplog.at_level(logging.DEBUG, logger="app"):
        reload(client)
        reload(client, token="wrong-token-value")
    assert TOKEN not in caplog.text and "wrong-token-value" not in caplog.text
    assert "POST /api/model/reload 200" in caplog.text and "POST /api/model/reload 403" in caplog.text


def test_requests_in_flight_during_reloads_never_fail(admin_app, model_copy):
    """Threads chat while the model is reloaded, good and bad in turn: every chat is answered."""
    failures: list[int] = []
    stop = threading.Event()

    def keep_chatting() -> None:
        client = admin_app.test_client()
        for _ in range(300):
            if stop.is_set():
                break
            status = chat(client, "hello").status_code
            if status != 200:
                failures.append(status)

    threads = [threading.Thread(target=keep_chatting) for _ in range(3)]
    for thread in threads:
        thread.start()
    admin = admin_app.test_client()
    good = model_copy.read_bytes()
    for _ in range(3):
        assert reload(admin).status_code == 200
        model_copy.write_bytes(b"garbage")
        assert reload(admin).status_code == 422
        model_copy.write_bytes(good)
    stop.set()
    for thread in threads:
        thread.join()
    assert failures == []


# --- configuration ------------------------------------------------------------------------------------------------


def test_settings_come_from_chatbot_variables():
    settings = settings_from_env(
        {
            "CHATBOT_MODEL": "elsewhere.pt",
            "CHATBOT_ADMIN_TOKEN": "t",
            "CHATBOT_CORS_ORIGINS": "https://a.example, https://b.example/",
            "CHATBOT_RATE_LIMIT": "60/minute",
            "CHATBOT_BENCH_ENDPOINT": "1",
            "CHATBOT_MAX_MESSAGE_CHARS": "200",
        }
    )
    assert settings == {
        "MODEL_PATH": "elsewhere.pt",
        "ADMIN_TOKEN": "t",
        "CORS_ORIGINS": ["https://a.example", "https://b.example"],
        "RATE_LIMIT": "60/minute",
        "BENCH_ENDPOINT": True,
        "MAX_MESSAGE_CHARS": 200,
    }
    assert settings_from_env({}) == {}


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("CHATBOT_RATE_LIMIT", "lots"),
        ("CHATBOT_RATE_LIMIT", "0/minute"),
        ("CHATBOT_BENCH_ENDPOINT", "maybe"),
        ("CHATBOT_MAX_MESSAGE_CHARS", "-3"),
        ("CHATBOT_LOG_LEVEL", "loud"),
    ],
)
def test_a_malformed_setting_is_refused_naming_the_variable(variable, value):
    with pytest.raises(ValueError, match=variable):
        settings_from_env({variable: value})


def test_model_path_comes_from_the_environment(model_copy, monkeypatch):
    monkeypatch.setenv("CHATBOT_MODEL", str(model_copy))
    assert create_app({"TESTING": True}).config["MODEL_PATH"] == str(model_copy)


def test_create_app_refuses_a_missing_checkpoint(tmp_path):
    with pytest.raises(CheckpointError, match="model not found"):
        create_app({"TESTING": True, "MODEL_PATH": str(tmp_path / "absent.pt")})
