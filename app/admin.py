"""Admin endpoints behind a bearer token: reload the model without restarting the server.

Without CHATBOT_ADMIN_TOKEN the endpoint is disabled. The token is compared in constant time and never logged.
Wrong tokens are throttled per client address: after FAILED_TOKENS_ALLOWED of them, a client waits (429 with
Retry-After) before any token it sends is even compared, so guessing runs at a few tries a minute, not thousands a
second. The count is kept per worker process, like the rate limit (app/ratelimit.py).
"""

from __future__ import annotations

import hmac
import math

from flask import Blueprint, Response, current_app, jsonify, request
from flask.blueprints import BlueprintSetupState

from app.errors import ApiError
from app.model_store import current_store
from app.ratelimit import RateLimiter
from training.checkpoint import CheckpointError

FAILED_TOKENS_ALLOWED = 5  # wrong tokens a client may send at once, then one more every FAILED_TOKENS_PERIOD / 5
FAILED_TOKENS_PERIOD = 60.0

admin = Blueprint("admin", __name__, url_prefix="/api/model")


@admin.record_once
def create_failed_token_throttle(state: BlueprintSetupState) -> None:
    state.app.extensions["failed_token_throttle"] = RateLimiter(FAILED_TOKENS_ALLOWED, FAILED_TOKENS_PERIOD)


@admin.post("/reload")
def reload_model() -> Response:
    """Load MODEL_PATH again; a checkpoint that fails to load changes nothing and is reported (422)."""
    require_admin_token()
    if current_app.config["STORE"]:
        raise ApiError(409, f"this server follows the model store {current_app.config['STORE']}: publish to it instead")
    try:
        current_store().reload()
    except CheckpointError as exc:
        current_app.logger.warning("model reload refused, still serving the previous model: %s", exc)
        raise ApiError(422, f"reload failed, still serving the previous model: {exc}") from None
    return jsonify(status="reloaded", model=current_store().info())


def require_admin_token() -> None:
    expected = current_app.config["ADMIN_TOKEN"]
    if not expected:
        raise ApiError(403, "model reload is disabled: set CHATBOT_ADMIN_TOKEN on the server to enable it")
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not given.strip():
        raise ApiError(401, "admin token required: send Authorization: Bearer <token>", {"WWW-Authenticate": "Bearer"})
    throttle: RateLimiter = current_app.extensions["failed_token_throttle"]
    client = request.remote_addr or "unknown"
    wait = throttle.wait_time(client)
    if wait is not None:
        raise ApiError(
            429,
            f"too many wrong admin tokens: try again in {math.ceil(wait)} s",
            {"Retry-After": str(math.ceil(wait))},
        )
    if not hmac.compare_digest(given.strip().encode(), expected.encode()):
        throttle.retry_after(client)  # counts this failure
        current_app.logger.warning("model reload refused: wrong admin token from %s", request.remote_addr)
        raise ApiError(403, "wrong admin token")
