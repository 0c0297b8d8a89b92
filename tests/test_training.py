import math

import pytest
import torch

from training.checkpoint import load_checkpoint
from training.classifier import IntentClassifier
from training.fallback import choose_threshold
from training.house_prices import exact_prediction, fit_house_prices
from training.intents_reader import load_intents, parse_intents
from training.loop import TrainConfig, auto_epochs, effective_batch_size
from training.model import IntentNet, ModelConfig
from training.pipeline import split_examples, train_model


def small_intents():
    return parse_intents(
        {
            "intents": [
                {"tag": "greet", "patterns": ["hi", "hello", "hey there", "good morning"], "responses": ["Hi!"]},
                {"tag": "bye", "patterns": ["bye", "see you later", "goodbye", "farewell"], "responses": ["Bye!"]},
                {
                    "tag": "card",
                    "patterns": ["my card is lost", "card stolen", "lost card", "card gone"],
                    "responses": ["Card!"],
                },
            ]
        }
    )


def test_one_member_is_the_design_network():
    """Linear(n->128), ReLU, Dropout(0.5), Linear(128->64), ReLU, Dropout(0.5), Linear(64->k) on a 0/1 bag."""
    torch.manual_seed(0)
    net = IntentNet(ModelConfig(n_features=10, n_intents=4, members=1)).eval()
    bag = torch.zeros(1, 10)
    bag[0, [1, 4, 7]] = 1.0
    h = torch.relu(bag @ net.fc1.weight + net.fc1_bias)
    h = torch.relu(h @ net.fc2_weight[0] + net.fc2_bias[0])
    expected = h @ net.fc3_weight[0] + net.fc3_bias[0]
    logits = net(torch.tensor([1, 4, 7]), torch.tensor([0]))
    assert logits.shape == (1, 1, 4)
    torch.testing.assert_close(logits[0], expected)
    assert net.fc1.weight.shape == (10, 128) and net.fc2_weight.shape == (1, 128, 64)


def test_same_seed_gives_identical_weights_and_predictions():
    first = train_model(small_intents(), TrainConfig(seed=7)).checkpoint
    second = train_model(small_intents(), TrainConfig(seed=7)).checkpoint
    third = train_model(small_intents(), TrainConfig(seed=8)).checkpoint
    for key, tensor in first["state_dict"].items():
        assert torch.equal(tensor, second["state_dict"][key]), key
    assert not torch.equal(first["state_dict"]["fc2_weight"], third["state_dict"]["fc2_weight"])
    messages = ["hello friend", "my card", "see you"]
    torch.testing.assert_close(
        IntentClassifier(first).probabilities(messages),
        IntentClassifier(second).probabilities(messages),
        rtol=0,
        atol=0,
    )


def test_trained_model_answers_the_shipped_patterns(classifier, intents_path):
    texts, labels = load_intents(intents_path).examples()
    predictions = classifier.predict_batch(texts)
    accuracy = sum(p.intent == label for p, label in zip(predictions, labels)) / len(labels)
    assert accuracy >= 0.95


def test_answers_to_new_wordings(classifier):
    assert classifier.predict("hello!").intent == "greeting"
    assert classifier.predict("how can I retrain the bot?").intent == "retrain"
    assert classifier.predict("thanks a lot").intent == "thanks"


def test_prediction_fields(classifier):
    answer = classifier.predict("hi there")
    assert answer.intent == "greeting" and not answer.fallback
    assert answer.response in classifier.responses["greeting"]
    assert 0 < answer.confidence <= 1
    assert answer.alternatives[0] == ("greeting", answer.confidence)
    assert len(answer.alternatives) == 3
    assert answer.alternatives[0][1] >= answer.alternatives[1][1] >= answer.alternatives[2][1]
    assert answer.to_dict()["alternatives"][0] == {"intent": "greeting", "confidence": round(answer.confidence, 6)}


def test_message_with_no_known_word_falls_back(classifier):
    answer = classifier.predict("qwxz vbnm")
    assert answer.fallback
    assert answer.response in classifier.fallback_responses


def test_threshold_override(classifier):
    assert classifier.predict("hello", threshold=1.0).fallback
    assert not classifier.predict("hello", threshold=0.0).fallback


