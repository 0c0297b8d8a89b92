"""Text to features: tokenize, stem, build a vocabulary, encode messages.

Pure functions with no torch and no I/O. Everything here needs no downloaded nltk data, so the product runs offline.
A message's features are its stemmed words plus its adjacent stemmed word pairs ("bigrams"); the pairs tell "card
arrive" from "arrive card"-free bags and were worth about two points of accuracy on BANKING77.
"""

from __future__ import annotations

import re
import sys
import unicodedata
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from itertools import pairwise, repeat
from typing import Any

import numpy as np
import regex

from training.defaults import DEFAULT_STEMMER, STEMMERS
from training.errors import UserError


def _import_stemmers() -> tuple[type, type]:
    """nltk's Porter and Snowball stemmers, imported without letting nltk's package pull in scikit-learn and SciPy.

    nltk's `__init__` imports its scikit-learn classifier wrapper, and with it SciPy: about a hundred MB and a
    thousand modules in every serving process, which needs nothing from nltk but a stemmer (docs/design.md).
    While nltk loads, the two are marked unavailable (a `None` entry in sys.modules makes their import fail, which
    nltk handles); they import normally afterwards. Where they are already loaded, nothing is blocked.
    """
    blocked = [name for name in ("sklearn", "scipy") if name not in sys.modules]
    for name in blocked:
        sys.modules[name] = None  # type: ignore[assignment]
    try:
        from nltk.stem.porter import PorterStemmer
        from nltk.stem.snowball import SnowballStemmer
    finally:
        for name in blocked:
            if sys.modules.get(name, 0) is None:
                del sys.modules[name]
    return PorterStemmer, SnowballStemmer


PorterStemmer, SnowballStemmer = _import_stemmers()

# Words are runs of word characters and combining marks. The standard library's `\w` leaves out combining marks,
# which splits Bengali "ভালো" into "ভ", "ল" and Hindi "नमस्ते" into "नमस", "त"; the `regex` module knows Unicode
# properties. ASCII text, most messages, takes the standard library's pattern: the same tokens, 1.7 times faster.
# A word neither starts nor ends with an invisible (default-ignorable) character: the zero-width joiner, variation
# selectors and the Hangul filler count as word characters, so a message of nothing but them, or "hello" with a
# trailing joiner, would otherwise be a word of its own. Inside a word they stay (Persian and Indic spelling use them).
_ASCII_WORD = re.compile(r"\w+")
_WORD = regex.compile(r"[[\w\p{M}]--\p{DI}](?:[\w\p{M}]*[[\w\p{M}]--\p{DI}])?", regex.V1)
_FORMAT_2_WORD = regex.compile(r"[\w\p{M}]+")  # format-2 checkpoints' words: invisible edges included
_INVISIBLE = regex.compile(r"\p{DI}+")
BIGRAM_JOINER = " "

# The script each stemmer was made for, as Unicode names its letters; every other stemmer works on Latin letters.
_STEMMER_SCRIPTS = {"arabic": "ARABIC", "russian": "CYRILLIC"}
_LEGACY_STEMMER_NAMES = {"nltk PorterStemmer": DEFAULT_STEMMER}  # what format-1 checkpoints recorded


class StemmerError(UserError, ValueError):
    """An unknown stemmer or tokenizer name (a typo on the command line, or a checkpoint from another version)."""


def _in_script(word: str, script: str) -> bool:
    """True when every letter of `word` belongs to `script` (digits, marks and underscores belong to all)."""
    if script == "LATIN" and word.isascii():
        return True
    return all(not ch.isalpha() or unicodedata.name(ch, "").startswith(script) for ch in word)


class _StemCache(dict):
    """word -> stem, computed on first use; a bounded dict, because a stemmer is slow per word and a vocabulary
    repeats a few thousand words endlessly. A missing key costs one `__missing__` call; a hit is a plain dict lookup,
    faster than `functools.lru_cache`'s bookkeeping on the per-request path. Words of another script than the
    stemmer's are their own stem: Porter's rules would not know what to do with "книги" or "ভালো"."""

    limit = 100_000

    def __init__(self, stem: Callable[[str], str], script: str) -> None:
        super().__init__()
        self._stem, self._script = stem, script

    def __missing__(self, word: str) -> str:
        if len(self) >= self.limit:  # strangers' typos must not grow it forever
            self.clear()
        result = self[word] = self._stem(word) if _in_script(word, self._script) else word
        return result


_STEM_FUNCTIONS: dict[str, Callable[[str], str]] = {}


def _canonical(name: Any, legacy: dict[str, str], known: Iterable[str], what: str) -> str:
    """A recorded or typed setting's current name; StemmerError for one this version does not have."""
    name = legacy.get(name, name) if isinstance(name, str) else name
    if name not in known:
        raise StemmerError(f"unknown {what} {name!r} (known: {', '.join(known)})")
    return name


