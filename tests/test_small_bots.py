"""The small-bots benchmark follows its protocol (../shared/data/README.md, "Small bots") on a tiny HWU64-like set."""

from __future__ import annotations

import csv
import functools
import json
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))  # small_bots imports its neighbour `accuracy`

import small_bots as sb  # noqa: E402

from training.loop import TrainConfig  # noqa: E402

# Two intents per bot, each from its own scenario, so that every bot keeps out-of-scope messages once the first
# scenario of each other bot is lent as out-of-scope examples. Each intent has its own words.
WORDS = {
    "iot_lights": "lights lamp bulb brighten dim glow bedroom switch",
    "alarm_set": "alarm wake morning snooze clock ring early buzzer",
    "calendar_set": "meeting calendar appointment schedule dentist monday agenda reschedule",
    "email_send": "email inbox reply send address mail compose attachment",
    "music_likeness": "song favourite band love artist album melody lyrics",
    "play_radio": "radio station channel fm broadcast dial frequency podcast",
    "general_joke": "joke funny laugh humour pun hilarious giggle silly",
    "weather_query": "weather rain sunny forecast umbrella temperature cloudy snow",
}
BOT_OF = {
    "iot": "home", "alarm": "home", "calendar": "office", "email": "office",
    "music": "media", "play": "media", "general": "chat", "weather": "chat",
}  # fmt: skip
TRAIN_ROWS, TEST_ROWS = 12, 4  # per intent: the first 10 train rows are patterns, 2 train rows + 4 test rows in scope


def sentence(label: str, i: int) -> str:
    """Row `i` of an intent: a pair of its words (no pair twice), after a prefix every intent shares."""
    words = WORDS[label].split()
    first, second = i % len(words), (i + 1 + i // len(words)) % len(words)
    return f"{('please', 'can you', 'i want', 'hey')[i % 4]} {words[first]} {words[second]}"


def hwu_like() -> tuple[list[sb.Row], list[sb.Row]]:
    """(train, test), intents interleaved row by row as in a shuffled file."""
    train = [sb.Row(sentence(label, i), label) for i in range(TRAIN_ROWS) for label in WORDS]
    test = [sb.Row(sentence(label, i), label) for i in range(TRAIN_ROWS, TRAIN_ROWS + TEST_ROWS) for label in WORDS]
    return train, test


def numbered(label: str, count: int, start: int = 0) -> list[sb.Row]:
    return [sb.Row(f"{label} {i}", label) for i in range(start, start + count)]


def test_first_rows_keeps_the_first_rows_of_each_label_in_file_order():
    rows = [sb.Row(t, label) for t, label in [("a1", "a"), ("b1", "b"), ("a2", "a"), ("a3", "a"), ("b2", "b")]]
    head, rest = sb.first_rows(rows, 2)
    assert [r.text for r in head] == ["a1", "b1", "a2", "b2"]
    assert [r.text for r in rest] == ["a3"]


def test_each_bot_trains_on_ten_rows_per_intent_and_is_tested_on_everything_else():
    train, test = hwu_like()
    tasks = {t.name: t for t in sb.small_bots(train, test)}
    assert list(tasks) == ["home", "office", "media", "chat"]
    for name, task in tasks.items():
        mine = [label for label in WORDS if BOT_OF[label.split("_")[0]] == name]
        assert task.train == [r for r in train if r.label in mine][: 10 * len(mine)]
        assert sorted(r.text for r in task.train) == sorted(sentence(lb, i) for lb in mine for i in range(10))
        assert sorted(task.in_scope, key=str) == sorted(
            [r for r in test if r.label in mine] + [r for r in train if r.label in mine and r not in task.train],
            key=str,
        )
        assert sorted(task.out_of_scope) == sorted(r.text for r in train + test if r.label not in mine)
        assert task.oos_patterns == []


def test_a_bot_keeps_its_leftover_training_rows_in_scope_and_never_tests_what_it_trained_on():
    train = numbered("alarm_set", 13) + numbered("weather_query", 11)
    test = numbered("alarm_set", 2, start=100)
    home, _, _, chat = sb.small_bots(train, test)
    assert [r.text for r in home.train] == [f"alarm_set {i}" for i in range(10)]
    assert sorted(r.text for r in home.in_scope) == ["alarm_set 10", "alarm_set 100", "alarm_set 101",
                                                     "alarm_set 11", "alarm_set 12"]  # fmt: skip
    assert sorted(home.out_of_scope) == sorted(r.text for r in numbered("weather_query", 11))
    assert [r.text for r in chat.in_scope] == ["weather_query 10"]
    assert sorted(chat.out_of_scope) == sorted(r.text for r in numbered("alarm_set", 13) + test)


def test_with_oos_examples_the_first_scenario_of_each_other_bot_is_lent_and_left_out_of_the_test():
    train, test = hwu_like()
    plain = {t.name: t for t in sb.small_bots(train, test)}
    lent = {t.name: t for t in sb.small_bots(train, test, with_oos_examples=True)}
    first = {"home": "iot_lights", "office": "calendar_set", "media": "music_likeness", "chat": "general_joke"}
    for name, task in lent.items():
        examples = [label for bot, label in first.items() if bot != name]
        assert sorted(task.oos_patterns) == sorted(sentence(lb, i) for lb in examples for i in range(10))
        assert task.train == plain[name].train and task.in_scope == plain[name].in_scope
        lent_texts = {r.text for r in train + test if r.label in examples}
        assert sorted(task.out_of_scope) == sorted(t for t in plain[name].out_of_scope if t not in lent_texts)
        assert task.out_of_scope, "each bot must keep out-of-scope messages to be tested on"
        assert not set(task.oos_patterns) & set(task.out_of_scope)


def hand_scores() -> sb.Scores:
    """Five in-scope messages and twenty out-of-scope ones scored 0.01 ... 0.20."""
    return sb.Scores(
        in_correct=np.array([True, True, True, False, True]),
        in_score=np.array([0.9, 0.18, 0.17, 0.5, -1.0]),  # -1: falls back at any threshold
        in_fallback=np.array([False, True, True, False, True]),
        oos_score=np.arange(1, 21) / 100,
        oos_fallback=np.arange(20) < 15,
        threshold=0.3,
    )


def test_best_answered_right_uses_the_lowest_threshold_that_reaches_the_recall():
    # 85 % of 20 = 17 messages must fall back: the threshold lies just above 0.17, so the right answer scored
    # exactly 0.17 falls back with them, the one scored 0.18 stays answered.
    assert sb.best_answered_right(hand_scores(), 0.85) == pytest.approx(2 / 5)
    assert sb.best_answered_right(hand_scores(), 0.80) == pytest.approx(3 / 5)  # 16 fall back: 0.17 is answered


def test_figures_of_hand_made_scores():
    figures = sb.figures(hand_scores())
    assert figures == pytest.approx(
        {
            "accuracy": 4 / 5,
            "answered_right": 1 / 5,  # right and not fallen back: only the first
            "oos_recall": 15 / 20,
            # pairs (in, out) ranked right: 20 + 17.5 + 16.5 + 20 + 0 of 100 (ties count half)
            "auroc": 0.74,
            "best_answered_right_at_recall": 2 / 5,
        }
    )


def test_summed_figures_weigh_every_message_alike_not_every_bot():
    one_right = sb.Scores(np.array([True]), np.array([0.9]), np.array([False]), np.array([0.1]), np.array([True]), 0.5)
    three_wrong = sb.Scores(
        np.zeros(3, bool), np.full(3, 0.9), np.zeros(3, bool), np.array([0.1]), np.array([False]), 0.5
    )
    summed = sb.figures(sb.Scores.join([one_right, three_wrong]))
    assert summed["accuracy"] == pytest.approx(1 / 4)
    assert summed["oos_recall"] == pytest.approx(1 / 2)


def test_curve_runs_from_forced_fallbacks_only_to_every_message_falling_back():
    recall, right = sb.curve(hand_scores())
    assert (recall[0], right[0]) == (0.0, pytest.approx(3 / 5))  # threshold 0: only the -1 scores fall back
    assert (recall[-1], right[-1]) == (1.0, 0.0)  # threshold 1: everything falls back
    assert recall == sorted(recall) and right == sorted(right, reverse=True)


def write_csv(path: Path, rows: list[sb.Row]) -> None:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["text", "label"])
        writer.writerows((r.text, r.label) for r in rows)


