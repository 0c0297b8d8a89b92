"""The `chatbot` console script: the training commands plus `serve`, which needs the web app.

It lives in `app` so that `training` never imports Flask: the command group is built there, and this module adds
the one command that serves HTTP.
"""

from __future__ import annotations

from training.cli import main

__all__ = ["main"]
