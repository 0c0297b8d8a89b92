"""`chatbot validate [--strict] [--json] FILE`: every finding with its place, a verdict, and an exit status for CI."""

import json

import pytest
from click.testing import CliRunner
from intents_files import write

from chatbot.cli import main
from training.intents_reader import load_intents

JSON_KEYS = {
    "file",
    "trains",
    "strict",
    "ok",
    "error",
    "intents",
    "trainable_intents",
    "response_only_intents",
    "patterns",
    "counts",
    "findings",
}


@pytest.fixture
def runner():
    return CliRunner()


def intent(tag, patterns=None, responses=("OK.",)):
    if patterns is None:
        patterns = [f"{tag} one", f"{tag} two", f"{tag} three"]
    doc = {"tag": tag, "responses": list(responses)}
    if patterns is not ...:
        doc["patterns"] = patterns
    return doc


def validate(runner, *args):
    return runner.invoke(main, ["validate", *map(str, args)])


def lines(result):
    return result.stdout.splitlines()


def place(path, number, tag):
    return f"{path}: intent #{number} ('{tag}')"


def clean_file(tmp_path):
    return write(tmp_path, {"intents": [intent("greet"), intent("bye"), intent("thanks")]})


def repaired_file(tmp_path):
    """Two repairs (a key spelled "Patterns", a response-only intent) and one note (two patterns)."""
    doc = {
        "intents": [
            {"tag": "greet", "Patterns": ["hi", "hello", "hey"], "responses": ["Hi!"]},
            intent("bye", ["bye", "see you"]),
            intent("goodbye state", []),
        ]
    }
    return write(tmp_path, doc)


# --- lines ------------------------------------------------------------------------------------------------------------


def test_clean_file_prints_summary_and_verdict(runner, tmp_path):
    path = clean_file(tmp_path)
    result = validate(runner, path)
    assert result.exit_code == 0, result.output
    assert lines(result) == [
        f"{path}: 3 intents (3 trainable), 9 patterns",
        "0 repair(s), 0 note(s): the file trains.",
    ]


@pytest.mark.parametrize("strict", [[], ["--strict"]], ids=["plain", "strict"])
def test_shipped_file_passes(runner, intents_path, strict):
    result = validate(runner, *strict, intents_path)
    assert result.exit_code == 0, result.output
    assert lines(result) == [
        f"{intents_path}: 20 intents (20 trainable), 240 patterns",
        "0 repair(s), 0 note(s): the file trains.",
    ]


def test_every_finding_is_printed_with_its_place_and_kind(runner, tmp_path):
    path = repaired_file(tmp_path)
    result = validate(runner, path)
    assert result.exit_code == 0, result.output
    assert lines(result) == [
        f"{path}: 3 intents (2 trainable), 5 patterns",
        f"repair: {path}: keys read as the standard ones: Patterns -> patterns (1×)  [key_spelling]",
        f"note: {place(path, 2, 'bye')}: only 2 pattern(s); 3 or more make it recognisable  [few_patterns]",
        f"repair: {place(path, 3, 'goodbye state')}: no patterns; kept as a response-only intent (not trained)"
        "  [response_only]",
        "2 repair(s), 1 note(s): the file trains.",
    ]


def test_finding_lines_start_with_repair_or_note_and_end_with_kind(runner, tmp_path):
    doc = [
        intent("a", ["hi", "", "?!", "hi", 7, "hey"], responses=["", "x"]),
        intent("b", ["HI", "yo", "sup"], responses=[]),
        intent("a", ["howdy"]),
        intent("c", ["c1"]),
    ]
    result = validate(runner, write(tmp_path, doc))
    assert result.exit_code == 0, result.output
    finding_lines = lines(result)[1:-1]
    assert len(finding_lines) == 9
    assert all(line.startswith(("repair: ", "note: ")) for line in finding_lines)
    found = [line.rsplit("[", 1)[1].rstrip("]") for line in finding_lines]
    assert sorted(found) == sorted(
        [
            "not_text",
            "blank_pattern",
            "no_words",
            "repeated_pattern",
            "blank_response",
            "no_responses",
            "duplicate_tag",
            "shared_pattern",
            "few_patterns",
        ]
    )
    assert [line.split(":")[0] for line in finding_lines].count("note") == 1
    assert lines(result)[-1] == "8 repair(s), 1 note(s): the file trains."


def test_strict_refuses_a_file_that_needed_repairs(runner, tmp_path):
    path = repaired_file(tmp_path)
    result = validate(runner, "--strict", path)
    assert result.exit_code == 1
    assert "Traceback" not in result.output
    assert len(lines(result)) == 5  # the findings are still listed
    assert lines(result)[-1] == "2 repair(s), 1 note(s): refused under --strict."


