"""Defaults and options shared by every `chatbot` command, in one place (the commands live in several modules)."""

from __future__ import annotations

import click

DEFAULT_INTENTS = "intents.json"
DEFAULT_MODEL = "models/chatbot.pt"
# training.text.STEMMERS, written out: importing nltk to print `chatbot --help` would cost half a second.
# tests/test_text.py checks that the two lists agree.
DEFAULT_STEMMER = "porter"
STEMMERS = (
    DEFAULT_STEMMER,
    "none",
    "arabic",
    "danish",
    "dutch",
    "english",
    "finnish",
    "french",
    "german",
    "hungarian",
    "italian",
    "norwegian",
    "portuguese",
    "romanian",
    "russian",
    "spanish",
    "swedish",
)

stemmer_option = click.option(
    "--stemmer",
    type=click.Choice(STEMMERS),
    default=DEFAULT_STEMMER,
    show_default=True,
    help="How words are reduced to stems: nltk's English Porter, a Snowball language, or none. "
    "Words of another script than the stemmer's are left alone.",
)
