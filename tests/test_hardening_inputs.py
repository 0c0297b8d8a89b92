"""Inputs no real bot has: huge files, invisible text, terminal escapes, and training threads on a busy machine."""

import sys

import pytest
import torch
from click.testing import CliRunner
from intents_files import write

from chatbot.answer import enable_line_editing, shown
from chatbot.cli import main
from training import intents_reader as intents_module
from training import runtime
from training.classifier import IntentClassifier
from training.intents import IntentsError
from training.intents_reader import load_intents, parse_intents
from training.loop import TrainConfig
from training.pipeline import train_model


def intent(tag, patterns=None):
    return {"tag": tag, "patterns": patterns or [f"{tag} one", f"{tag} two", f"{tag} three"], "responses": ["OK."]}


def kinds(intents_file, kind):
    return [f for f in intents_file.findings if f.kind == kind]


# --- Sizes: notes above what real bots have, refusals where training would be hopeless -------------------------------


def test_a_pattern_over_the_length_limit_is_refused_with_the_limit():
    doc = [intent("a", ["hi", "x" * 10_001]), intent("b")]
    with pytest.raises(
        IntentsError, match=r"intent #1 \('a'\): patterns\[1\] has 10,001 characters; the limit is 10,000"
    ):
        parse_intents(doc)


def test_a_long_pattern_under_the_limit_trains_with_a_note():
    loaded = parse_intents([intent("a", ["hi", "word " * 200 + "end"]), intent("b")])
    [note] = kinds(loaded, "long_pattern")
    assert note.message == "patterns[1] has 1,003 characters, more than 1,000"
    assert not note.is_repair
    assert len(loaded.intents[0].patterns) == 2


def test_a_tag_over_the_length_limit_is_refused_and_a_long_one_noted():
    with pytest.raises(IntentsError, match=r'"tag" has 1,001 characters; the limit is 1,000'):
        parse_intents([intent("t" * 1_001), intent("b")])
    [note] = kinds(parse_intents([intent("t" * 101), intent("b")]), "long_tag")
    assert note.message == "tag has 101 characters, more than 100"


def test_more_intents_than_the_limit_are_refused_and_many_noted():
    doc = [{"tag": f"t{i}", "patterns": [f"w{i}"], "responses": ["r"]} for i in range(10_001)]
    with pytest.raises(IntentsError, match=r"10,001 intents with patterns; the limit is 10,000"):
        parse_intents(doc)
    [note] = kinds(parse_intents(doc[:1_001]), "many_intents")
    assert note.message == "1,001 intents with patterns, more than 1,000"


def test_more_patterns_than_the_limit_are_refused_and_many_noted(monkeypatch):
    monkeypatch.setattr(intents_module, "PATTERNS", (5, 7))  # the real limits, 100,000 and 1,000,000, take seconds
    doc = [intent("a", ["a1", "a2", "a3", "a4"]), intent("b", ["b1", "b2", "b3", "b4"])]
    with pytest.raises(IntentsError, match=r"intents.json: 8 patterns; the limit is 7"):
        parse_intents(doc)
    [note] = kinds(parse_intents([intent("a"), intent("b")]), "many_patterns")
    assert note.message == "6 patterns, more than 5"


def test_response_only_intents_do_not_count_towards_the_intent_limit(monkeypatch):
    monkeypatch.setattr(intents_module, "INTENTS", (2, 3))
    doc = [intent("a"), intent("b"), intent("c"), *({"tag": f"state{i}", "responses": ["r"]} for i in range(5))]
    assert kinds(parse_intents(doc), "many_intents")[0].message == "3 intents with patterns, more than 2"


def test_train_refuses_a_huge_pattern_before_training_and_keeps_the_checkpoint(tmp_path, model_copy):
    before = model_copy.read_bytes()
    path = write(tmp_path, [intent("a", ["hi " * 20_000]), intent("b")])
    result = CliRunner().invoke(main, ["train", "--intents", str(path), "--model", str(model_copy)])
    assert result.exit_code == 1
    assert "patterns[0] has 60,000 characters; the limit is 10,000" in result.output
    assert "Training on" not in result.output
    assert model_copy.read_bytes() == before


# --- Invisible text ---------------------------------------------------------------------------------------------------


def test_a_pattern_of_only_invisible_characters_is_dropped_as_wordless():
    loaded = parse_intents([intent("a", ["hi", "\u200d", "\u200c\u200d"]), intent("b")])
    assert loaded.intents[0].patterns == ("hi",)
    assert [f.message for f in kinds(loaded, "no_words")] == [
        "patterns[1] '\\u200d' has no words; dropped",
        "patterns[2] '\\u200c\\u200d' has no words; dropped",
    ]


def test_an_invisible_message_falls_back_even_when_a_pattern_had_invisible_characters():
    """Before, a zero-width-joiner pattern was its own word, and an invisible message matched it with confidence 1."""
    doc = [intent("greet", ["hi", "hello", "hey \u200d"]), intent("bye", ["bye", "see you", "goodbye"])]
    result = train_model(parse_intents(doc), TrainConfig(epochs=30, val_fraction=0))
    classifier = IntentClassifier(result.checkpoint)
    for message in ["\u200d", "\u200d\u200d \u200c", "\ufe0f"]:
        answer = classifier.predict(message)
        assert answer.fallback, (message, answer)
    assert classifier.predict("hey\u200d").intent == "greet"