def test_strict_passes_a_clean_file_with_only_few_patterns_notes(runner, tmp_path):
    path = write(tmp_path, [intent("a", ["hi", "hello"]), intent("b", ["bye", "see you"])])
    result = validate(runner, "--strict", path)
    assert result.exit_code == 0, result.output
    assert lines(result) == [
        f"{path}: 2 intents (2 trainable), 4 patterns",
        f"note: {place(path, 1, 'a')}: only 2 pattern(s); 3 or more make it recognisable  [few_patterns]",
        f"note: {place(path, 2, 'b')}: only 2 pattern(s); 3 or more make it recognisable  [few_patterns]",
        "0 repair(s), 2 note(s): the file trains.",
    ]


def test_strict_refuses_a_shared_pattern(runner, tmp_path):
    path = write(tmp_path, [intent("a", ["hello there", "x", "y"]), intent("b", ["Hello There", "z", "w"])])
    assert validate(runner, path).exit_code == 0
    result = validate(runner, "--strict", path)
    assert result.exit_code == 1
    assert lines(result)[-1] == "1 repair(s), 0 note(s): refused under --strict."
    assert lines(result)[1].endswith("[shared_pattern]")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('{"intents": [\n  {"tag": "a",, }\n]}', "not valid JSON: Expecting property name enclosed in double quotes"),
        ({"data": []}, 'expected a JSON object with an "intents" list, or a list of intents'),
        ({"intents": []}, "the list of intents is empty"),
        ([intent("a"), "hi"], "intent #2: expected an object with tag, patterns and responses, got a string"),
        ([intent("a", [])], "no intent has patterns to learn from"),
        ([intent("a"), intent("b", [])], "only one intent ('a') has patterns to learn from"),
        ('{"intents": [{"tag": "café"}]}'.encode("latin-1"), "not UTF-8 text (byte 25)"),
    ],
)
@pytest.mark.parametrize("strict", [[], ["--strict"]], ids=["plain", "strict"])
def test_unusable_file_is_one_error_line(runner, tmp_path, content, message, strict):
    path = write(tmp_path, content)
    result = validate(runner, *strict, path)
    assert result.exit_code == 1
    assert "Traceback" not in result.output
    assert result.stdout == ""
    assert result.stderr.splitlines() == [result.stderr.strip()]
    assert result.stderr.startswith(f"Error: {path}: {message}")


def test_missing_file_is_one_error_line(runner, tmp_path):
    path = tmp_path / "nothere.json"
    result = validate(runner, path)
    assert result.exit_code == 1
    assert result.output == f"Error: {path}: file not found\n"


# --- --json -----------------------------------------------------------------------------------------------------------


def test_json_document_of_a_repaired_file(runner, tmp_path):
    path = repaired_file(tmp_path)
    result = validate(runner, "--json", path)
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert set(document) == JSON_KEYS
    assert document["file"] == str(path)
    assert document["trains"] is True
    assert document["strict"] is False
    assert document["ok"] is True
    assert document["error"] is None
    assert document["intents"] == 3
    assert document["trainable_intents"] == 2
    assert document["response_only_intents"] == ["goodbye state"]
    assert document["patterns"] == 5
    assert document["counts"] == {"response_only": 1, "key_spelling": 1, "few_patterns": 1}
    assert document["findings"] == [  # in file order: the file's own findings first
        {
            "kind": "key_spelling",
            "where": str(path),
            "message": "keys read as the standard ones: Patterns -> patterns (1×)",
            "tag": None,
            "repair": True,
        },
        {
            "kind": "few_patterns",
            "where": place(path, 2, "bye"),
            "message": "only 2 pattern(s); 3 or more make it recognisable",
            "tag": "bye",
            "repair": False,
        },
        {
            "kind": "response_only",
            "where": place(path, 3, "goodbye state"),
            "message": "no patterns; kept as a response-only intent (not trained)",
            "tag": "goodbye state",
            "repair": True,
        },
    ]


def test_json_under_strict_with_repairs_is_not_ok(runner, tmp_path):
    result = validate(runner, "--strict", "--json", repaired_file(tmp_path))
    assert result.exit_code == 1
    document = json.loads(result.stdout)
    assert (document["trains"], document["strict"], document["ok"], document["error"]) == (True, True, False, None)
    assert len(document["findings"]) == 3


def test_json_under_strict_with_only_notes_is_ok(runner, tmp_path):
    path = write(tmp_path, [intent("a", ["hi", "hello"]), intent("b", ["bye", "see you"])])
    result = validate(runner, "--strict", "--json", path)
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert (document["trains"], document["strict"], document["ok"]) == (True, True, True)
    assert document["counts"] == {"few_patterns": 2}
    assert [f["repair"] for f in document["findings"]] == [False, False]


def test_json_of_the_shipped_file(runner, intents_path):
    result = validate(runner, "--strict", "--json", intents_path)
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert document["ok"] is True
    assert (document["intents"], document["trainable_intents"], document["patterns"]) == (20, 20, 240)
    assert document["response_only_intents"] == []
    assert document["counts"] == {}
    assert document["findings"] == []


