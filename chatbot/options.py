"""Options that several `chatbot` commands share, written once."""

from __future__ import annotations

import click

from training.defaults import DEFAULT_INTENTS, DEFAULT_MODEL, DEFAULT_STEMMER, STEMMERS

__all__ = ["DEFAULT_INTENTS", "DEFAULT_MODEL", "model_option", "stemmer_option", "threshold_option"]


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


def model_option(help: str = "Checkpoint to answer from."):
    return click.option("--model", default=DEFAULT_MODEL, show_default=True, help=help)


def threshold_option():
    return click.option(
        "--threshold", type=click.FloatRange(0, 1), help="Fallback below this confidence  [default: stored]."
    )
