import csv
import json

import pytest
from click.testing import CliRunner

from chatbot.cli import main
from training.evaluation import error_rows, evaluate_predictions, format_summary, most_confused
from training.report_plots import plot_confidence_histogram, plot_confusion

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

# Checked by hand: threshold 0.5, so the rows with confidence 0.4, 0.3 and 0.2 fall back.
#   row  gold  predicted  confidence  right  fallback
#   0    a     a          0.90        yes    no
#   1    a     a          0.40        yes    yes   <- a right answer lost
#   2    a     b          0.80        no     no
#   3    b     b          0.70        yes    no
#   4    b     a          0.30        no     yes   <- a wrong answer caught
#   5    c     c          0.95        yes    no
#   6    oos   a          0.20        -      yes   <- out of scope, declined
#   7    oos   b          0.90        -      no    <- out of scope, answered
# In scope: 4 of 6 right; 3 of 6 right and answered; 2 of 6 fall back; 3 of the 4 answers are right.
# a: predicted a on rows 0, 1, 4 -> precision 2/3; gold a on rows 0, 1, 2 -> recall 2/3; F1 2/3.
# b: predicted b on rows 2, 3 -> precision 1/2; gold b on rows 3, 4 -> recall 1/2; F1 1/2.  c: 1, 1, 1.
# Macro F1 = (2/3 + 1/2 + 1) / 3 = 13/18.
GOLD = ["a", "a", "a", "b", "b", "c", "oos", "oos"]
PREDICTED = ["a", "a", "b", "b", "a", "c", "a", "b"]
CONFIDENCE = [0.9, 0.4, 0.8, 0.7, 0.3, 0.95, 0.2, 0.9]
FALLBACK = [c < 0.5 for c in CONFIDENCE]


@pytest.fixture
def runner():
    return CliRunner()


@pytest.fixture(scope="module")
def example():
    return evaluate_predictions(GOLD, PREDICTED, CONFIDENCE, FALLBACK, known_tags=["a", "b", "c"], threshold=0.5)


def test_headline_figures_match_the_hand_checked_example(example):
    assert example["n"] == 8 and example["n_in_scope"] == 6
    assert example["accuracy"] == pytest.approx(4 / 6)
    assert example["accuracy_with_fallback_as_wrong"] == pytest.approx(3 / 6)
    assert example["fallback_rate"] == pytest.approx(2 / 6)
    assert example["answered_accuracy"] == pytest.approx(3 / 4)
    assert example["macro_f1"] == pytest.approx(13 / 18)
    assert example["threshold"] == 0.5


def test_fallback_trade_off_matches_the_hand_checked_example(example):
    assert (example["right_answers"], example["wrong_answers"]) == (4, 2)
    assert example["right_lost_to_fallback"] == 1 and example["share_of_right_lost"] == pytest.approx(1 / 4)
    assert example["wrong_caught_by_fallback"] == 1 and example["share_of_wrong_caught"] == pytest.approx(1 / 2)
    assert example["median_confidence_right"] == pytest.approx((0.7 + 0.9) / 2)
    assert example["median_confidence_wrong"] == pytest.approx((0.8 + 0.3) / 2)


def test_out_of_scope_rows_are_scored_apart(example):
    assert example["out_of_scope"] == {"n": 2, "declined": 1, "recall": 0.5}


def test_per_intent_figures_match_the_hand_checked_example(example):
    rows = {r["intent"]: r for r in example["per_intent"]}
    assert list(rows) == ["a", "b", "c"]
    assert rows["a"] == pytest.approx({"intent": "a", "precision": 2 / 3, "recall": 2 / 3, "f1": 2 / 3, "support": 3})
    assert rows["b"] == pytest.approx({"intent": "b", "precision": 0.5, "recall": 0.5, "f1": 0.5, "support": 2})
    assert rows["c"] == {"intent": "c", "precision": 1.0, "recall": 1.0, "f1": 1.0, "support": 1}
    assert example["most_confused"] == [
        {"gold": "a", "predicted": "b", "count": 1},
        {"gold": "b", "predicted": "a", "count": 1},
    ]


def test_report_is_json_ready(example):
    assert json.loads(json.dumps(example)) == example


def test_unknown_gold_labels_are_counted_wrong_and_named():
    report = evaluate_predictions(
        ["a", "zzz", "zzz", "b"], ["a", "a", "b", "b"], [0.9] * 4, [False] * 4, ["a", "b"], 0.5
    )
    assert report["unknown_labels"] == {"rows": 2, "names": ["zzz"]}
    assert report["accuracy"] == 0.5
    assert report["accuracy_on_known_labels"] == 1.0
    assert [r["intent"] for r in report["per_intent"]] == ["a", "b", "zzz"]
    assert any(
        "Labels the model does not know: 1 (2 messages, always wrong): zzz" in line for line in format_summary(report)
    )


