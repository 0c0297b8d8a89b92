"""Text to features: tokenize, stem, build a vocabulary, encode messages.

Pure functions with no torch and no I/O. Everything here needs no downloaded nltk data, so the product runs offline.
A message's features are its stemmed words plus its adjacent stemmed word pairs ("bigrams"); the pairs tell "card
arrive" from "arrive card"-free bags and were worth about two points of accuracy on BANKING77.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from functools import lru_cache
from itertools import pairwise, repeat

import numpy as np
from nltk.stem import PorterStemmer

# The same rule as nltk's RegexpTokenizer(r"\w+"), compiled with the standard library's `re`: nltk's tokenizer runs
# on the third-party `regex` module, four times slower per message here, and tokenizing is on every request's path.
_WORD = re.compile(r"\w+")
_STEMMER = PorterStemmer()
BIGRAM_JOINER = " "


@lru_cache(maxsize=100_000)
def stem(word: str) -> str:
    """Porter stem of one lower-case word; cached because a vocabulary repeats a few thousand words endlessly."""
    return _STEMMER.stem(word)


def tokenize(text: str) -> list[str]:
    """Lower-cased word tokens; punctuation and whitespace of any script are dropped."""
    return _WORD.findall(text.lower())


def stems(text: str) -> list[str]:
    """Tokenize then stem: "Where's my card arriving?" -> ["where", "s", "my", "card", "arriv"]."""
    return list(map(stem, _WORD.findall(text.lower())))


def features(text: str, bigrams: bool = True) -> list[str]:
    """The stems of `text` and, when `bigrams` is set, each adjacent pair of stems joined by a space."""
    words = stems(text)
    if not bigrams:
        return words
    return words + list(map(BIGRAM_JOINER.join, pairwise(words)))


def build_vocabulary(feature_lists: Iterable[Iterable[str]], min_count: int = 1) -> list[str]:
    """Sorted features found in at least `min_count` messages: a stable order makes training reproducible."""
    counts = Counter(f for feature_list in feature_lists for f in set(feature_list))
    return sorted(f for f, n in counts.items() if n >= min_count)


def index_vocabulary(vocabulary: Sequence[str]) -> dict[str, int]:
    """Feature -> column lookup used by `encode`."""
    return {feature: i for i, feature in enumerate(vocabulary)}


def encode(text: str, index: Mapping[str, int], bigrams: bool = True) -> list[int]:
    """Sorted, unique column ids of the known features in `text`; unknown features are ignored.

    This costs time proportional to the message, not to the vocabulary: one dict lookup per feature. It is
    `ids_of(features(text))` without the intermediate lists, because it runs on every request.
    """
    words = list(map(stem, _WORD.findall(text.lower())))
    ids = set(map(index.get, words, repeat(-1)))  # one C-level lookup per feature; -1 marks unknown ones
    if bigrams:
        ids.update(map(index.get, map(BIGRAM_JOINER.join, pairwise(words)), repeat(-1)))
    ids.discard(-1)
    return sorted(ids)


def ids_of(feature_list: Iterable[str], index: Mapping[str, int]) -> list[int]:
    """Sorted, unique ids of the features that are in `index`."""
    ids = set(map(index.get, feature_list, repeat(-1)))  # one C-level lookup per feature; -1 marks unknown ones
    ids.discard(-1)
    return sorted(ids)


def bag_of_words(text: str, index: Mapping[str, int], bigrams: bool = True) -> np.ndarray:
    """Dense 0/1 vector of `text` over the vocabulary: the textbook view of what the network reads."""
    vector = np.zeros(len(index), dtype=np.float32)
    vector[encode(text, index, bigrams)] = 1.0
    return vector
