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


def stemmer_option(keep_existing: bool = False):
    """--stemmer; with `keep_existing` its default is the existing checkpoint's stemmer (None here), else porter."""
    default_text = f"the existing checkpoint's, else {DEFAULT_STEMMER}" if keep_existing else DEFAULT_STEMMER
    return click.option(
        "--stemmer",
        type=click.Choice(STEMMERS),
        default=None if keep_existing else DEFAULT_STEMMER,
        help="How words are reduced to stems: nltk's English Porter, a Snowball language, or none. "
        f"Words of another script than the stemmer's are left alone.  [default: {default_text}]",
    )
