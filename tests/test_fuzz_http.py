"""Property-based tests of the HTTP surface: no body, method, path or header makes the app fail or answer HTML.

Every answer under /api/ is JSON: the exact answer or the exact `{"error": ...}` for documents whose outcome is fixed,
and some 2xx or 4xx JSON for anything else; nothing anywhere is a 5xx or shows a traceback. The number of examples
comes from the loaded Hypothesis profile (60 by default, 2,500 with `--hypothesis-profile=thorough`).
"""

from __future__ import annotations

import json
import os
import shutil
from typing import Any
from urllib.parse import unquote_to_bytes

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from app import create_app

TOKEN = "fuzz-admin-token"
MAX_CHARS = 1_000
MAX_BATCH = 1_000
LIMIT = 64 * 1024
ANSWER_FIELDS = ["text", "intent", "confidence", "fallback", "response", "alternatives"]
CHAT_FIELDS = [*ANSWER_FIELDS, "filtered_out", "context"]
# A failing example may hold a 200 kB body: let Hypothesis print it instead of failing on its size warning.
pytestmark = pytest.mark.filterwarnings("ignore:Generating overly large repr")
API_PATHS = ["/api/chat", "/api/predict", "/api/health", "/api/model/reload", "/api/echo", "/api/nope", "/api/"]


@pytest.fixture(scope="module")
def fuzz_client(trained_model, tmp_path_factory):
    """The production configuration (not TESTING), with reload and cross-origin use on, shared by all examples."""
    model = shutil.copy(trained_model, tmp_path_factory.mktemp("fuzz-http") / "chatbot.pt")
    settings = {
        "MODEL_PATH": str(model),
        "ADMIN_TOKEN": TOKEN,
        "CORS_ORIGINS": ["https://shop.example"],
        "LOG_LEVEL": "WARNING",  # one line per request would flood the captured log; errors still show
    }
    with pytest.MonkeyPatch.context() as patch:  # deaf to CHATBOT_* variables of the machine, like the `app` fixture
        for name in [name for name in os.environ if name.startswith("CHATBOT_")]:
            patch.delenv(name)
        return create_app(settings).test_client()


# --- strategies ---------------------------------------------------------------------------------------------------

any_char = st.characters(min_codepoint=0, max_codepoint=0x10FFFF)  # lone surrogates included: JSON can carry them
odd_text = (
    st.text(any_char, max_size=60)
    | st.sampled_from(["", " ", "\n\t\r", "\u00a0\u2028\u3000", "\ufeffhello", "\x00", "\ud800", "İİİ", "😀😀"])
    | st.builds(lambda n, c: c * n, st.integers(MAX_CHARS - 2, MAX_CHARS + 2), st.sampled_from(["a", "😀", " "]))
)
json_scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | odd_text
json_values = st.recursive(
    json_scalars,
    lambda children: st.lists(children, max_size=5) | st.dictionaries(odd_text, children, max_size=5),
    max_leaves=20,
)
huge_bodies = st.builds(
    lambda n, fill: json.dumps({"message": fill * n}).encode(),
    st.integers(min_value=1, max_value=3 * LIMIT),
    st.sampled_from(["a", "é", "😀", " "]),
)
bodies = (
    st.binary(max_size=500)
    | json_values.map(lambda v: json.dumps(v).encode())
    | json_values.map(lambda v: json.dumps(v, ensure_ascii=False).encode("utf-8", "surrogatepass"))
    | st.builds(lambda v, codec: json.dumps(v).encode(codec), json_values, st.sampled_from(["utf-16", "utf-32"]))
    | huge_bodies
)
content_types = st.sampled_from(
    [
        None,
        "application/json",
        "application/json; charset=utf-8",
        "application/json; charset=utf-16",
        "application/json; charset=bogus",
        "application/problem+json",
        "text/plain",
        "text/html",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=xyz",
        "multipart/form-data",
        "",
    ]
) | st.text(st.characters(min_codepoint=0x20, max_codepoint=0xFF), max_size=40)

