"""The web app: `create_app()` builds the Flask application that serves the chat page and the JSON API."""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from flask import Flask


def create_app(test_config: Mapping[str, Any] | None = None, settings: Mapping[str, Any] | None = None) -> Flask:
    """Build the app: defaults, then CHATBOT_* environment variables, then `test_config` (tests).

    `settings`, when given, replaces the defaults and the environment: `chatbot serve` parses them once, in the
    master process, and hands them to each worker.

    The checkpoint is loaded here, once per process (each server worker builds its own app), and a bad one raises
    `training.checkpoint.CheckpointError`.
    """
    # Imported here, not at the top: `chatbot serve` imports app.settings, and `chatbot --help` should not load Flask.
    from flask import Flask

    from app.admin import admin
    from app.context_token import ContextTokens
    from app.errors import register_error_handlers
    from app.hooks import register_hooks
    from app.model_store import ModelStore
    from app.routes import api, pages
    from app.settings import DEFAULTS, settings_from_env

    app = Flask(__name__)
    # No merging of slashes: it answers "/api//chat" with an HTML redirect; an unknown path gets a JSON 404 instead.
    app.url_map.merge_slashes = False
    app.config.from_mapping(DEFAULTS | settings_from_env(os.environ) if settings is None else settings)
    if test_config is not None:
        app.config.from_mapping(test_config)
    app.json.sort_keys = False  # answers keep the field order of `chatbot predict`
    app.logger.setLevel(app.config["LOG_LEVEL"])

    register_error_handlers(app)
    register_hooks(app)
    app.register_blueprint(pages)
    app.register_blueprint(api)
    app.register_blueprint(admin)
    app.extensions["model_store"] = ModelStore(app.config["MODEL_PATH"], app.config["MODEL_SHARED_DIR"])
    if not app.config["CONTEXT_SECRET"]:  # one process (tests, a WSGI server without `chatbot serve`): its own key
        app.config["CONTEXT_SECRET"] = secrets.token_urlsafe(32)
        app.logger.info(
            "CHATBOT_SECRET_KEY is not set: conversation contexts are signed with a key made for this process"
        )
    app.extensions["context_tokens"] = ContextTokens(app.config["CONTEXT_SECRET"], app.config["CONTEXT_MAX_AGE"])
    app.extensions["message_log"] = None
    if app.config["MESSAGE_LOG"]:
        from app.message_log import MessageLog

        app.extensions["message_log"] = MessageLog(
            app.config["MESSAGE_LOG"],
            app.config["MESSAGE_LOG_MAX_BYTES"],
            app.config["MESSAGE_LOG_BACKUPS"],
            raw=app.config["MESSAGE_LOG_RAW"],
        )
    return app
