"""What happens around every request: the rate limit, one log line, security headers and cross-origin headers."""

from __future__ import annotations

import math
import time

from flask import Flask, Response, current_app, g, request

from app.errors import ApiError
from app.ratelimit import RateLimiter
from app.settings import parse_rate_limit

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}
# The health check must answer a monitor however busy its address is; reload throttles wrong tokens itself.
UNLIMITED_ENDPOINTS = frozenset({"api.health", "admin.reload_model"})
CORS_ALLOW_HEADERS = "Content-Type, Authorization"
CORS_MAX_AGE = "600"


def register_hooks(app: Flask) -> None:
    limit = app.config["RATE_LIMIT"]
    app.extensions["rate_limiter"] = RateLimiter(*parse_rate_limit(limit)) if limit else None
    app.before_request(start_request)
    app.after_request(add_cors_headers)
    app.after_request(add_security_headers)
    app.after_request(log_request)


def start_request() -> None:
    """Note the start time, then refuse the request if its client is over the rate limit."""
    g.started = time.perf_counter()
    limiter: RateLimiter | None = current_app.extensions["rate_limiter"]
    if limiter is None or request.method == "OPTIONS" or not request.path.startswith("/api/"):
        return
    if request.endpoint in UNLIMITED_ENDPOINTS:
        return
    wait = limiter.retry_after(request.remote_addr or "unknown")
    if wait is not None:
        raise ApiError(
            429,
            f"too many requests: the limit is {current_app.config['RATE_LIMIT']}",
            {"Retry-After": str(math.ceil(wait))},
        )


def log_request(response: Response) -> Response:
    """One line per request; never headers or bodies, so neither message texts nor the admin token reach the log."""
    started = g.get("started")
    elapsed = f"{(time.perf_counter() - started) * 1000:.2f}ms" if started is not None else "-"
    current_app.logger.info("%s %s %d %s", request.method, request.path, response.status_code, elapsed)
    return response


def add_security_headers(response: Response) -> Response:
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    return response


def add_cors_headers(response: Response) -> Response:
    """Let the configured origins call the API from their pages, preflight included; no one else."""
    origin = request.headers.get("Origin")
    allowed = current_app.config["CORS_ORIGINS"]
    if not request.path.startswith("/api/") or not origin or not allowed:
        return response
    response.vary.add("Origin")
    if origin.rstrip("/") not in allowed and "*" not in allowed:
        return response
    response.headers["Access-Control-Allow-Origin"] = origin
    response.headers["Access-Control-Expose-Headers"] = "X-Model-Digest"  # which model answered, for their scripts
    if request.method == "OPTIONS":
        response.headers["Access-Control-Allow-Methods"] = response.headers.get("Allow", "GET, POST, OPTIONS")
        response.headers["Access-Control-Allow-Headers"] = CORS_ALLOW_HEADERS
        response.headers["Access-Control-Max-Age"] = CORS_MAX_AGE
    return response
