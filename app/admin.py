"""Admin endpoints behind a bearer token: reload the model without restarting the server.

Without CHATBOT_ADMIN_TOKEN the endpoint is disabled. The token is compared in constant time and never logged.
"""

from __future__ import annotations

import hmac

from flask import Blueprint, Response, current_app, jsonify, request

from app.errors import ApiError
from app.routes import model_store
from training.checkpoint import CheckpointError

admin = Blueprint("admin", __name__, url_prefix="/api/model")


@admin.post("/reload")
def reload_model() -> Response:
    """Load MODEL_PATH again; a checkpoint that fails to load changes nothing and is reported (422)."""
    require_admin_token()
    try:
        model_store().reload()
    except CheckpointError as exc:
        current_app.logger.warning("model reload refused, still serving the previous model: %s", exc)
        raise ApiError(422, f"reload failed, still serving the previous model: {exc}") from None
    return jsonify(status="reloaded", model=model_store().info())


def require_admin_token() -> None:
    expected = current_app.config["ADMIN_TOKEN"]
    if not expected:
        raise ApiError(403, "model reload is disabled: set CHATBOT_ADMIN_TOKEN on the server to enable it")
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not given.strip():
        raise ApiError(401, "admin token required: send Authorization: Bearer <token>", {"WWW-Authenticate": "Bearer"})
    if not hmac.compare_digest(given.strip().encode(), expected.encode()):
        current_app.logger.warning("model reload refused: wrong admin token from %s", request.remote_addr)
        raise ApiError(403, "wrong admin token")