def test_tags_that_differ_only_by_invisible_characters_are_noted_as_similar():
    loaded = parse_intents([intent("greeting"), intent("greeting\u200b"), intent("Greet\u2060ing")])
    assert [(f.tag, f.message) for f in kinds(loaded, "similar_tags")] == [
        ("greeting\u200b", "tag differs from 'greeting' only in case, spacing or Unicode form"),
        ("Greet\u2060ing", "tag differs from 'greeting' only in case, spacing or Unicode form"),
    ]


def test_a_tag_of_only_invisible_characters_is_refused_as_blank():
    with pytest.raises(IntentsError, match=r'intent #1: "tag" must be a non-empty string, got a blank one'):
        parse_intents([intent("\u200b\u200d"), intent("b")])


def test_the_shipped_file_meets_every_limit_without_a_note(intents_path):
    loaded = load_intents(intents_path)
    assert not {f.kind for f in loaded.findings} & {"long_pattern", "long_tag", "many_intents", "many_patterns"}


# --- The terminal -----------------------------------------------------------------------------------------------------


def test_control_characters_are_shown_escaped_and_newlines_kept():
    assert shown("\x1b[2J\x1b]0;title\x07ok\r") == "\\x1b[2J\\x1b]0;title\\x07ok\\r"
    assert shown("\x9b31m \u202eevil\u2066") == "\\x9b31m \\u202eevil\\u2066"
    assert shown("line one\n\tline two, café, ভালো, 👍🏽") == "line one\n\tline two, café, ভালো, 👍🏽"


def test_chat_shows_escapes_in_tags_and_responses_as_text(tmp_path):
    doc = [
        {"tag": "greet\x1b[31m", "patterns": ["hi", "hello", "hey"], "responses": ["\x1b[2JHello\x1b]0;pwned\x07"]},
        {"tag": "bye", "patterns": ["bye", "see you", "goodbye"], "responses": ["Bye"]},
    ]
    model = tmp_path / "chatbot.pt"
    runner = CliRunner()
    trained = runner.invoke(
        main, ["train", "--intents", str(write(tmp_path, doc)), "--model", str(model), "--epochs", "30"]
    )
    assert trained.exit_code == 0, trained.output
    result = runner.invoke(main, ["chat", "--model", str(model), "--threshold", "0", "-v"], input="hello\nquit\n")
    assert result.exit_code == 0, result.output
    assert "bot> \\x1b[2JHello\\x1b]0;pwned\\x07\n" in result.output
    assert "[greet\\x1b[31m " in result.output
    assert "\x1b" not in result.output and "\x07" not in result.output


class _Terminal:
    def __init__(self, tty: bool) -> None:
        self.tty = tty

    def isatty(self) -> bool:
        return self.tty


@pytest.mark.skipif(sys.platform == "win32", reason="readline is not part of Python on Windows")
def test_chat_on_a_terminal_gets_line_editing(monkeypatch):
    monkeypatch.delitem(sys.modules, "readline", raising=False)
    assert enable_line_editing(_Terminal(tty=False)) is False
    assert "readline" not in sys.modules
    assert enable_line_editing(_Terminal(tty=True)) is True
    assert "readline" in sys.modules


# --- Training threads -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cpus", "busy", "threads"),
    [
        (2, 0.0, 2),  # idle: one per CPU
        (2, 1.0, 1),  # another process keeps a core busy: a second thread would wait for it at every step
        (2, 6.0, 1),
        (8, 2.0, 6),
        (1, 0.0, 1),
    ],
)
def test_training_threads_leave_busy_cpus_alone(cpus, busy, threads):
    assert runtime.training_threads(cpus, busy) == threads


def test_busy_cpus_counts_runnable_threads_of_other_processes(tmp_path):
    (tmp_path / "loadavg").write_text("0.00 0.01 0.05 4/120 4242\n")
    for task, state in [("100", "R"), ("101", "S"), ("102", "R")]:
        (tmp_path / "self" / "task" / task).mkdir(parents=True)
        (tmp_path / "self" / "task" / task / "stat").write_text(f"{task} (py (thon) x) {state} 1 2 3\n")
    assert runtime.busy_cpus(str(tmp_path)) == 2  # four runnable, two of them this process's own


@pytest.fixture
def torch_threads():
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def test_training_on_a_busy_machine_uses_one_thread(monkeypatch, torch_threads):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr(runtime, "available_cpus", lambda: 2)
    monkeypatch.setattr(runtime, "busy_cpus", lambda: 1.0)
    torch.set_num_threads(2)
    train_model(parse_intents([intent("a"), intent("b")]), TrainConfig(epochs=1, val_fraction=0))
    assert torch.get_num_threads() == 1


def test_omp_num_threads_overrides_the_choice(monkeypatch, torch_threads):
    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    monkeypatch.setattr(runtime, "busy_cpus", lambda: 9.0)
    torch.set_num_threads(2)
    assert runtime.use_training_threads() == 2
    assert torch.get_num_threads() == 2