def test_a_predicted_oos_intent_counts_as_declining():
    report = evaluate_predictions(["oos", "a"], ["oos", "oos"], [0.9, 0.9], [False, False], ["a", "oos"], 0.5)
    assert report["out_of_scope"] == {"n": 1, "declined": 1, "recall": 1.0}
    assert report["fallback_rate"] == 1.0 and report["accuracy"] == 0.0


def test_only_out_of_scope_rows_give_no_in_scope_figures_not_zero():
    report = evaluate_predictions(["", "oos"], ["a", "a"], [0.1, 0.9], [True, False], ["a"], 0.5)
    assert report["accuracy"] is None and report["macro_f1"] is None and report["per_intent"] == []
    assert "Accuracy (top intent):" in format_summary(report)[1] and format_summary(report)[1].endswith("n/a")


def test_mismatched_lengths_are_refused():
    with pytest.raises(ValueError, match="same length"):
        evaluate_predictions(["a"], ["a", "b"], [0.5], [False], ["a"], 0.5)


def test_error_rows_are_the_mistakes_most_confident_first():
    texts = [f"m{i}" for i in range(len(GOLD))]
    rows = error_rows(texts, GOLD, PREDICTED, CONFIDENCE, FALLBACK)
    assert [(r["text"], r["gold"], r["predicted"], r["fallback"]) for r in rows] == [
        ("m7", "oos", "b", False),
        ("m2", "a", "b", False),
        ("m4", "b", "a", True),
    ]


def test_most_confused_breaks_ties_by_name():
    pairs = most_confused(["x", "x", "y", "y", "z"], ["y", "y", "z", "x", "x"], top=2)
    assert pairs == [{"gold": "x", "predicted": "y", "count": 2}, {"gold": "y", "predicted": "x", "count": 1}]


def assert_png(path, min_bytes=5_000):
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE
    assert len(data) > min_bytes


def test_confusion_plot_with_many_intents_is_a_png(tmp_path):
    gold = [f"intent_{i % 30}" for i in range(300)]
    predicted = [g if i % 7 else f"intent_{(i + 1) % 30}" for i, g in enumerate(gold)]
    assert_png(plot_confusion(gold, predicted, tmp_path / "confusion.png"), min_bytes=30_000)


def test_confusion_plot_without_mistakes_says_so(tmp_path):
    assert_png(plot_confusion(["a", "b"], ["a", "b"], tmp_path / "sub" / "confusion.png"), min_bytes=2_000)


def test_confidence_histogram_is_a_png(tmp_path):
    path = plot_confidence_histogram([0.9, 0.2, 0.6, 0.1], [True, False, True, False], 0.3, tmp_path / "h.png", [0.1])
    assert_png(path)


def write_csv(path, rows, header=("text", "label")):
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def test_evaluate_on_intents_json_writes_every_report_file(runner, trained_model, intents_path, tmp_path):
    report_dir = tmp_path / "report"
    result = runner.invoke(
        main, ["evaluate", str(intents_path), "--model", str(trained_model), "--report-dir", str(report_dir)]
    )
    assert result.exit_code == 0, result.output
    assert f"note: {trained_model} was trained on {intents_path}: these figures show what it memorised" in result.stderr
    assert "Accuracy (top intent):" in result.output and "Macro F1:" in result.output
    assert "Per intent (top intent, fallbacks ignored), worst F1 first:" in result.output
    assert sorted(p.name for p in report_dir.iterdir()) == [
        "confidence_histogram.png",
        "confusion_matrix.png",
        "errors.csv",
        "report.json",
    ]
    report = json.loads((report_dir / "report.json").read_text())
    assert 0 <= report["accuracy"] <= 1 and report["n"] == 240
    for key in ("accuracy_with_fallback_as_wrong", "fallback_rate", "macro_f1", "threshold"):
        assert isinstance(report[key], float)
    assert len(report["per_intent"]) == 20
    assert_png(report_dir / "confusion_matrix.png", min_bytes=2_000)
    assert_png(report_dir / "confidence_histogram.png")
    with (report_dir / "errors.csv").open(encoding="utf-8", newline="") as handle:
        errors = list(csv.DictReader(handle))
    assert len(errors) == report["wrong_answers"]
    assert (report_dir / "errors.csv").read_text().splitlines()[0] == "text,gold,predicted,confidence,fallback"