def test_the_benchmark_trains_four_bots_twice_and_writes_its_figures(tmp_path, capsys, monkeypatch):
    # 10 epochs instead of the 200 a 20-pattern file gets: the same pipeline, about 1 s per bot instead of 8
    monkeypatch.setattr(sb, "TrainConfig", functools.partial(TrainConfig, epochs=10))
    folder = tmp_path / "hwu64"
    folder.mkdir()
    train, test = hwu_like()
    write_csv(folder / "train.csv", train)
    write_csv(folder / "test.csv", test)
    out, png = tmp_path / "small_bots.json", tmp_path / "small_bots.png"

    sb.main(["--data", str(folder), "--seeds", "0", "--json", str(out), "--plot", str(png), "--skip-banking",
             "--skip-shipped"])  # fmt: skip

    printed = capsys.readouterr().out
    for bot in ("home", "office", "media", "chat"):
        assert f"{bot} 20 patterns / 12 in scope / 96 out of scope" in printed
    for title in ("plain, seed 0", "with oos examples, seed 0"):
        table = printed.split(title, 1)[1].split("\n\n", 1)[0]
        assert [line.split()[0] for line in table.splitlines()[2:]] == ["home", "office", "media", "chat", "summed"]
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    written = json.loads(out.read_text())
    assert written["seeds"] == [0]
    assert written["runs"]["banking77_10shot"] == [] and written["runs"]["shipped_bot"] == []
    for run in ("plain", "with_oos_examples"):
        (results,) = written["runs"][run]
        assert list(results) == ["home", "office", "media", "chat", "summed"]
        for values in results.values():
            assert set(values) >= set(sb.FIGURES)
            assert all(0.0 <= values[f] <= 1.0 for f in sb.FIGURES), values
        # every intent has its own words: both models get most in-scope messages right, and messages made of
        # other bots' words rank below them
        assert results["summed"]["accuracy"] >= 0.8, results["summed"]
        assert results["summed"]["linear_svc"] >= 0.8, results["summed"]
        assert results["summed"]["auroc"] >= 0.8, results["summed"]
        assert written["mean_std"][run]["summed"]["accuracy"] == [results["summed"]["accuracy"], 0.0]
