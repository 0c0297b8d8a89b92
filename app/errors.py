"""One JSON error type and the handlers that make every failure a `{"error": ...}` body, never an HTML page.

Expected failures raise `ApiError(status, message)`; Werkzeug's HTTP errors (404, 405, 413, ...) are rewritten into
the same shape with a short message; anything else is a bug: logged with its traceback, answered with a bare 500.
"""

from __future__ import annotations

from flask import Flask, Response, current_app, jsonify, request
from werkzeug.exceptions import HTTPException, MethodNotAllowed, NotFound, RequestEntityTooLarge


class ApiError(Exception):
    """A request the API refuses: `status` is the HTTP code, `message` says what to fix."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}


def json_error(status: int, message: str, headers: dict[str, str] | None = None) -> Response:
    response = jsonify(error=message)
    response.status_code = status
    response.headers.update(headers or {})
    return response


def handle_api_error(error: ApiError) -> Response:
    return json_error(error.status, error.message, error.headers)


def handle_http_exception(error: HTTPException) -> Response:
    """Werkzeug's errors with a short message; headers such as `Allow` on a 405 are kept."""
    status = error.code or 500
    if isinstance(error, NotFound):
        message = f"not found: {request.path}"
    elif isinstance(error, MethodNotAllowed):
        allowed = ", ".join(m for m in (error.valid_methods or []) if m not in ("HEAD", "OPTIONS"))
        message = f"method {request.method} not allowed on {request.path}" + (f"; use {allowed}" if allowed else "")
    elif isinstance(error, RequestEntityTooLarge):
        message = f"request body too large: the limit is {current_app.config['MAX_CONTENT_LENGTH']} bytes"
    else:
        message = (error.name or "error").lower()
    headers = {k: v for k, v in error.get_headers() if k.lower() != "content-type"}
    return json_error(status, message, headers)


def handle_unexpected(error: Exception) -> Response:
    """A bug: the traceback goes to the server log only, the client gets a bare JSON 500."""
    current_app.logger.error("unhandled error on %s %s", request.method, request.path, exc_info=error)
    return json_error(500, "internal server error")


def register_error_handlers(app: Flask) -> None:
    app.register_error_handler(ApiError, handle_api_error)
    app.register_error_handler(HTTPException, handle_http_exception)
    app.register_error_handler(Exception, handle_unexpected)
