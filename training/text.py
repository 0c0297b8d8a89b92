"""Text to features: tokenize, stem, build a vocabulary, encode messages.

Pure functions with no torch and no I/O. Everything here needs no downloaded nltk data, so the product runs offline.
A message's features are its stemmed words plus its adjacent stemmed word pairs ("bigrams"); the pairs tell "card
arrive" from "arrive card"-free bags and were worth about two points of accuracy on BANKING77.
"""

from __future__ import annotations

import re
import sys
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from itertools import pairwise, repeat

import numpy as np


def _import_porter_stemmer() -> type:
    """nltk's PorterStemmer, imported without letting nltk's package pull in scikit-learn and SciPy.

    nltk's `__init__` imports its scikit-learn classifier wrapper, and with it SciPy: 113 MB of resident memory
    and 1,350 modules in every serving process, which needs nothing from nltk but this stemmer (27 MB without them).
    While nltk loads, the two are marked unavailable (a `None` entry in sys.modules makes their import fail, which
    nltk handles); they import normally afterwards. Where they are already loaded, nothing is blocked.
    """
    blocked = [name for name in ("sklearn", "scipy") if name not in sys.modules]
    for name in blocked:
        sys.modules[name] = None  # type: ignore[assignment]
    try:
        from nltk.stem.porter import PorterStemmer
    finally:
        for name in blocked:
            if sys.modules.get(name, 0) is None:
                del sys.modules[name]
    return PorterStemmer


PorterStemmer = _import_porter_stemmer()
# The same rule as nltk's RegexpTokenizer(r"\w+"), compiled with the standard library's `re`: nltk's tokenizer runs
# on the third-party `regex` module, four times slower per message here, and tokenizing is on every request's path.
_WORD = re.compile(r"\w+")
_STEMMER = PorterStemmer()
BIGRAM_JOINER = " "


class _StemCache(dict):
    """word -> Porter stem, computed on first use; a bounded dict, because the stemmer is 12 µs a word and a
    vocabulary repeats a few thousand words endlessly. A missing key costs one `__missing__` call; a hit is a plain
    dict lookup, faster than `functools.lru_cache`'s bookkeeping on the per-request path."""

    limit = 100_000

    def __missing__(self, word: str) -> str:
        if len(self) >= self.limit:  # strangers' typos must not grow it forever
            self.clear()
        result = self[word] = _STEMMER.stem(word)
        return result


_STEMS = _StemCache()
stem = _STEMS.__getitem__  # stem(word) -> its Porter stem; a bound method, so `map(stem, words)` stays in C


def tokenize(text: str) -> list[str]:
    """Lower-cased word tokens; punctuation and whitespace of any script are dropped."""
    return _WORD.findall(text.lower())


def stems(text: str) -> list[str]:
    """Tokenize then stem: "Where's my card arriving?" -> ["where", "s", "my", "card", "arriv"]."""
    return list(map(stem, tokenize(text)))


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
    """Unique column ids of the known features in `text`, in no particular order; unknown features are ignored.

    This costs time proportional to the message, not to the vocabulary: one dict lookup per feature. It is
    `ids_of(features(text))` without the feature list or the sort, because it runs on every request (the sort alone
    was a tenth of a batch's time, and a bag's sum does not depend on the order).
    """
    words = stems(text)
    get = index.get
    ids = set(map(get, words, repeat(-1)))  # one C-level lookup per feature; -1 marks unknown ones
    if bigrams:
        ids.update(map(get, map(BIGRAM_JOINER.join, pairwise(words)), repeat(-1)))
    ids.discard(-1)
    return list(ids)


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
