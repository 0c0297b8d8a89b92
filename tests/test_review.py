"""`chatbot review`: the queue's grouping and order, the interactive loop, writing decisions back, export and stats."""

from __future__ import annotations

import csv
import json
import unicodedata
from pathlib import Path

from click.testing import CliRunner

from chatbot.cli import main
from training.intents_reader import load_intents
from training.review import apply_decisions, review_queue


def record(message: str, intent: str = "greeting", top: float = 0.2, second: float = 0.1, **fields) -> dict:
    base = {
        "time": "2026-12-01T10:00:00+00:00",
        "kind": "answer",
        "message": message,
        "intent": intent,
        "confidence": top,
        "alternatives": [[intent, top], ["goodbye", second], ["thanks", 0.01]],
        "fallback": top < 0.3,
        "reasons": ["low_confidence"] if top < 0.3 else [],
        "model": "m",
        "conversation": "c",
    }
    return base | fields


INTENTS = {
    "intents": [
        {"tag": "greeting", "patterns": ["hello", "hi there"], "responses": ["Hi!"]},
        {"tag": "goodbye", "patterns": ["bye", "see you later"], "responses": ["Bye!"]},
        {"tag": "thanks", "patterns": ["thanks", "thank you"], "responses": ["You're welcome"]},
    ]
}


def write_intents(folder: Path, indent: int | None = 4, document: dict | None = None) -> Path:
    path = folder / "intents.json"
    path.write_text(json.dumps(document or INTENTS, indent=indent, ensure_ascii=False) + "\n", encoding="utf-8")
    return path


def write_log(folder: Path, records: list[dict], name: str = "messages.log") -> Path:
    path = folder / name
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


def test_the_queue_merges_repeats_groups_near_duplicates_and_puts_the_most_useful_first():
    decomposed = unicodedata.normalize("NFD", "Café opening hours")
    records = [
        record("good evening friend", top=0.6, second=0.55, fallback=False, reasons=["ambiguous"]),  # close call
        record("what are your opening hours"),  # fallback, seen 3 times in 2 forms
        record("What are  your opening HOURS"),
        record("what are your opening hours"),
        record("hours opening your are what"),  # the same stems: grouped with it
        record("café opening hours"),
        record(decomposed),  # the same text in another Unicode form: merged
        record("you are useless", kind="feedback", reasons=["feedback"], alternatives=[], fallback=False),
        record("hello"),  # already a pattern: never proposed
        record("confident answer", top=0.95, second=0.01),  # no reason: not a candidate
        record("is anyone there", top=0.5, second=0.2, fallback=False, reasons=["ambiguous"]),
    ]
    queue = review_queue(records, {"hello", "hi there"})
    assert [(c.text, c.count) for c in queue] == [
        ("you are useless", 1),  # thumbs-downs first
        ("what are your opening hours", 4),  # then fallbacks: the most frequent of equal margins first
        ("café opening hours", 2),
        ("good evening friend", 1),  # then the smallest margin
        ("is anyone there", 1),
    ]
    assert set(queue[1].variants) == {
        "what are your opening hours",
        "What are your opening HOURS",
        "hours opening your are what",
    }
    assert queue[0].guesses == [("greeting", None)]
    assert queue[1].guesses[0] == ("greeting", 0.2)


def test_decisions_are_written_back_in_the_files_own_layout_with_a_backup(tmp_path: Path):
    cafe = {"tag": "café", "Patterns": "crème brûlée", "responses": []}
    path = write_intents(tmp_path, indent=4, document={"intents": [*INTENTS["intents"], cafe]})
    before = path.read_text(encoding="utf-8")
    applied = apply_decisions(
        path,
        [
            ("good evening", "greeting"),
            ("Hello", "greeting"),
            ("dessert menu", "café"),
            ("order a taxi", "out_of_scope"),
        ],
    )
    assert applied.added == {"greeting": ["good evening"], "café": ["dessert menu"], "out_of_scope": ["order a taxi"]}
    assert applied.new_tags == ["out_of_scope"]
    assert applied.backup.read_text(encoding="utf-8") == before
    after = path.read_text(encoding="utf-8")
    assert '\n    "intents": [\n        {\n            "tag": "greeting",' in after  # four spaces, as before
    assert '"Patterns": [\n                "crème brûlée",\n                "dessert menu"\n' in after  # key kept
    assert after.endswith("}\n")
    intents = load_intents(path)
    assert intents.intents[0].patterns == ("hello", "hi there", "good evening")
    assert intents.intents[-1].tag == "out_of_scope" and intents.intents[-1].patterns == ("order a taxi",)


