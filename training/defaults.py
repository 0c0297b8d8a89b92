"""Names and defaults that the library, the command line and the web service share, in one light module.

Light on purpose: `chatbot --help` lists the stemmers without importing nltk (half a second).
"""

from __future__ import annotations

DEFAULT_INTENTS = "intents.json"
DEFAULT_MODEL = "models/chatbot.pt"
DEFAULT_STEMMER = "porter"
DEFAULT_KEEP = 10  # checkpoints a model store keeps, besides the current and the previous one (training/registry.py)
# nltk's English Porter stemmer, no stemming, and nltk's Snowball languages (tests/test_text.py checks that nltk
# still offers each of them).
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
