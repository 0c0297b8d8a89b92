"""The `chatbot` command group: every command, and the one place where a user's error becomes one line.

Command modules import only click at the top and the library when they run: `chatbot --help` must not pay a second
for torch, nltk and scikit-learn.
"""

from __future__ import annotations

from typing import Any

import click

from chatbot.answer import chat, predict
from chatbot.data import import_csv, validate
from chatbot.evaluate import cross_validate_command, evaluate_command
from chatbot.house_prices import house_prices
from chatbot.models import models_command, publish_command, rollback_command
from chatbot.review import review
from chatbot.serve import serve
from chatbot.train import train
from training.errors import UserError

COMMANDS = (
    train,
    predict,
    chat,
    validate,
    import_csv,
    evaluate_command,
    cross_validate_command,
    review,
    serve,
    publish_command,
    rollback_command,
    models_command,
    house_prices,
)


class ChatbotGroup(click.Group):
    """A group whose commands may let a `UserError` escape: it is printed as `Error: <message>`, exit status 1."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except UserError as exc:
            raise click.ClickException(str(exc)) from None


@click.group(cls=ChatbotGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="chatbot", prog_name="chatbot")
def main() -> None:
    """Intent-classification chatbot: train it from intents.json, then ask it things."""


for _command in COMMANDS:
    main.add_command(_command)