def test_batch_and_single_predictions_agree(classifier):
    messages = ["hi", "tell me a joke", "", "how accurate are you", "ok"]
    batch = classifier.predict_batch(messages)
    for message, answer in zip(messages, batch):
        single = classifier.predict(message)
        assert (single.intent, single.fallback) == (answer.intent, answer.fallback)
        assert single.confidence == pytest.approx(answer.confidence, abs=1e-6)


def test_threshold_keeps_95_percent_of_right_answers():
    confidences = [0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1, 0.05] * 2 + [0.99]
    correct = [True] * 20 + [False]
    threshold = choose_threshold(confidences, correct)
    assert threshold == 0.05
    assert choose_threshold([0.9], [False]) == pytest.approx(0.3)


def test_validation_split_is_stratified_or_explained():
    labels = ["a"] * 10 + ["b"] * 10 + ["c"] * 10
    split = split_examples(labels, 0.1, seed=0)
    assert sorted({labels[i] for i in split.val}) == ["a", "b", "c"]
    assert len(split.val) == 3 and len(split.train) == 27
    alone = split_examples(["a", "b", "c"], 0.1, seed=0)
    assert alone.val == [] and alone.note == "no validation split: every intent has a single pattern"


def test_intents_with_one_pattern_are_trained_on_and_the_others_give_one_pattern_each():
    """Real files mix intents of one, two and three patterns: hold out one pattern of each intent that can spare one."""
    labels = ["a", "a", "b", "c", "c", "c", "d"]
    split = split_examples(labels, 0.1, seed=0)
    assert sorted(labels[i] for i in split.val) == ["a", "c"]
    assert sorted(split.train + split.val) == list(range(7))
    assert {labels[i] for i in split.train} == {"a", "b", "c", "d"}  # every intent is still learned
    assert "2 intent(s) with a single pattern are trained on, never held out" in split.note
    assert split_examples(labels, 0.1, seed=0) == split  # the seed decides which pattern
    assert split_examples(labels, 0.0, seed=0).note == "validation switched off (--val-fraction 0)"


def test_epoch_budget_adapts_to_data_size():
    assert auto_epochs(9000, 256) == 10
    assert auto_epochs(240, 256) == 44
    assert effective_batch_size(240, 256) == 30
    assert effective_batch_size(10_000, 256) == 256


def test_small_data_is_refit_on_all_patterns(trained_model):
    ckpt = load_checkpoint(trained_model)
    assert ckpt["refit_on_all_data"] is True
    assert ckpt["metrics"]["train_patterns"] + ckpt["metrics"]["validation_patterns"] == ckpt["patterns"]


def test_house_price_loss_falls_and_prediction_is_sane():
    result, _ = fit_house_prices(epochs=100, lr=0.01)
    assert result.losses[-1] < result.losses[0] / 100
    assert all(b <= a * 1.0001 for a, b in zip(result.losses[9:], result.losses[10:]))
    assert 540 < result.prediction < 600
    assert exact_prediction() == pytest.approx(600.0)
    longer, _ = fit_house_prices(epochs=6000, lr=0.01)
    assert math.isclose(longer.prediction, 600.0, abs_tol=1.0)


def test_temperature_is_fitted_on_validation_and_sharpens_underconfident_models():
    from training.fallback import calibrate, fit_temperature

    # Right 90 % of the time but only 50 % confident: the fitted temperature must sharpen (T < 1).
    probs = torch.tensor([[0.5, 0.25, 0.25]] * 10)
    gold = torch.tensor([0] * 9 + [1])
    temperature = fit_temperature(probs, gold)
    assert temperature < 1
    calibrated = calibrate(probs, temperature)
    assert 0.8 < calibrated[0, 0].item() < 0.95
    torch.testing.assert_close(calibrate(probs, 1.0), probs)


def test_checkpoint_stores_the_fitted_temperature(trained_model):
    fallback = load_checkpoint(trained_model)["fallback"]
    assert fallback["calibrated"] is True
    assert 0.1 <= fallback["temperature"] <= 10


def test_one_single_pattern_intent_does_not_shrink_a_large_validation_split():
    labels = [f"intent{i}" for i in range(20) for _ in range(50)] + ["lonely"]
    split = split_examples(labels, 0.1, seed=0)
    assert len(split.val) == 100  # 10 % of the 1,000 patterns that can be held out
    assert labels.index("lonely") in split.train
    assert split.note == (
        "validation on 100 of 1001 patterns (10%); 1 intent(s) with a single pattern are trained on, never held out"
    )