def test_json_keeps_non_ascii_tags_readable(runner, tmp_path):
    doc = [intent("ভালো", ["ভালো আছি", "কেমন আছেন"]), intent("مرحبا", []), intent("chào", ["xin chào", "chào bạn", "a"])]
    result = validate(runner, "--json", write(tmp_path, doc))
    assert result.exit_code == 0, result.output
    assert "ভালো" in result.stdout and "مرحبا" in result.stdout  # not \u escapes
    document = json.loads(result.stdout)
    assert document["response_only_intents"] == ["مرحبا"]
    assert [f["tag"] for f in document["findings"]] == ["ভালো", "مرحبا"]  # file order


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "not valid JSON"),
        ([intent("a")], "only one intent ('a') has patterns to learn from"),
        ({"intents": "x"}, '"intents" must be a list of intents, got a string'),
    ],
)
@pytest.mark.parametrize("strict", [[], ["--strict"]], ids=["plain", "strict"])
def test_json_of_an_unusable_file(runner, tmp_path, content, message, strict):
    path = write(tmp_path, content)
    result = validate(runner, *strict, "--json", path)
    assert result.exit_code == 1
    assert "Traceback" not in result.output
    document = json.loads(result.stdout)
    assert document["trains"] is False
    assert document["ok"] is False
    assert document["error"].startswith(f"{path}: {message}")
    assert set(document) <= {"file", "trains", "ok", "error"}


def test_json_of_a_missing_file(runner, tmp_path):
    path = tmp_path / "nothere.json"
    result = validate(runner, "--json", path)
    assert result.exit_code == 1
    assert json.loads(result.stdout) == {
        "file": str(path),
        "trains": False,
        "ok": False,
        "error": f"{path}: file not found",
    }


# --- lone surrogate escapes: valid JSON, not text ------------------------------------------------------------------


@pytest.mark.parametrize("as_json", [[], ["--json"]], ids=["lines", "json"])
def test_a_lone_surrogate_escape_in_a_tag_is_refused_with_one_line(runner, tmp_path, as_json):
    r"""A tag "\ud800x" cannot come back unchanged in any UTF-8 answer: it is an error, not a crash."""
    path = write(
        tmp_path,
        '{"intents": [{"tag": "\\ud800x", "patterns": ["a b"], "responses": ["r"]},'
        ' {"tag": "b", "patterns": ["c d", "e f", "g h"], "responses": ["r"]}]}',
    )
    result = validate(runner, *as_json, path)
    assert result.exit_code == 1
    assert not isinstance(result.exception, UnicodeError)
    message = json.loads(result.stdout)["error"] if as_json else result.stderr
    assert "intent #1: \"tag\" '\\ud800x' holds half of a UTF-16 pair" in message


def test_a_lone_surrogate_escape_in_a_pattern_or_response_is_replaced_and_reported(runner, tmp_path):
    path = write(
        tmp_path,
        '{"intents": [{"tag": "a", "patterns": ["hi \\udc00there", "x y"], "responses": ["r\\ud83d"]},'
        ' {"tag": "b", "patterns": ["c d", "e f", "g h"], "responses": ["r"]}]}',
    )
    result = validate(runner, "--json", path)
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert document["counts"]["broken_text"] == 2
    intents = load_intents(path)
    assert intents.intents[0].patterns == ("hi \ufffdthere", "x y")
    assert intents.intents[0].responses == ("r\ufffd",)


# --- sizes no real bot has -------------------------------------------------------------------------------------------


def test_a_long_pattern_is_a_note_with_the_limit_and_passes_strict(runner, tmp_path):
    path = write(tmp_path, [intent("greet", ["hi", "hello", "a" * 1_200]), intent("bye")])
    result = validate(runner, "--strict", path)
    assert result.exit_code == 0, result.output
    assert lines(result)[1:] == [
        f"note: {place(path, 1, 'greet')}: patterns[2] has 1,200 characters, more than 1,000  [long_pattern]",
        "0 repair(s), 1 note(s): the file trains.",
    ]


@pytest.mark.parametrize("as_json", [False, True], ids=["lines", "json"])
def test_a_pattern_over_the_limit_is_refused_with_the_limit(runner, tmp_path, as_json):
    path = write(tmp_path, [intent("greet", ["hi", "x" * 20_000]), intent("bye")])
    result = validate(runner, *(["--json"] if as_json else []), path)
    assert result.exit_code == 1
    error = (
        f"{place(path, 1, 'greet')}: patterns[1] has 20,000 characters; the limit is 10,000 "
        "(a pattern is a message someone might send; training time grows with its length)"
    )
    if as_json:
        assert json.loads(result.stdout)["error"] == error
    else:
        assert result.output == f"Error: {error}\n"