def test_a_compact_file_stays_compact_and_a_file_with_repeated_keys_is_left_alone(tmp_path: Path):
    path = write_intents(tmp_path, indent=None)
    apply_decisions(path, [("good evening", "greeting")])
    assert path.read_text(encoding="utf-8").count("\n") == 1
    repeated = tmp_path / "repeated.json"
    repeated.write_text(
        '{"intents": [{"tag": "a", "patterns": ["x"], "patterns": ["y"], "responses": []},'
        ' {"tag": "b", "patterns": ["z"], "responses": []}]}',
        encoding="utf-8",
    )
    before = repeated.read_text(encoding="utf-8")
    log = write_log(tmp_path, [record("new one")])
    result = CliRunner().invoke(main, ["review", str(log), "--intents", str(repeated)], input="a")
    assert result.exit_code == 1 and 'the key "patterns" is repeated in one object' in result.output
    assert repeated.read_text(encoding="utf-8") == before and not list(tmp_path.glob("repeated.json.*.bak"))


def test_the_interactive_review_takes_one_key_per_message_and_a_rerun_proposes_nothing(tmp_path: Path):
    intents = write_intents(tmp_path)
    log = write_log(
        tmp_path,
        [
            record("you are useless", kind="feedback", reasons=["feedback"], alternatives=[], fallback=False),
            record("good evening"),
            record("Good evening!"),  # another form of it: decided with it
            record("cheers mate", top=0.25, second=0.2, alternatives=[["goodbye", 0.25], ["thanks", 0.2]]),
            record("order a pizza"),
            record("what is my balance"),
            record("never reached"),
        ],
    )
    # in the queue's order: skip the thumbs-down, pick guess 2 for the closest call ("cheers mate"), accept the best
    # guess, skip, mark out of scope, type a new tag; then the input ends, which ends the review
    keys = "s" + "2" + "\r" + "s" + "o" + "t" + "balance\n"
    result = CliRunner().invoke(main, ["review", str(log), "--intents", str(intents)], input=keys)
    assert result.exit_code == 0, result.output
    shown = [line for line in result.output.splitlines() if line.startswith("[")]
    assert shown == [
        "[1/6] 'you are useless'  (feedback)",
        "[2/6] 'cheers mate'  (low_confidence)",
        "[3/6] 'good evening' ×2  (low_confidence)",
        "[4/6] 'never reached'  (low_confidence)",
        "[5/6] 'order a pizza'  (low_confidence)",
        "[6/6] 'what is my balance'  (low_confidence)",
    ]
    assert "Added 4 pattern(s) to" in result.output
    assert "thanks +1, greeting +1, out_of_scope +1, balance +1" in result.output
    assert "New intent(s) without responses yet (edit them): out_of_scope, balance" in result.output
    loaded = {i.tag: i.patterns for i in load_intents(intents).intents}
    assert loaded["greeting"][-1] == "good evening" and loaded["thanks"][-1] == "cheers mate"
    assert loaded["out_of_scope"] == ("order a pizza",) and loaded["balance"] == ("what is my balance",)
    assert len(list(tmp_path.glob("intents.json.*.bak"))) == 1

    again = CliRunner().invoke(main, ["review", str(log), "--intents", str(intents)], input="q")
    assert "2 message(s) to review" in again.output  # the two skipped ones; the decided ones are patterns now
    assert "good evening" not in again.output.lower() and "order a pizza" not in again.output


