import json

import pytest

from training.intents import IntentsError, load_intents, parse_intents


def good_intent(tag="greeting", patterns=("hi", "hello there", "good morning"), responses=("Hello!", "Hi!")):
    return {"tag": tag, "patterns": list(patterns), "responses": list(responses)}


def write(tmp_path, content):
    path = tmp_path / "intents.json"
    path.write_text(content if isinstance(content, str) else json.dumps(content), encoding="utf-8")
    return path


def test_shipped_file_is_a_useful_assistant(intents_path):
    intents = load_intents(intents_path)
    assert len(intents.intents) >= 15
    assert all(len(i.patterns) >= 8 and len(i.responses) >= 2 for i in intents.intents)
    assert intents.warnings == ()
    assert len(intents.sha256) == 64


def test_valid_file_loads_and_keeps_extra_keys(tmp_path):
    doc = {"intents": [good_intent() | {"context": ["x"]}, good_intent("bye", ["bye", "see you", "later"])]}
    intents = load_intents(write(tmp_path, doc))
    assert intents.tags == ["greeting", "bye"]
    assert intents.intents[0].extra == {"context": ["x"]}
    assert intents.examples() == (
        ["hi", "hello there", "good morning", "bye", "see you", "later"],
        ["greeting"] * 3 + ["bye"] * 3,
    )


def test_missing_file_is_named(tmp_path):
    with pytest.raises(IntentsError, match=r"nothere\.json: file not found"):
        load_intents(tmp_path / "nothere.json")


def test_invalid_json_names_line_and_column(tmp_path):
    path = write(tmp_path, '{"intents": [\n  {"tag": "a",, }\n]}')
    with pytest.raises(IntentsError) as info:
        load_intents(path)
    assert str(info.value).startswith(f"{path}: not valid JSON")
    assert "line 2, column 15" in str(info.value)


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ([], 'expected a JSON object with an "intents" list'),
        ({"data": []}, 'expected a JSON object with an "intents" list'),
        ({"intents": []}, '"intents" must be a non-empty list'),
        ({"intents": ["hi"]}, "intent #1: expected an object with tag, patterns and responses, got a string"),
        ({"intents": [{"patterns": ["hi"], "responses": ["x"]}]}, 'intent #1: missing "tag"'),
        ({"intents": [{"tag": 3, "patterns": ["a"], "responses": ["b"]}]}, '"tag" must be a non-empty string'),
        ({"intents": [{"tag": "a", "responses": ["x"]}]}, "intent #1 ('a'): missing \"patterns\""),
        ({"intents": [{"tag": "a", "patterns": ["hi"]}]}, "intent #1 ('a'): missing \"responses\""),
        ({"intents": [good_intent(patterns=[])]}, "intent #1 ('greeting'): \"patterns\" is empty"),
        ({"intents": [good_intent(responses=[])]}, "intent #1 ('greeting'): \"responses\" is empty"),
        ({"intents": [good_intent(patterns=["hi", 5])]}, "patterns[1] must be a string, got a number"),
        ({"intents": [good_intent(responses=["ok", None])]}, "responses[1] must be a string, got null"),
        ({"intents": [{"tag": "a", "patterns": "hi", "responses": ["x"]}]}, '"patterns" must be a list of strings'),
        ({"intents": [good_intent(patterns=["hi", "?!"])]}, "patterns[1] '?!' has no words left after tokenizing"),
        ({"intents": [good_intent(), good_intent()]}, "intent #2: duplicate tag 'greeting' (first used by intent #1)"),
        (
            {"intents": [good_intent(), good_intent("other", ["a b", "Hello   THERE", "c d"])]},
            "intent #2 ('other'): pattern 'Hello   THERE' is also a pattern of 'greeting'",
        ),
    ],
)
def test_each_validation_error_names_file_and_place(tmp_path, document, message):
    path = write(tmp_path, document)
    with pytest.raises(IntentsError) as info:
        load_intents(path)
    assert str(info.value).startswith(f"{path}: ")
    assert message in str(info.value)


def test_patterns_differing_only_in_punctuation_may_belong_to_two_tags():
    """BANKING77 has "top up" and "top-up" under different labels: a real data set must not be flagged."""
    doc = {"intents": [good_intent("a", ["Has my top up gone through?"]), good_intent("b", ["Has my top-up gone?"])]}
    assert parse_intents(doc).tags == ["a", "b"]


def test_few_patterns_warn_but_load():
    intents = parse_intents({"intents": [good_intent(patterns=["hi", "hey"])]}, source="x.json")
    assert intents.warnings == ("x.json: intent 'greeting' has only 2 pattern(s); 3 or more make it recognisable",)


def test_deeply_nested_json_is_a_clear_error(tmp_path):
    path = write(tmp_path, "[" * 100_000 + "]" * 100_000)
    with pytest.raises(IntentsError, match="not usable JSON"):
        load_intents(path)