def stemmer_name(name: Any) -> str:
    """The canonical name of a stemmer setting (format-1 checkpoints recorded nltk's class name)."""
    return _canonical(name, _LEGACY_STEMMER_NAMES, STEMMERS, "stemmer")


def get_stemmer(name: str = DEFAULT_STEMMER) -> Callable[[str], str]:
    """word -> stem for a stemmer setting; one shared cache per stemmer. "none" keeps every word as it is."""
    name = stemmer_name(name)
    if name not in _STEM_FUNCTIONS:
        if name == "none":
            _STEM_FUNCTIONS[name] = str  # str(word) is word: the identity, at C speed
        else:
            algorithm = PorterStemmer() if name == DEFAULT_STEMMER else SnowballStemmer(name)
            cache = _StemCache(algorithm.stem, _STEMMER_SCRIPTS.get(name, "LATIN"))
            _STEM_FUNCTIONS[name] = cache.__getitem__  # a bound method, so `map(stem, words)` stays in C
    return _STEM_FUNCTIONS[name]


def tokenize(text: str) -> list[str]:
    """Lower-cased word tokens in Unicode normal form C; punctuation and whitespace of any script are dropped."""
    if text.isascii():
        return _ASCII_WORD.findall(text.lower())
    return _WORD.findall(unicodedata.normalize("NFC", text.lower()))


def without_invisible(text: str) -> str:
    """`text` without its default-ignorable characters (zero-width spaces and joiners, soft hyphens, bidi controls):
    the form in which two names that look the same compare equal."""
    return text if text.isascii() else _INVISIBLE.sub("", text)


def _format_1_tokenize(text: str) -> list[str]:
    """The tokenizer of format-1 checkpoints (the standard library's `\\w+`), whose vocabularies it built."""
    return _ASCII_WORD.findall(text.lower())


def _format_2_tokenize(text: str) -> list[str]:
    """The tokenizer of format-2 checkpoints, whose words could start or end with an invisible character (a model
    that learned "thanks ❤️" has the feature "\ufe0f", which the current tokenizer never produces)."""
    if text.isascii():
        return _ASCII_WORD.findall(text.lower())
    return _FORMAT_2_WORD.findall(unicodedata.normalize("NFC", text.lower()))


# What checkpoints record: runs of word characters and combining marks with no invisible edges, NFC, lower-cased.
TOKENIZER = "unicode-words-2"
_TOKENIZERS = {TOKENIZER: tokenize, "unicode-words": _format_2_tokenize, "format-1-words": _format_1_tokenize}
_LEGACY_TOKENIZER_NAMES = {r"regular expression \w+ (nltk RegexpTokenizer's rule), lower-cased": "format-1-words"}

Words = Callable[[str], list[str]]  # text -> its stemmed words
_ANALYZERS: dict[tuple[str, str], Words] = {}


def tokenizer_name(name: Any) -> str:
    """The canonical name of a recorded tokenizer (format-1 checkpoints recorded a description)."""
    return _canonical(name, _LEGACY_TOKENIZER_NAMES, _TOKENIZERS, "tokenizer")


def analyzer(stemmer: str = DEFAULT_STEMMER, tokenizer: str = TOKENIZER) -> Words:
    """text -> stemmed words, exactly as a checkpoint's vocabulary was built: its tokenizer and its stemmer.

    A model must read messages the way it read its patterns; an old checkpoint keeps its old tokenizer.
    """
    key = (stemmer_name(stemmer), tokenizer_name(tokenizer))
    if key not in _ANALYZERS:
        stem, split = get_stemmer(key[0]), _TOKENIZERS[key[1]]

        def words(text: str) -> list[str]:
            return list(map(stem, split(text)))

        _ANALYZERS[key] = words
    return _ANALYZERS[key]


# The default analyzer: stems("Where's my card arriving?") -> ["where", "s", "my", "card", "arriv"].
stems: Words = analyzer()


def features(text: str, bigrams: bool = True, analyze: Words = stems) -> list[str]:
    """The stems of `text` and, when `bigrams` is set, each adjacent pair of stems joined by a space."""
    words = analyze(text)
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


def encode(text: str, index: Mapping[str, int], bigrams: bool = True, analyze: Words = stems) -> list[int]:
    """Unique column ids of the known features in `text`, in no particular order; unknown features are ignored.

    Stems and stem pairs only: what `bag_of_words` shows. Requests go through `training.featurize.Encoder`, which also
    knows a checkpoint's character n-grams and caches each word. It is `ids_of(features(text))` without the feature
    list or the sort (a bag's sum does not depend on the order).
    """
    words = analyze(text)
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


def bag_of_words(text: str, index: Mapping[str, int], bigrams: bool = True, analyze: Words = stems) -> np.ndarray:
    """Dense 0/1 vector of `text` over the vocabulary: the textbook view of what the network reads."""
    vector = np.zeros(len(index), dtype=np.float32)
    vector[encode(text, index, bigrams, analyze)] = 1.0
    return vector
