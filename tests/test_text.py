import numpy as np

from training import text


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
