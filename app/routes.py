"""The chat page and the JSON API: chat, batch predict, health, and the benchmark's echo."""

from __future__ import annotations

import contextlib
import os
import re
import time
from pathlib import Path
from typing import Any

from flask import Blueprint, Response, current_app, jsonify, render_template, request
from werkzeug.exceptions import BadRequest, RequestEntityTooLarge

from app.context_token import ContextTokens, conversation_hash
from app.errors import ApiError
from app.model_store import current_store
from app.store_follower import HEARTBEAT
from training.messages import answer_record, feedback_record

HEX_DIGEST = re.compile(r"[0-9a-f]{0,64}")

pages = Blueprint("pages", __name__)
api = Blueprint("api", __name__, url_prefix="/api")


@pages.get("/")
def chat_page() -> str:
    return render_template("chat.html", max_chars=current_app.config["MAX_MESSAGE_CHARS"])


@api.post("/chat")
def chat() -> Response:
    """One turn of a conversation: the answer, and the context token to send with the next message."""
    body = json_body()
    message = checked_message(body.get("message"), "message")
    token = body.get("context")
    if token is not None and not isinstance(token, str):
        raise ApiError(400, "'context' must be the context token of an earlier answer (a string), or left out")
    tokens: ContextTokens = current_app.extensions["context_tokens"]
    received = tokens.loads(token)
    classifier = current_store().classifier()
    turn = classifier.respond(message, received.active)
    answer = turn.prediction
    current_app.logger.debug("chat %r -> %s %.3f", message, answer.intent, answer.confidence)
    reset = received.reset or ("unknown_names" if turn.dropped else None)
    model = model_name(classifier)
    context = {
        "token": tokens.dumps(turn.active, model, received.conversation),
        "active": sorted(turn.active),
        "reset": reset,
    }
    if (message_log := current_app.extensions["message_log"]) is not None:
        conversation = conversation_hash(received.conversation)
        message_log.write(answer_record(answer, turn.filtered, model, conversation, message_log.raw))
    response = jsonify(answer.to_dict() | {"filtered_out": turn.filtered, "context": context})
    response.headers["X-Model-Digest"] = model
    return response


@api.post("/feedback")
def feedback() -> Response:
    """A person's thumbs-down on an answer: into the message log, where `chatbot review` lists it first."""
    message_log = current_app.extensions["message_log"]
    if message_log is None:
        raise ApiError(404, "feedback is not collected here: the server runs without a message log")
    body = json_body()
    message = checked_message(body.get("message"), "message")
    intent = body.get("intent")
    if not isinstance(intent, str) or intent not in current_store().classifier().tags:
        raise ApiError(400, "'intent' must be the intent of the answer, one of the model's intents")
    model = body.get("model", "")
    if not isinstance(model, str) or not HEX_DIGEST.fullmatch(model):
        raise ApiError(400, "'model' must be the X-Model-Digest of the answer (hex digits), or left out")
    token = body.get("context")
    if token is not None and not isinstance(token, str):
        raise ApiError(400, "'context' must be the context token of the answer (a string), or left out")
    tokens: ContextTokens = current_app.extensions["context_tokens"]
    received = tokens.loads(token)
    conversation = conversation_hash(received.conversation) if received.reset is None and token else None
    message_log.write(feedback_record(message, intent, model, conversation, message_log.raw))
    return jsonify(status="recorded"), 202


def model_name(classifier) -> str:
    """How answers (X-Model-Digest) and the log name the model: the SHA-256 of its checkpoint file, which is also
    its name in a model store (the intents file's, for a model built in memory)."""
    return classifier.digest or classifier.summary.intents_sha256 or ""


@api.post("/predict")
def predict() -> Response:
    messages = json_body().get("messages")
    if messages is None:
        raise ApiError(400, "'messages' is required: a list of strings")
    if not isinstance(messages, list):
        raise ApiError(400, "'messages' must be a list of strings")
    limit = current_app.config["MAX_BATCH"]
    if len(messages) > limit:
        raise ApiError(413, f"too many messages: {len(messages)}, the limit is {limit} per request")
    messages = [checked_message(m, f"messages[{i}]") for i, m in enumerate(messages)]
    classifier = current_store().classifier()
    answers = classifier.predict_batch(messages)
    current_app.logger.debug("predict %d messages: %r", len(messages), messages)
    response = jsonify(predictions=[answer.to_dict() for answer in answers])
    response.headers["X-Model-Digest"] = model_name(classifier)
    return response


@api.get("/health")
def health() -> Response:
    store = current_store()
    info = store.info()
    response = jsonify(
        status="ok", model=info, feedback=current_app.extensions["message_log"] is not None, store=store_info()
    )
    response.headers["X-Model-Digest"] = info["digest"] or ""
    return response


def store_info() -> dict[str, Any] | None:
    """Whether this server follows a model store, how often it looks and how long ago it last did (a value far past
    the poll interval means its follower is gone); never where the store is (a path or an internal URL is not for
    anonymous clients)."""
    if not current_app.config["STORE"]:
        return None
    last_look = None
    with contextlib.suppress(OSError, TypeError):
        looked = os.stat(Path(current_app.config["MODEL_SHARED_DIR"]) / HEARTBEAT).st_mtime
        last_look = round(max(0.0, time.time() - looked), 1)
    return {"follows_store": True, "poll_seconds": current_app.config["POLL"], "last_look_seconds_ago": last_look}


@api.post("/echo")
def echo() -> Response:
    """The benchmark's baseline: the same JSON parsing and answering as /api/chat, without the model."""
    if not current_app.config["BENCH_ENDPOINT"]:
        raise ApiError(404, f"not found: {request.path}")
    message = json_body().get("message")
    message = message if isinstance(message, str) else None  # a number could be NaN or Infinity: not JSON
    return jsonify(echo=message, length=len(message or ""))


def json_body() -> dict[str, Any]:
    """The request's JSON object, or the ApiError that says what is wrong with the body."""
    if not request.is_json:
        raise ApiError(415, "send a JSON body with Content-Type: application/json")
    refuse_streamed_body_over_limit()
    try:
        body = request.get_json()
    except BadRequest:
        raise ApiError(400, "the body is not valid JSON") from None
    except RecursionError:  # Flask turns only ValueError into BadRequest
        raise ApiError(400, "the body is nested too deeply") from None
    if not isinstance(body, dict):
        raise ApiError(400, "the body must be a JSON object")
    return body


def refuse_streamed_body_over_limit() -> None:
    """413 for a chunked body (no Content-Length) longer than MAX_CONTENT_LENGTH.

    Werkzeug stops reading such a body at the limit without an error, so it would be parsed cut short: a misleading
    400, or an answer to whatever fitted. One byte read past the limit tells a body over it from one exactly at it.
    """
    limit = current_app.config["MAX_CONTENT_LENGTH"]
    if limit is None or request.content_length is not None:
        return  # a Content-Length over the limit is refused by Werkzeug itself
    if len(request.get_data()) >= limit and request.environ["wsgi.input"].read(1):
        raise RequestEntityTooLarge()


def checked_message(message: Any, name: str) -> str:
    if message is None:
        raise ApiError(400, f"'{name}' is required")
    if not isinstance(message, str):
        raise ApiError(400, f"'{name}' must be a string")
    if not message.strip():
        raise ApiError(400, f"'{name}' must not be empty")
    limit = current_app.config["MAX_MESSAGE_CHARS"]
    if len(message) > limit:
        raise ApiError(413, f"'{name}' is too long: {len(message)} characters, the limit is {limit}")
    return message
