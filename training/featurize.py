"""What the network reads of a message: stems, adjacent stem pairs and, on small files, character 4-grams of words.

Character n-grams inside words (fastText's sub-word features) let "lights" meet "light" and "alarms" meet "alarm"
where the stemmer does not, and let a misspelt or unseen word still count for something. With 10 patterns per intent
they matter most; on large files the stems and pairs already cover most words, and the extra features cost training
time (benchmarks/small_bots.md has the figures), so `chatbot train` uses them below SUBWORDS_BELOW patterns.

`Encoder` also says what share of a message's words the model knows: a message made mostly of words no pattern
used is probably about something else, and the fallback uses that (training/fallback.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise, repeat
from typing import Any

from training import text

SUBWORDS_BELOW = 5_000  # patterns: smaller files train with character n-grams
SUBWORD_SIZE = 4  # n of the character n-grams: 3-5 and 3-6 scored the same on the small bots, with more features
GRAM_MARK = "#"  # starts every n-gram feature, so "#card" never meets the stem "card" (words have no "#")
CACHE_LIMIT = 100_000  # words; strangers' typos must not grow a serving process's cache forever


def char_grams(word: str, n: int = SUBWORD_SIZE) -> list[str]:
    """The n-grams of `<word>` (the brackets mark its start and end), each marked; none for a word of n-2 letters
    or fewer, whose whole-word feature says the same."""
    bounded = f"<{word}>"
    return [GRAM_MARK + bounded[i : i + n] for i in range(len(bounded) - n + 1)] if len(bounded) > n else []


@dataclass(frozen=True)
class FeatureSet:
    """How a checkpoint turns text into features; recorded in it so that messages are read as its patterns were."""

    stemmer: str = text.DEFAULT_STEMMER
    tokenizer: str = text.TOKENIZER
    bigrams: bool = True
    subwords: int | None = None  # n of the character n-grams, or None for none

    @classmethod
    def from_checkpoint(cls, features: dict[str, Any]) -> FeatureSet:
        subwords = features.get("subwords")
        if subwords is not None and (not isinstance(subwords, int) or isinstance(subwords, bool) or subwords < 2):
            raise ValueError(f"subwords must be a whole number of at least 2, not {subwords!r}")
        return cls(
            text.stemmer_name(features.get("stemmer")),
            text.tokenizer_name(features.get("tokenizer")),
            bool(features["bigrams"]),
            subwords,
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "bigrams": self.bigrams,
            "tokenizer": self.tokenizer,
            "stemmer": self.stemmer,
            "subwords": self.subwords,
        }

    def features(self, message: str) -> list[str]:
        """Every feature of `message`, repeats included: what the vocabulary is built from."""
        tokens = text.analyzer("none", self.tokenizer)(message)
        stems = list(map(text.get_stemmer(self.stemmer), tokens))  # what analyzer(stemmer) gives, tokenized once
        found = text.features(message, self.bigrams, lambda _: stems)
        if self.subwords:
            for token in tokens:
                found += char_grams(token, self.subwords)
        return found

    def encoder(self, vocabulary: Sequence[str]) -> Encoder:
        return Encoder(self, text.index_vocabulary(vocabulary))


class Encoder:
    """message -> (ids of its known features, share of its words the vocabulary knows), for one checkpoint.

    Runs on every request: each word's stem id and n-gram ids are looked up once and cached, so a message costs a
    dict lookup per word plus one per stem pair.
    """

    def __init__(self, feature_set: FeatureSet, index: dict[str, int]) -> None:
        self.feature_set, self.index = feature_set, index
        self._split = text.analyzer("none", feature_set.tokenizer)  # tokens, unstemmed
        self._stem = text.get_stemmer(feature_set.stemmer)
        self._words: dict[str, tuple[str, int, tuple[int, ...]]] = {}

    def _word(self, token: str) -> tuple[str, int, tuple[int, ...]]:
        """(stem, its id or -1, ids of the token's known n-grams)."""
        found = self._words.get(token)
        if found is None:
            stem, get = self._stem(token), self.index.get
            n = self.feature_set.subwords
            grams = tuple(i for i in map(get, char_grams(token, n) if n else ()) if i is not None)
            found = (stem, get(stem, -1), grams)
            if len(self._words) >= CACHE_LIMIT:
                self._words.clear()
            self._words[token] = found
        return found

    def __call__(self, message: str) -> tuple[list[int], float]:
        cached, word = self._words.get, self._word
        words = [w if (w := cached(token)) is not None else word(token) for token in self._split(message)]
        if not words:
            return [], 0.0
        stem_ids = [w[1] for w in words]
        ids = set(stem_ids)
        if self.feature_set.bigrams:  # map over C functions: no Python frame per pair (a third of a batch's time)
            stems = [w[0] for w in words]
            ids.update(map(self.index.get, map(text.BIGRAM_JOINER.join, pairwise(stems)), repeat(-1)))
        if self.feature_set.subwords:
            for w in words:
                ids.update(w[2])
        ids.discard(-1)
        return list(ids), (len(words) - stem_ids.count(-1)) / len(words)