header_names = st.from_regex(r"\A[A-Za-z][A-Za-z0-9-]{0,20}\Z") | st.sampled_from(
    [
        "Authorization",
        "Origin",
        "Host",
        "Accept",
        "Accept-Encoding",
        "Content-Encoding",
        "Cookie",
        "Range",
        "If-None-Match",
        "If-Modified-Since",
        "X-Forwarded-For",
        "Access-Control-Request-Method",
        "Access-Control-Request-Headers",
    ]
)
header_values = (
    st.text(st.characters(min_codepoint=0x20, max_codepoint=0xFF), max_size=80)
    | st.sampled_from(
        [
            f"Bearer {TOKEN}x",
            "Bearer ",
            "bearer \xff",
            "Basic Zm9vOmJhcg==",
            "https://shop.example",
            "null",
            "bytes=5-1",
        ]
    )
    | st.builds(lambda n: "a" * n, st.integers(0, 10_000))
)
headers = st.dictionaries(header_names, header_values, max_size=6)
methods = st.sampled_from(["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "TRACE", "CONNECT"]) | (
    st.from_regex(r"\A[A-Za-z_-]{1,12}\Z")
)
segments = st.sampled_from(
    ["api", "chat", "predict", "health", "model", "reload", "echo", "static", "chat.js", "", ".", "..", "%00"]
) | st.text(st.characters(min_codepoint=1, max_codepoint=0x2FF), max_size=12)
raw_paths = (
    st.lists(segments, max_size=8).map(lambda parts: "/" + "/".join(parts))
    | st.sampled_from(["/", "//", "///", "/%00", "/api//chat", "//api/chat", "/api/chat/", "/static/../app.py"])
    | st.builds(lambda n: "/api/" + "a" * n, st.integers(0, 20_000))
    | st.builds(lambda n: "/" + "x/" * n, st.integers(0, 5_000))
)
query_strings = st.text(st.characters(min_codepoint=0x20, max_codepoint=0xFF), max_size=60)


def path_info(raw: str) -> str:
    """The PATH_INFO a WSGI server hands the app: the request path percent-decoded, its bytes read as latin-1."""
    return unquote_to_bytes(raw.encode("utf-8", "surrogatepass")).decode("latin-1")


# --- oracles --------------------------------------------------------------------------------------------------------


def assert_no_failure(answer, method: str = "POST") -> Any:
    """Not a 5xx, no traceback; every error, and every /api/ answer that has a body, is JSON. The decoded body."""
    data = answer.get_data()
    assert answer.status_code < 500, (answer.status_code, data[:300])
    assert b"Traceback" not in data and b"Werkzeug Debugger" not in data
    if method == "HEAD" or (method == "OPTIONS" and answer.status_code == 200) or answer.status_code == 304:
        return None
    if answer.status_code >= 300 or answer.request.path.startswith("/api/"):
        assert answer.content_type == "application/json", (answer.status_code, answer.content_type, data[:300])
        body = json.loads(data)
        if answer.status_code >= 300:
            assert list(body) == ["error"] and isinstance(body["error"], str) and body["error"]
        return body
    return None


def expected_message_error(message: Any, name: str) -> tuple[int, str] | None:
    if message is None:
        return 400, f"'{name}' is required"
    if not isinstance(message, str):
        return 400, f"'{name}' must be a string"
    if not message.strip():
        return 400, f"'{name}' must not be empty"
    if len(message) > MAX_CHARS:
        return 413, f"'{name}' is too long: {len(message)} characters, the limit is {MAX_CHARS}"
    return None


def post_json(client, path: str, document: Any) -> tuple[int, Any] | None:
    """(status, JSON body) of posting `document`; None once the exact 413 for a body over the limit was checked."""
    data = json.dumps(document).encode()
    answer = client.post(path, data=data, content_type="application/json")
    body = assert_no_failure(answer)
    if len(data) > LIMIT:
        assert (answer.status_code, body) == (413, {"error": f"request body too large: the limit is {LIMIT} bytes"})
        return None
    return answer.status_code, body


# --- surfaces -----------------------------------------------------------------------------------------------------


@given(path=st.sampled_from(API_PATHS), body=bodies, content_type=content_types)
def test_any_body_with_any_content_type_gets_a_json_answer(fuzz_client, path, body, content_type):
    answer = fuzz_client.post(path, data=body, content_type=content_type)
    assert_no_failure(answer)
    reads_json = path in ("/api/chat", "/api/predict") and answer.request.is_json
    if len(body) > LIMIT:
        assert answer.status_code == 413 if reads_json else answer.status_code >= 400
    if answer.status_code < 300:
        assert reads_json


@given(
    document=json_values
    | st.fixed_dictionaries({}, optional={"message": json_values, "other": json_values})
    | st.fixed_dictionaries({"message": odd_text})
)
def test_any_json_document_to_chat_gets_the_answer_or_the_exact_error(fuzz_client, document):
    answer = post_json(fuzz_client, "/api/chat", document)
    if answer is None:
        return
    status, body = answer
    if not isinstance(document, dict):
        assert (status, body) == (400, {"error": "the body must be a JSON object"})
        return
    error = expected_message_error(document.get("message"), "message")
    if error is not None:
        assert (status, body) == (error[0], {"error": error[1]})
        return
    assert status == 200
    assert list(body) == CHAT_FIELDS and body["text"] == document["message"]
    assert 0 <= body["confidence"] <= 1 and isinstance(body["response"], str) and body["response"]


@given(
    document=st.fixed_dictionaries({}, optional={"messages": json_values | st.lists(json_scalars, max_size=12)})
    | st.builds(lambda n, m: {"messages": [m] * n}, st.integers(MAX_BATCH - 3, MAX_BATCH + 3), st.sampled_from(["hi"]))
)
def test_any_json_batch_to_predict_gets_the_answers_or_the_exact_error(fuzz_client, document):
    answer = post_json(fuzz_client, "/api/predict", document)
    if answer is None:
        return
    status, body = answer
    messages = document.get("messages")
    if messages is None:
        expected = (400, "'messages' is required: a list of strings")
    elif not isinstance(messages, list):
        expected = (400, "'messages' must be a list of strings")
    elif len(messages) > MAX_BATCH:
        expected = (413, f"too many messages: {len(messages)}, the limit is {MAX_BATCH} per request")
    else:
        errors = (expected_message_error(m, f"messages[{i}]") for i, m in enumerate(messages))
        expected = next((e for e in errors if e is not None), None)
    if expected is not None:
        assert (status, body) == (expected[0], {"error": expected[1]})
        return
    assert status == 200
    assert [p["text"] for p in body["predictions"]] == messages
    assert all(list(p) == ANSWER_FIELDS for p in body["predictions"])


@given(method=methods, raw_path=raw_paths, query=query_strings, extra=headers, body=st.binary(max_size=200))
@example(method="POST", raw_path="/api//chat", query="", extra={}, body=b'{"message": "hi"}')  # was an HTML 308
@example(method="GET", raw_path="/%00", query="", extra={}, body=b"")
def test_any_method_path_and_headers_get_an_answer_never_a_failure(fuzz_client, method, raw_path, query, extra, body):
    answer = fuzz_client.open(
        "/",
        method=method,
        data=body,
        headers=list(extra.items()),
        environ_overrides={"PATH_INFO": path_info(raw_path), "QUERY_STRING": query, "REQUEST_URI": raw_path},
    )
    assert_no_failure(answer, method)
    if 300 <= answer.status_code < 400:  # only the page and its files may redirect, and only to this server
        assert not answer.request.path.startswith("/api/")
        location = answer.headers["Location"]
        own = f"{answer.request.scheme}://{answer.request.host}/"
        assert location.startswith(own) or (location.startswith("/") and not location.startswith("//")), location
