import unicodedata

import numpy as np
import pytest

from training import defaults, text


def test_tokenize_lowercases_and_drops_punctuation():
    assert text.tokenize("Hello, World!! Where's my CARD?") == ["hello", "world", "where", "s", "my", "card"]


def test_stems_fold_word_forms_together():
    assert text.stems("Arriving arrived arrives") == ["arriv", "arriv", "arriv"]


def test_features_are_stems_plus_adjacent_pairs():
    assert text.features("Where is my card?") == ["where", "is", "my", "card", "where is", "is my", "my card"]
    assert text.features("Where is my card?", bigrams=False) == ["where", "is", "my", "card"]


def test_known_sentence_gives_known_vector():
    vocabulary = text.build_vocabulary([text.features("hello there"), text.features("card arrived")])
    assert vocabulary == ["arriv", "card", "card arriv", "hello", "hello there", "there"]
    index = text.index_vocabulary(vocabulary)
    vector = text.bag_of_words("Hello!! has my card arrived?", index)
    np.testing.assert_array_equal(vector, np.array([1, 1, 1, 1, 0, 0], dtype=np.float32))
    assert sorted(text.encode("Hello!! has my card arrived?", index)) == [0, 1, 2, 3]


def test_unknown_and_repeated_words_are_ignored_and_counted_once():
    index = text.index_vocabulary(["card", "hello"])
    assert text.encode("card card CARD unknownword", index) == [0]
    assert text.encode("", index) == []
    assert text.encode("!!! ???", index) == []


def test_encode_matches_ids_of_features():
    index = text.index_vocabulary(text.build_vocabulary([text.features("a b c d"), text.features("c d e")]))
    for message in ["a b", "d e f", "c d c d", "x"]:
        assert sorted(text.encode(message, index)) == text.ids_of(text.features(message), index)


def test_min_count_drops_rare_features():
    lists = [text.features("card arrived"), text.features("card lost")]
    assert text.build_vocabulary(lists, min_count=2) == ["card"]


def test_other_scripts_and_emoji_do_not_break_tokenizing():
    assert text.tokenize("Привет мир 😀 東京") == ["привет", "мир", "東京"]


def test_words_with_combining_marks_stay_one_token():
    """Python's `\\w` leaves out combining marks: a plain `\\w+` splits Bengali "ভালো" into "ভ" and "ল"."""
    assert text.tokenize("আমি ভালো আছি।") == ["আমি", "ভালো", "আছি"]
    assert text.tokenize("नमस्ते, आप कैसे हैं?") == ["नमस्ते", "आप", "कैसे", "हैं"]
    assert text.tokenize("Xin chào! Tiếng Việt") == ["xin", "chào", "tiếng", "việt"]
    assert text.tokenize("مرحبا بكم") == ["مرحبا", "بكم"]


def test_decomposed_text_gives_the_same_tokens_as_composed():
    composed = "Tiếng Việt rất đẹp"
    decomposed = unicodedata.normalize("NFD", composed)
    assert decomposed != composed
    assert text.tokenize(decomposed) == text.tokenize(composed) == ["tiếng", "việt", "rất", "đẹp"]


def test_stemmers_leave_words_of_other_scripts_alone():
    assert text.analyzer("porter")("running books ভালো книги") == ["run", "book", "ভালো", "книги"]
    assert text.analyzer("russian")("running книги читать") == ["running", "книг", "чита"]
    assert text.analyzer("none")("Running books") == ["running", "books"]
    assert text.analyzer("spanish")("corriendo libros") == ["corr", "libr"]
    assert text.features("книги читать", analyze=text.analyzer("russian")) == ["книг", "чита", "книг чита"]


def test_format_1_checkpoints_keep_their_tokenizer():
    """Their vocabularies hold the pieces the old `\\w+` made of Bengali words; messages must be cut the same way."""
    old = text.analyzer("nltk PorterStemmer", r"regular expression \w+ (nltk RegexpTokenizer's rule), lower-cased")
    assert old("আমি ভালো আছি") == ["আম", "ভ", "ল", "আছ"]
    assert text.stems("আমি ভালো আছি") == ["আমি", "ভালো", "আছি"]
    with pytest.raises(text.StemmerError, match="unknown tokenizer"):
        text.analyzer("porter", "whitespace")
    with pytest.raises(text.StemmerError, match="unknown stemmer"):
        text.analyzer(["porter"])


def test_stemmer_names_are_checked_and_old_checkpoints_names_understood():
    assert text.stemmer_name("nltk PorterStemmer") == "porter"  # what format-1 checkpoints recorded
    assert text.stemmer_name("german") == "german"
    with pytest.raises(text.StemmerError, match="unknown stemmer 'klingon'"):
        text.get_stemmer("klingon")


def test_the_stemmer_list_is_exactly_what_nltk_offers():
    """training.defaults writes the list out so `chatbot --help` need not import nltk: it must not drift from nltk."""
    from nltk.stem.snowball import SnowballStemmer

    assert set(defaults.STEMMERS) == {"porter", "none", *SnowballStemmer.languages}
    for name in defaults.STEMMERS:
        assert text.get_stemmer(name)("running")


def test_invisible_characters_alone_are_no_words():
    """The zero-width joiner, a variation selector and the Hangul filler count as word characters in Unicode's `\\w`:
    alone they must not make a word that a pattern and an invisible message could share."""
    for invisible in ["\u200d", "\u200c\u200d", "\ufe0f", "\u3164", "\u200b", "\u034f", "\u00ad"]:
        assert text.tokenize(invisible) == []
        assert text.tokenize(f"{invisible} {invisible}") == []


def test_invisible_characters_at_the_edges_of_a_word_are_not_part_of_it():
    assert text.tokenize("hello\u200d") == text.tokenize("\u200dhello") == ["hello"]
    assert text.tokenize("\u200dhi\u200c there\ufe0f") == ["hi", "there"]
    assert text.stems("greeting\u200d friends") == text.stems("greeting friends")


def test_joiners_inside_a_word_stay_part_of_its_spelling():
    """Persian writes the zero-width non-joiner inside words; Indic scripts use the joiner there."""
    assert text.tokenize("می\u200cخواهم") == ["می\u200cخواهم"]
    assert text.tokenize("क्\u200dष") == ["क्\u200dष"]


def test_without_invisible_removes_only_default_ignorable_characters():
    assert text.without_invisible("greet\u200bing\u200d\u2066") == "greeting"
    assert text.without_invisible("café ভালো") == "café ভালো"


def test_format_2_checkpoints_keep_the_tokenizer_their_vocabulary_was_built_with():
    """Format 2 recorded "unicode-words", whose words could end in an invisible character: a model trained on
    "thanks ❤️" learned the feature "\ufe0f" and must still find it; new checkpoints record the newer tokenizer."""
    assert text.analyzer("none", "unicode-words")("thanks ❤️") == ["thanks", "\ufe0f"]
    assert text.analyzer("none", text.TOKENIZER)("thanks ❤️") == ["thanks"]
    assert text.TOKENIZER != "unicode-words"
