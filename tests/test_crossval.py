import json
import re

import pytest
from click.testing import CliRunner

from chatbot.cli import main
from training.crossval import CrossValidationError, cross_validate, subset
from training.intents_reader import load_intents, parse_intents


@pytest.fixture
def runner():
    return CliRunner()


def small_intents(tmp_path, rare_patterns=2):
    """Three intents of six patterns and one with `rare_patterns`: enough to train in a fraction of a second."""
    words = {
        "greet": ["hi", "hello", "hey there", "good morning", "hello bot", "hi friend"],
        "bye": ["bye", "goodbye", "see you later", "farewell", "bye bye", "see you soon"],
        "thanks": ["thanks", "thank you", "many thanks", "thanks a lot", "cheers", "thank you so much"],
        "weather": ["is it raining", "what is the weather like", "will it be sunny"][:rare_patterns],
    }
    document = {"intents": [{"tag": t, "patterns": p, "responses": [t]} for t, p in words.items()]}
    path = tmp_path / "intents.json"
    path.write_text(json.dumps(document))
    return path


def test_cross_validate_shipped_intents_reports_every_fold(runner, intents_path):
    result = runner.invoke(main, ["cross-validate", "--intents", str(intents_path), "--folds", "3"])
    assert result.exit_code == 0, result.output
    assert "Cross-validating on 240 patterns, 20 intents, 3 folds" in result.output
    folds = re.findall(r"^fold (\d)/3: accuracy +([\d.]+)%.*\((\d+) scored, trained on (\d+) in", result.output, re.M)
    assert [(f[0], f[2], f[3]) for f in folds] == [("1", "80", "160"), ("2", "80", "160"), ("3", "80", "160")]
    assert re.search(r"^Accuracy [\d.]+% ± [\d.]+% over 3 folds; mean training time [\d.]+s$", result.output, re.M)


def test_intents_with_fewer_patterns_than_folds_are_named_trained_and_not_scored(runner, tmp_path):
    path = small_intents(tmp_path, rare_patterns=2)
    result = runner.invoke(main, ["cross-validate", "--intents", str(path), "--folds", "3"])
    assert result.exit_code == 0, result.output
    assert (
        "warning: 1 intent(s) have fewer than 3 patterns; they are trained on in every fold and never scored: weather"
    ) in result.stderr
    # 18 scorable patterns make 6 per fold; the two 'weather' patterns join every training part.
    assert result.output.count("(6 scored, trained on 14 in") == 3


def test_unscored_intents_are_returned_and_every_fold_trains_on_them(tmp_path):
    intents = load_intents(small_intents(tmp_path, rare_patterns=1))
    result = cross_validate(intents, folds=2, seed=1)
    assert result.unscored_intents == ["weather"]
    assert [(f.train_patterns, f.test_patterns) for f in result.folds] == [(10, 9), (10, 9)]
    assert 0 <= result.mean_accuracy <= 1 and result.std_accuracy >= 0 and result.mean_seconds > 0


def test_too_many_folds_for_any_intent_is_a_clear_error(runner, tmp_path):
    path = small_intents(tmp_path)
    result = runner.invoke(main, ["cross-validate", "--intents", str(path), "--folds", "7"])
    assert result.exit_code == 1
    assert (
        "Error: no intent has 7 patterns, so none can be scored in every fold; use --folds 6 or fewer" in result.output
    )
    assert "warning" not in result.output


def test_fewer_than_two_folds_is_refused(runner, tmp_path):
    result = runner.invoke(main, ["cross-validate", "--intents", str(small_intents(tmp_path)), "--folds", "1"])
    assert result.exit_code == 2 and "Invalid value for '--folds'" in result.output
    with pytest.raises(CrossValidationError, match="at least 2"):
        cross_validate(load_intents(small_intents(tmp_path)), folds=1)


def test_broken_intents_file_is_one_error_line(runner, tmp_path):
    broken = tmp_path / "broken.json"
    broken.write_text("{")
    result = runner.invoke(main, ["cross-validate", "--intents", str(broken)])
    assert result.exit_code == 1
    assert f"Error: {broken}: not valid JSON" in result.output


def test_subset_keeps_chosen_rows_in_order_and_drops_emptied_intents():
    intents = parse_intents(
        {
            "intents": [
                {"tag": "a", "patterns": ["a1", "a2", "a3"], "responses": ["A"], "context": "kept"},
                {"tag": "b", "patterns": ["b1", "b2"], "responses": ["B"]},
                {"tag": "c", "patterns": ["c1"], "responses": ["C"]},
            ]
        }
    )
    part = subset(intents, [0, 2, 5], "part")
    assert part.examples() == (["a1", "a3", "c1"], ["a", "a", "c"])
    assert part.intents[0].responses == ("A",) and part.intents[0].extra == {"context": "kept"}
    assert part.source == "part"