def test_evaluate_csv_with_out_of_scope_and_unknown_labels(runner, trained_model, tmp_path):
    data = write_csv(
        tmp_path / "test.csv",
        [
            ("hello there", "greeting"),
            ("thank you very much", "thanks"),
            ("what is the capital of Peru", "oos"),
            ("sing me the national anthem", ""),
            ("book me a flight to Lima", "out_of_scope"),
            ("transfer money to my savings", "bank_transfer"),
        ],
    )
    report_dir = tmp_path / "r"
    result = runner.invoke(
        main, ["evaluate", str(data), "--model", str(trained_model), "--report-dir", str(report_dir)]
    )
    assert result.exit_code == 0, result.output
    assert "Messages: 6 (3 in scope, 3 out of scope)" in result.output
    assert "Out-of-scope messages declined:" in result.output
    assert "Labels the model does not know: 1 (1 messages, always wrong): bank_transfer" in result.output
    report = json.loads((report_dir / "report.json").read_text())
    assert report["out_of_scope"]["n"] == 3
    assert report["unknown_labels"] == {"rows": 1, "names": ["bank_transfer"]}
    assert_png(report_dir / "confidence_histogram.png")


def test_evaluate_csv_of_out_of_scope_rows_only_still_writes_the_report(runner, trained_model, tmp_path):
    data = write_csv(tmp_path / "oos.csv", [("what is the capital of Peru", "oos"), ("sing a song", "")])
    report_dir = tmp_path / "r"
    result = runner.invoke(
        main, ["evaluate", str(data), "--model", str(trained_model), "--report-dir", str(report_dir)]
    )
    assert result.exit_code == 0, result.output
    assert "Messages: 2 (0 in scope, 2 out of scope)" in result.output
    assert "Accuracy (top intent):" in result.output and "note:" not in result.output
    assert json.loads((report_dir / "report.json").read_text())["accuracy"] is None
    assert_png(report_dir / "confusion_matrix.png", min_bytes=2_000)
    assert_png(report_dir / "confidence_histogram.png", min_bytes=2_000)


def test_evaluate_threshold_option_overrides_the_stored_one(runner, trained_model, intents_path):
    result = runner.invoke(main, ["evaluate", str(intents_path), "--model", str(trained_model), "--threshold", "1"])
    assert result.exit_code == 0, result.output
    assert "Fallback rate (threshold 1.000):    100.0%" in result.output


def test_evaluate_csv_with_other_column_names(runner, trained_model, tmp_path):
    data = write_csv(tmp_path / "t.csv", [("hi", "greeting")], header=("utterance", "category"))
    args = ["evaluate", str(data), "--model", str(trained_model)]
    result = runner.invoke(main, args)
    assert result.exit_code == 1
    assert f"Error: {data}: no column 'text'; the header has 'utterance', 'category'; " in result.output
    result = runner.invoke(main, [*args, "--text-column", "utterance", "--label-column", "category"])
    assert result.exit_code == 0, result.output


def test_evaluate_errors_are_one_line(runner, trained_model, tmp_path, intents_path):
    missing_model = tmp_path / "none.pt"
    result = runner.invoke(main, ["evaluate", str(intents_path), "--model", str(missing_model)])
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert str(missing_model) in result.output
    result = runner.invoke(main, ["evaluate", str(tmp_path / "none.csv"), "--model", str(trained_model)])
    assert result.exit_code == 1 and "none.csv: file not found" in result.output
    empty_text = write_csv(tmp_path / "e.csv", [("hi", "greeting"), ("", "thanks")])
    result = runner.invoke(main, ["evaluate", str(empty_text), "--model", str(trained_model)])
    assert result.exit_code == 1 and f"Error: {empty_text}: line 3: empty text" in result.output


@pytest.mark.slow
def test_banking77_import_train_evaluate_end_to_end(runner, banking77, tmp_path):
    intents, model, report_dir = tmp_path / "b77.json", tmp_path / "b77.pt", tmp_path / "report"
    steps = [
        ["import-csv", str(banking77 / "train.csv"), "--out", str(intents), "--label-column", "category"],
        ["train", "--intents", str(intents), "--model", str(model)],
        ["evaluate", str(banking77 / "test.csv"), "--model", str(model), "--label-column", "category"],
    ]
    for step in steps[:-1]:
        assert runner.invoke(main, step).exit_code == 0
    result = runner.invoke(main, [*steps[-1], "--report-dir", str(report_dir)])
    assert result.exit_code == 0, result.output
    report = json.loads((report_dir / "report.json").read_text())
    assert report["n"] == 3080 and len(report["per_intent"]) == 77
    assert report["accuracy"] > 0.90  # 91.7 % at seed 0; LinearSVC's 89.7 % is the bar to stay above
    assert_png(report_dir / "confusion_matrix.png", min_bytes=100_000)