def test_export_then_import_csv_round_trip(tmp_path: Path):
    intents = write_intents(tmp_path)
    log = write_log(tmp_path, [record("good evening"), record("cheers mate", intent="thanks"), record("good evening")])
    runner = CliRunner()
    exported = runner.invoke(main, ["review", str(log), "--intents", str(intents), "--export", str(tmp_path / "q.csv")])
    assert exported.exit_code == 0 and "Wrote 2 message(s)" in exported.output
    with (tmp_path / "q.csv").open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert [(r["text"], r["label"], r["count"]) for r in rows] == [
        ("good evening", "greeting", "2"),
        ("cheers mate", "thanks", "1"),
    ]
    imported = runner.invoke(main, ["import-csv", str(tmp_path / "q.csv"), "--out", str(tmp_path / "new.json")])
    assert imported.exit_code == 0, imported.output
    new = load_intents(tmp_path / "new.json")
    assert {i.tag: i.patterns for i in new.intents} == {"greeting": ("good evening",), "thanks": ("cheers mate",)}


def test_stats_per_day_and_the_plot_read_rotated_logs_too(tmp_path: Path):
    old = [record("a", time="2026-11-30T09:00:00+00:00"), record("b", top=0.9, time="2026-11-30T10:00:00+00:00")]
    new = [
        record("a", time="2026-12-01T09:00:00+00:00"),
        record("c", top=0.6, second=0.55, fallback=False, reasons=["ambiguous"], time="2026-12-01T09:30:00+00:00"),
        record("a", kind="feedback", reasons=["feedback"], fallback=False, time="2026-12-01T10:00:00+00:00"),
    ]
    write_log(tmp_path, old, "messages.log.1")
    log = write_log(tmp_path, new)
    result = CliRunner().invoke(main, ["review", str(log), "--stats", "--plot", str(tmp_path / "rates.png")])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[1].split() == ["2026-11-30", "2", "50.0%", "0.0%", "0"]
    assert lines[2].split() == ["2026-12-01", "2", "50.0%", "50.0%", "1"]
    assert "      3  a" in result.output  # two fallbacks and a thumbs-down
    assert (tmp_path / "rates.png").read_bytes().startswith(b"\x89PNG")


def test_a_missing_log_is_one_line(tmp_path: Path):
    result = CliRunner().invoke(main, ["review", str(tmp_path / "nope.log")])
    assert result.exit_code == 1 and result.output.strip() == f"Error: {tmp_path / 'nope.log'}: no such message log"


def test_ctrl_c_ends_the_review_and_keeps_the_decisions_made(tmp_path: Path, monkeypatch):
    import chatbot.review as review_command

    intents = write_intents(tmp_path)
    log = write_log(tmp_path, [record("good evening"), record("order a pizza")])
    keys = iter(["a"])

    def keyboard() -> str:
        try:
            return next(keys)
        except StopIteration:
            raise KeyboardInterrupt from None  # what click.getchar raises for Ctrl-C in a terminal

    monkeypatch.setattr(review_command, "read_key", keyboard)
    result = CliRunner().invoke(main, ["review", str(log), "--intents", str(intents)])
    assert result.exit_code == 0, result.output
    assert "Added 1 pattern(s) to" in result.output
    assert load_intents(intents).intents[0].patterns[-1] == "good evening"


def test_a_bare_list_of_intents_is_written_back_and_a_symlink_keeps_pointing_at_it(tmp_path: Path):
    real = tmp_path / "real.json"
    real.write_text(json.dumps(INTENTS["intents"], indent=2) + "\n", encoding="utf-8")
    link = tmp_path / "intents.json"
    link.symlink_to(real)
    log = write_log(tmp_path, [record("good evening")])
    result = CliRunner().invoke(main, ["review", str(log), "--intents", str(link)], input="a")
    assert result.exit_code == 0, result.output
    assert link.is_symlink() and json.loads(real.read_text())[0]["patterns"][-1] == "good evening"


def test_a_file_that_cannot_be_written_back_is_refused_before_the_review_starts(tmp_path: Path):
    odd = tmp_path / "odd.json"
    odd.write_text(
        '{"Intents": [{"tag": "a", "patterns": ["x", "y"], "responses": []},'
        ' {"tag": "b", "patterns": ["z", "w"], "responses": [], "tag": "b"}]}',
        encoding="utf-8",
    )
    log = write_log(tmp_path, [record("good evening")])
    result = CliRunner().invoke(main, ["review", str(log), "--intents", str(odd)], input="a")
    assert result.exit_code == 1 and "[1/" not in result.output  # nobody was asked anything
    assert 'cannot write decisions back: the key "tag" is repeated' in result.output
