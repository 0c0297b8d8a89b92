"""Features of format 3: character n-grams of words beside stems and stem pairs, and the share of known words."""

import pytest
import torch

from training import text
from training.classifier import IntentClassifier
from training.featurize import FeatureSet, char_grams
from training.intents_reader import parse_intents
from training.pipeline import train_model


def test_char_grams_mark_word_edges_and_skip_short_words():
    assert char_grams("light") == ["#<lig", "#ligh", "#ight", "#ght>"]
    assert char_grams("on") == []  # "<on>" is the word itself: its stem feature says the same
    assert char_grams("the", 3) == ["#<th", "#the", "#he>"]


def test_encoder_ids_are_the_known_features_and_share_counts_known_words():
    feature_set = FeatureSet(subwords=4)
    vocabulary = text.build_vocabulary([feature_set.features("turn on the lights"), feature_set.features("hello")])
    encoder = feature_set.encoder(vocabulary)
    index = text.index_vocabulary(vocabulary)
    for message in ("turn on the lights", "lights, lighting and lighter", "zzz qqq", "hello there"):
        ids, _ = encoder(message)
        assert sorted(ids) == text.ids_of(feature_set.features(message), index)
    assert encoder("turn on the lights")[1] == 1.0
    assert encoder("turn on the football")[1] == 0.75  # "football" is no pattern's word
    assert encoder("lightbulbs")[1] == 0.0 and encoder("lightbulbs")[0]  # unknown as a word, known by its n-grams
    assert encoder("?!") == ([], 0.0)


def test_subwords_recognise_a_word_form_no_pattern_used():
    document = {
        "intents": [
            {
                "tag": "lights",
                "patterns": ["switch the lamp on", "illuminate please", "brighten up"],
                "responses": ["ok"],
            },
            {
                "tag": "music",
                "patterns": ["play a song", "put on some tunes", "start the playlist"],
                "responses": ["ok"],
            },
        ]
    }
    intents = parse_intents(document)
    with_subwords = IntentClassifier(train_model(intents, subwords=True).checkpoint)
    without = IntentClassifier(train_model(intents, subwords=False).checkpoint)
    assert with_subwords.feature_set.subwords == 4 and without.feature_set.subwords is None
    # "brightness" stems to "bright", which no pattern has; its n-grams "#<bri", "#brig", ... it shares with "brighten"
    assert not without.encode("brightness")
    assert with_subwords.predict("brightness", threshold=0).intent == "lights"


def test_files_under_the_limit_train_with_subwords_and_record_them(classifier):
    assert classifier.feature_set.subwords == 4
    assert any(feature.startswith("#") for feature in classifier.vocabulary)


def test_confidence_is_weighed_by_the_share_of_known_words(classifier):
    plain = classifier.predict("hello")
    diluted = classifier.predict("hello zorblax quinfrim")  # two words no pattern has
    assert diluted.intent == plain.intent == "greeting"
    assert diluted.confidence == pytest.approx(plain.confidence / 3, rel=1e-5)
    assert classifier.probabilities(["hello zorblax quinfrim"]).max().item() == pytest.approx(plain.confidence)


def test_format_2_checkpoints_answer_as_they_did(tmp_path, intents_path):
    """A checkpoint without n-grams or the known-word weight: confidences are the plain top probability."""
    from training.checkpoint import load_checkpoint, save_checkpoint
    from training.intents_reader import load_intents

    checkpoint = train_model(load_intents(intents_path), subwords=False).checkpoint
    checkpoint["format_version"] = 2
    for key in ("subwords",):
        checkpoint["features"].pop(key)
    for key in ("scale_by_known_words", "out_of_scope_tag", "calibration"):
        checkpoint["fallback"].pop(key)
    old = IntentClassifier(load_checkpoint(save_checkpoint(checkpoint, tmp_path / "old.pt")))
    answer = old.predict("hello zorblax quinfrim")
    assert answer.intent == "greeting"
    assert answer.confidence == pytest.approx(old.probabilities(["hello zorblax quinfrim"]).max().item())
    assert not any(feature.startswith("#") for feature in old.vocabulary)
    assert torch.equal(old.model.fc1.weight, checkpoint["state_dict"]["fc1.weight"])
