"""The lenient intents.json loader: every repair it makes, the finding it records, and what it still refuses."""

import json
import unicodedata
from collections import Counter

import pytest
from intents_files import write

from training.intents import KINDS, IntentsError, strict_error

# --- builders ---------------------------------------------------------------------------------------------------------
from training.intents_reader import load_intents, parse_intents

# --- builders ---------------------------------------------------------------------------------------------------------


def intent(tag, patterns=None, responses=("OK.",), **extra):
    """One intent object; by default three patterns of its own, so nothing is shared, repeated or too few."""
    if patterns is None:
        patterns = [f"{tag} one", f"{tag} two", f"{tag} three"]
    doc = {"tag": tag}
    if patterns is not ...:  # `...` leaves the key out
        doc["patterns"] = list(patterns) if isinstance(patterns, list | tuple) else patterns
    if responses is not ...:
        doc["responses"] = list(responses) if isinstance(responses, list | tuple) else responses
    return doc | extra


def load(tmp_path, document):
    return load_intents(write(tmp_path, document))


def kinds(intents):
    return [f.kind for f in intents.findings]


def of_kind(intents, kind):
    return [f for f in intents.findings if f.kind == kind]


def by_tag(intents, tag):
    (found,) = [i for i in intents.intents if i.tag == tag]
    return found


def place(path, number, tag):
    return f"{path}: intent #{number} ('{tag}')"


# --- the shipped file and a clean one ---------------------------------------------------------------------------------


def test_shipped_file_loads_with_no_findings(intents_path):
    intents = load_intents(intents_path)
    assert len(intents.intents) == 20
    assert len(intents.trainable) == 20
    assert intents.response_only == []
    assert intents.tags == [i.tag for i in intents.intents]
    assert intents.findings == ()
    assert intents.repairs == []
    assert intents.grouped_findings() == []
    assert intents.finding_counts() == {}
    assert strict_error(intents) is None
    assert len(intents.sha256) == 64
    assert all(len(i.patterns) >= 3 and i.responses for i in intents.intents)


def test_clean_file_keeps_order_examples_and_summary(tmp_path):
    doc = {"intents": [intent("greeting", ["hi", "hello there", "good morning"]), intent("bye", ["bye", "see you"])]}
    path = write(tmp_path, doc)
    intents = load_intents(path)
    assert intents.source == str(path)
    assert intents.tags == ["greeting", "bye"]
    assert intents.examples() == (
        ["hi", "hello there", "good morning", "bye", "see you"],
        ["greeting"] * 3 + ["bye"] * 2,
    )
    assert intents.summary() == f"{path}: 2 intents (2 trainable), 5 patterns"
    assert kinds(intents) == ["few_patterns"]  # 'bye' has two


def test_top_level_list_of_intents_is_accepted_without_finding(tmp_path):
    intents = load(tmp_path, [intent("a"), intent("b")])
    assert intents.tags == ["a", "b"]
    assert intents.findings == ()


# --- key spelling -----------------------------------------------------------------------------------------------------


def test_key_spellings_are_read_with_one_finding_per_file(tmp_path):
    doc = {
        "intents": [
            {"Tag": "greet", "Patterns": ["hi", "hello", "hey"], "Responses": ["Hi!"]},
            {"TAG": "bye", "Patterns": ["bye", "see you", "later"], "Responses": ["Bye!"]},
            {"tAg": "thanks", "pattern": ["thanks", "thank you", "cheers"], "response": "You're welcome."},
        ]
    }
    path = write(tmp_path, doc)
    intents = load_intents(path)
    assert intents.tags == ["greet", "bye", "thanks"]
    assert [i.patterns for i in intents.intents] == [
        ("hi", "hello", "hey"),
        ("bye", "see you", "later"),
        ("thanks", "thank you", "cheers"),
    ]
    assert [i.responses for i in intents.intents] == [("Hi!",), ("Bye!",), ("You're welcome.",)]
    assert all(i.extra == {} for i in intents.intents)
    assert kinds(intents) == ["key_spelling", "text_for_list"]  # the file's own first; a bare "response" is a repair
    (spelling,) = of_kind(intents, "key_spelling")
    assert spelling.where == str(path)
    assert spelling.tag is None
    for named in (
        "Tag -> tag (1×)",
        "TAG -> tag (1×)",
        "tAg -> tag (1×)",
        "Patterns -> patterns (2×)",
        "Responses -> responses (2×)",
        "pattern -> patterns (1×)",
        "response -> responses (1×)",
    ):
        assert named in spelling.message


def test_top_level_intents_key_in_another_case_is_accepted(tmp_path):
    doc = {"Intents": [intent("a"), {"tag": "b", "Patterns": ["x y", "z w", "q r"], "responses": ["ok"]}]}
    intents = load(tmp_path, doc)
    assert intents.tags == ["a", "b"]
    assert kinds(intents) == ["key_spelling"]
    message = intents.findings[0].message
    assert "Intents -> intents (1×)" in message
    assert "Patterns -> patterns (1×)" in message


# --- responses --------------------------------------------------------------------------------------------------------


def test_bare_string_responses_and_patterns_become_lists_of_one(tmp_path):
    doc = [intent("a", patterns="hello there", responses="Hi!"), intent("b")]
    path = write(tmp_path, doc)
    intents = load_intents(path)
    assert intents.intents[0].patterns == ("hello there",)
    assert intents.intents[0].responses == ("Hi!",)
    assert intents.tags == ["a", "b"]
    texts = of_kind(intents, "text_for_list")
    assert [(f.where, f.tag) for f in texts] == [(place(path, 1, "a"), "a")] * 2
    assert sorted(f.message for f in texts) == [
        '"patterns" is a single text; read as a list of one',
        '"responses" is a single text; read as a list of one',
    ]
    assert Counter(kinds(intents)) == {"text_for_list": 2, "few_patterns": 1}


@pytest.mark.parametrize(
    "responses",
    [..., [], None, ["", "   ", "\t\n"]],
    ids=["missing", "empty list", "null", "only blank"],
)
def test_intent_without_responses_still_trains(tmp_path, responses):
    path = write(tmp_path, [intent("quiet", responses=responses), intent("b")])
    intents = load_intents(path)
    assert intents.tags == ["quiet", "b"]
    assert intents.intents[0].responses == ()
    assert intents.intents[0].trainable
    (finding,) = of_kind(intents, "no_responses")
    assert finding.tag == "quiet"
    assert finding.where == place(path, 1, "quiet")
    assert finding.is_repair
    assert "response_only" not in kinds(intents)


def test_blank_responses_among_others_are_dropped(tmp_path):
    path = write(tmp_path, [intent("a", responses=["Hi!", "", "   ", "Hello!"]), intent("b")])
    intents = load_intents(path)
    assert intents.intents[0].responses == ("Hi!", "Hello!")
    assert kinds(intents) == ["blank_response"]
    assert intents.findings[0].message == "2 blank response(s) dropped"
    assert intents.findings[0].where == place(path, 1, "a")
    assert intents.findings[0].tag == "a"


# --- patterns ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("patterns", [[], ...], ids=["empty list", "missing"])
def test_intent_without_patterns_is_response_only(tmp_path, patterns):
    doc = {"intents": [intent("a"), intent("goodbye state", patterns=patterns, responses=["Bye."]), intent("b")]}
    path = write(tmp_path, doc)
    intents = load_intents(path)
    assert [i.tag for i in intents.intents] == ["a", "goodbye state", "b"]
    assert intents.tags == ["a", "b"]
    assert [i.tag for i in intents.response_only] == ["goodbye state"]
    assert intents.examples()[1] == ["a"] * 3 + ["b"] * 3
    state = intents.intents[1]
    assert state.patterns == ()
    assert state.responses == ("Bye.",)
    assert state.record() == {
        "tag": "goodbye state",
        "trainable": False,
        "patterns": 0,
        "responses": ["Bye."],
        "extra_json": "{}",
    }
    assert kinds(intents) == ["response_only"]
    assert intents.findings[0].where == place(path, 2, "goodbye state")
    assert intents.findings[0].tag == "goodbye state"


def test_blank_and_wordless_patterns_are_dropped(tmp_path):
    patterns = ["hi there", "", "   ", "?!", "hello", "\t", "...", "hey"]
    path = write(tmp_path, [intent("a", patterns=patterns), intent("b")])
    intents = load_intents(path)
    assert intents.intents[0].patterns == ("hi there", "hello", "hey")
    assert [(f.kind, f.message) for f in intents.findings] == [
        ("blank_pattern", "patterns[1] is blank; dropped"),
        ("blank_pattern", "patterns[2] is blank; dropped"),
        ("no_words", "patterns[3] '?!' has no words; dropped"),
        ("blank_pattern", "patterns[5] is blank; dropped"),
        ("no_words", "patterns[6] '...' has no words; dropped"),
    ]
    assert {(f.where, f.tag) for f in intents.findings} == {(place(path, 1, "a"), "a")}


def test_intent_whose_patterns_are_all_dropped_becomes_response_only(tmp_path):
    intents = load(tmp_path, [intent("a"), intent("empty", patterns=["", "?!", " "]), intent("b")])
    assert intents.tags == ["a", "b"]
    assert [i.tag for i in intents.response_only] == ["empty"]
    assert intents.intents[1].patterns == ()
    assert Counter(kinds(intents)) == {"blank_pattern": 2, "no_words": 1, "response_only": 1}


def test_repeated_pattern_within_a_tag_is_kept_once_in_its_first_spelling(tmp_path):
    nfd = unicodedata.normalize("NFD", "café ouvert")
    patterns = ["Hello there", "hello   THERE", "HELLO\tthere", "café ouvert", nfd, "Straße", "STRASSE", "hey"]
    path = write(tmp_path, [intent("a", patterns=patterns), intent("b")])
    intents = load_intents(path)
    assert intents.intents[0].patterns == ("Hello there", "café ouvert", "Straße", "hey")
    assert kinds(intents) == ["repeated_pattern"]
    finding = intents.findings[0]
    assert finding.message == "4 repeated pattern(s) kept once"
    assert (finding.where, finding.tag) == (place(path, 1, "a"), "a")


def test_pattern_under_two_tags_is_kept_under_both_and_refused_by_strict(tmp_path):
    doc = [intent("a", patterns=["Hello there", "hi", "hey"]), intent("b", patterns=["hello  THERE", "yo", "sup"])]
    path = write(tmp_path, doc)
    intents = load_intents(path)
    assert intents.intents[0].patterns == ("Hello there", "hi", "hey")
    assert intents.intents[1].patterns == ("hello  THERE", "yo", "sup")
    assert intents.examples()[1] == ["a"] * 3 + ["b"] * 3
    assert kinds(intents) == ["shared_pattern"]
    finding = intents.findings[0]
    assert (finding.where, finding.tag) == (place(path, 2, "b"), "b")
    assert "'hello  THERE'" in finding.message
    assert "'a'" in finding.message
    error = strict_error(intents)
    assert error is not None
    assert error.startswith(f"{path}: --strict: 1 repair(s) needed, first: {place(path, 2, 'b')}")
    assert "\n" not in error


def test_patterns_differing_only_in_punctuation_may_belong_to_two_tags():
    """BANKING77 has "top up" and "top-up" under different labels: a real data set must not be flagged."""
    doc = {
        "intents": [
            intent("a", ["Has my top up gone through?", "x", "y"]),
            intent("b", ["Has my top-up gone through?"]),
        ]
    }
    intents = parse_intents(doc)
    assert intents.tags == ["a", "b"]
    assert "shared_pattern" not in kinds(intents)


# --- tags -------------------------------------------------------------------------------------------------------------


def test_tag_defined_twice_is_merged_at_its_first_place(tmp_path):
    doc = [
        intent("greet", ["hi", "hello", "hey"], ["Hi!"], context_set="first"),
        intent("bye"),
        intent("greet", ["HELLO", "good morning", "hi"], ["Hi!", "Hey!"], context_set="second", context_filter="x"),
    ]
    path = write(tmp_path, doc)
    intents = load_intents(path)
    assert intents.tags == ["greet", "bye"]
    greet = intents.intents[0]
    assert greet.patterns == ("hi", "hello", "hey", "good morning")
    assert greet.responses == ("Hi!", "Hey!")
    assert greet.extra == {"context_set": "first", "context_filter": "x"}
    # the first definition's context keys: "x" is set by no intent, "first" filtered on by none (notes of their own)
    assert kinds(intents) == ["unreachable_context", "unused_context", "duplicate_tag"]
    finding = intents.findings[2]
    assert (finding.where, finding.tag) == (place(path, 3, "greet"), "greet")
    assert "intent #1 ('greet')" in finding.message
    assert intents.examples()[1] == ["greet"] * 4 + ["bye"] * 3


@pytest.mark.parametrize("patterned_first", [True, False])
def test_tag_defined_with_and_without_patterns_trains(tmp_path, patterned_first):
    with_patterns = intent("greet", ["hi", "hello", "hey"], [])
    without = intent("greet", [], ["Hello!"])
    doc = [with_patterns, without, intent("b")] if patterned_first else [without, with_patterns, intent("b")]
    intents = load(tmp_path, doc)
    assert intents.tags == ["greet", "b"]
    assert intents.response_only == []
    assert intents.intents[0].patterns == ("hi", "hello", "hey")
    assert intents.intents[0].responses == ("Hello!",)
    assert kinds(intents) == ["duplicate_tag"]  # no response_only, no no_responses for the merged tag


@pytest.mark.parametrize(
    "tag",
    [
        "  spaced tag  ",
        "what's up?!",
        "How do I reset my password if I forgot it?",
        "مرحبا",
        "ভালো",
        unicodedata.normalize("NFD", "Tiếng Việt"),
        "😀",
        "a/b: c-d #1",
    ],
)
def test_any_non_empty_tag_comes_back_unchanged(tmp_path, tag):
    intents = load(tmp_path, [intent(tag, ["one thing", "two things", "three things"]), intent("other")])
    assert intents.tags == [tag, "other"]
    assert intents.intents[0].tag == tag
    assert intents.examples()[1][:3] == [tag] * 3
    assert intents.findings == ()


def test_extra_keys_are_kept_with_any_json_value(tmp_path):
    extra = {
        "context_set": "ordering",
        "context_filter": ["menu"],
        "anything": {"nested": [1, None, True, {"deep": "x"}]},
        "count": 3,
        "ratio": 0.5,
        "flag": False,
        "nothing": None,
    }
    intents = load(tmp_path, [intent("a", **extra), intent("b", context_set="")])
    assert intents.intents[0].extra == extra
    assert json.loads(intents.intents[0].record()["extra_json"]) == extra
    assert intents.intents[1].extra == {"context_set": ""}
    # "menu" is set by no intent and "ordering" filtered on by none: findings of their own, nothing else
    assert kinds(intents) == ["unreachable_context", "unused_context"]
    assert intents.intents[0].record() == {
        "tag": "a",
        "trainable": True,
        "patterns": 3,
        "responses": ["OK."],
        "extra_json": json.dumps(extra),
    }


# --- text -------------------------------------------------------------------------------------------------------------


def test_bom_crlf_tabs_escapes_and_emoji_are_read(tmp_path):
    doc = {
        "intents": [
            intent("café", ["caf\u00e9 open?", "I love it \U0001f600", "good\tmorning"], ["Sure \U0001f44d"]),
            intent("b"),
        ]
    }
    text = json.dumps(doc, indent="\t", ensure_ascii=True).replace("\n", "\r\n")  # \uXXXX escapes, tab indents
    assert "\\u00e9" in text and "\\ud83d\\ude00" in text and "\r\n\t" in text
    intents = load(tmp_path, b"\xef\xbb\xbf" + text.encode("utf-8"))
    assert intents.tags == ["café", "b"]
    assert intents.intents[0].patterns == ("café open?", "I love it 😀", "good\tmorning")
    assert intents.intents[0].responses == ("Sure 👍",)
    assert intents.findings == ()


def test_utf8_with_literal_non_ascii_and_bom(tmp_path):
    doc = [
        intent("chào hỏi", ["xin chào", "chào bạn", "ভালো আছি"], ["Chào! 😀"]),
        intent("مرحبا", ["مرحبا بك", "أهلا", "سلام"]),
    ]
    raw = b"\xef\xbb\xbf" + json.dumps(doc, ensure_ascii=False).encode("utf-8")
    intents = load(tmp_path, raw)
    assert intents.tags == ["chào hỏi", "مرحبا"]
    assert intents.intents[0].patterns == ("xin chào", "chào bạn", "ভালো আছি")
    assert intents.intents[1].patterns == ("مرحبا بك", "أهلا", "سلام")


def test_patterns_and_responses_are_normalized_to_nfc_but_tags_are_not(tmp_path):
    nfc = unicodedata.normalize("NFC", "Tiếng Việt")
    nfd = unicodedata.normalize("NFD", "Tiếng Việt")
    assert nfc != nfd
    intents = load(tmp_path, [intent(nfd, [nfd, "xin chào", "chào bạn"], [nfd]), intent("b")])
    loaded = intents.intents[0]
    assert loaded.patterns == (nfc, "xin chào", "chào bạn")
    assert loaded.responses == (nfc,)
    assert loaded.tag == nfd
    assert intents.findings == ()


def test_numbers_in_lists_are_text_and_other_values_are_dropped(tmp_path):
    patterns = ["hi", 42, 3.5, True, None, {"x": 1}, ["nested"], "hello"]
    responses = [1, False, None, {}, "ok"]
    path = write(tmp_path, [intent("a", patterns, responses), intent("b")])
    intents = load_intents(path)
    assert intents.intents[0].patterns == ("hi", "42", "3.5", "hello")
    assert intents.intents[0].responses == ("1", "ok")
    assert kinds(intents) == ["not_text"] * 10
    assert {(f.where, f.tag) for f in intents.findings} == {(place(path, 1, "a"), "a")}
    messages = [f.message for f in intents.findings]
    assert messages[:2] == ["patterns[1] is the number 42; read as text", "patterns[2] is the number 3.5; read as text"]
    assert "patterns[3] is a boolean, not text; dropped" in messages
    assert "responses[2] is null, not text; dropped" in messages


# --- refusals ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ({"data": []}, 'expected a JSON object with an "intents" list, or a list of intents'),
        ("intents", 'expected a JSON object with an "intents" list, got a string'),
        (3, 'expected a JSON object with an "intents" list, got a number'),
        (None, 'expected a JSON object with an "intents" list, got null'),
        ({"intents": {"tag": "a"}}, '"intents" must be a list of intents, got an object'),
        ({"intents": []}, "the list of intents is empty"),
        ([], "the list of intents is empty"),
        ([intent("a"), "hi"], "intent #2: expected an object with tag, patterns and responses, got a string"),
        ([intent("a"), 5], "intent #2: expected an object with tag, patterns and responses, got a number"),
        ([{"patterns": ["hi"], "responses": ["x"]}, intent("b")], 'intent #1: missing "tag"'),
        ([intent("a"), intent("   ")], 'intent #2: "tag" must be a non-empty string'),
        ([intent("")], 'intent #1: "tag" must be a non-empty string'),
        ([intent(3), intent("b")], 'intent #1: "tag" must be a non-empty string, got a number'),
        ([intent(None)], 'intent #1: "tag" must be a non-empty string, got null'),
        ([{"Tag": ["a"], "patterns": ["x"]}], 'intent #1: "Tag" must be a non-empty string, got a list'),
        ([intent("a", []), intent("b", ...)], "no intent has patterns to learn from"),
        ([intent("a"), intent("b", ["?!", ""])], "only one intent ('a') has patterns to learn from"),
        ([intent("a")], "only one intent ('a') has patterns to learn from"),
        ([intent("a"), intent("a")], "only one intent ('a') has patterns to learn from"),
    ],
)
def test_unusable_document_is_refused_naming_file_and_place(tmp_path, document, message):
    path = write(tmp_path, json.dumps(document))
    with pytest.raises(IntentsError) as info:
        load_intents(path)
    assert str(info.value).startswith(f"{path}: ")
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_invalid_json_names_line_and_column(tmp_path):
    path = write(tmp_path, '{"intents": [\n  {"tag": "a",, }\n]}')
    with pytest.raises(IntentsError) as info:
        load_intents(path)
    assert str(info.value).startswith(f"{path}: not valid JSON")
    assert "line 2, column 15" in str(info.value)


def test_not_utf8_is_refused(tmp_path):
    path = write(tmp_path, '{"intents": [{"tag": "café"}]}'.encode("latin-1"))
    with pytest.raises(IntentsError) as info:
        load_intents(path)
    assert str(info.value) == f"{path}: not UTF-8 text (byte 25)"


def test_missing_file_is_named(tmp_path):
    with pytest.raises(IntentsError) as info:
        load_intents(tmp_path / "nothere.json")
    assert str(info.value) == f"{tmp_path / 'nothere.json'}: file not found"


def test_folder_is_refused(tmp_path):
    with pytest.raises(IntentsError, match="is a folder, not a file"):
        load_intents(tmp_path)


def test_deeply_nested_json_is_a_clear_error(tmp_path):
    path = write(tmp_path, "[" * 100_000 + "]" * 100_000)
    with pytest.raises(IntentsError) as info:
        load_intents(path)
    assert str(info.value).startswith(f"{path}: not usable JSON")


# --- notes, strict and the grouped summary ----------------------------------------------------------------------------


def test_few_patterns_are_notes_that_strict_ignores(tmp_path):
    path = write(tmp_path, [intent("a", ["hi", "hello"]), intent("b", ["bye", "see you"])])
    intents = load_intents(path)
    assert intents.tags == ["a", "b"]
    assert kinds(intents) == ["few_patterns", "few_patterns"]
    assert [(f.where, f.tag) for f in intents.findings] == [(place(path, 1, "a"), "a"), (place(path, 2, "b"), "b")]
    assert intents.findings[0].message == "only 2 pattern(s); 3 or more make it recognisable"
    assert not any(f.is_repair for f in intents.findings)
    assert intents.repairs == []
    assert strict_error(intents) is None


def test_few_patterns_counts_patterns_after_merging(tmp_path):
    intents = load(tmp_path, [intent("a", ["hi"]), intent("b"), intent("a", ["hello", "hey"])])
    assert intents.intents[0].patterns == ("hi", "hello", "hey")
    assert kinds(intents) == ["duplicate_tag"]


def test_every_finding_kind_is_documented_and_only_few_patterns_is_a_note():
    assert set(KINDS) == {
        "key_spelling",
        "text_for_list",
        "not_text",
        "broken_text",
        "duplicate_tag",
        "response_only",
        "blank_pattern",
        "no_words",
        "repeated_pattern",
        "shared_pattern",
        "no_responses",
        "blank_response",
        "repeated_key",
        "similar_tags",
        "same_words",
        "few_patterns",
        "out_of_scope",
        "unreachable_context",
        "unused_context",
        "long_pattern",
        "long_tag",
        "many_intents",
        "many_patterns",
    }


def test_strict_error_is_one_line_naming_the_first_repair(tmp_path):
    path = write(tmp_path, [intent("a", responses="Hi"), intent("b", responses=[])])
    intents = load_intents(path)
    assert [f.kind for f in intents.repairs] == ["text_for_list", "no_responses"]
    assert strict_error(intents) == (
        f"{path}: --strict: 2 repair(s) needed, first: {place(path, 1, 'a')}: "
        '"responses" is a single text; read as a list of one'
    )
    assert intents.finding_counts() == {"text_for_list": 1, "no_responses": 1}


def test_grouped_findings_give_one_line_per_kind_however_many(tmp_path):
    tags = [f"question {i}" for i in range(150)]
    intents = load(tmp_path, {"intents": [intent(tag, responses=...) for tag in tags]})
    assert len(intents.tags) == 150
    assert intents.finding_counts() == {"no_responses": 150}
    lines = intents.grouped_findings()
    assert len(lines) == 1
    (line,) = [line for line in lines if KINDS["no_responses"] in line]
    assert line.startswith("150 ×")
    assert line == f"150 × {KINDS['no_responses']}: 'question 0', 'question 1', 'question 2' and 147 more"
    assert "question 3" not in line


def test_grouped_findings_follow_kinds_order_and_name_each_tag_once(tmp_path):
    doc = [
        intent("a", ["x", "x", "X"]),  # repeated_pattern, few_patterns
        intent("b", ["p q", "", "?!", "r s", "t u"]),  # blank_pattern, no_words
        intent("a", ["y", "z"]),  # duplicate_tag
        intent("c", responses=[]),  # no_responses
    ]
    lines = load(tmp_path, doc).grouped_findings()
    assert [line.split(" × ", 1)[1].split(":")[0] for line in lines] == [
        KINDS["duplicate_tag"],
        KINDS["blank_pattern"],
        KINDS["no_words"],
        KINDS["repeated_pattern"],
        KINDS["no_responses"],
    ]
    assert lines[0] == f"1 × {KINDS['duplicate_tag']}: 'a'"


# --- what a plain JSON reader would lose, and collisions only the merged intents show -----------------------------


def test_a_repeated_key_in_an_intent_joins_its_lists(tmp_path):
    """Python's json keeps only the last of two "patterns" keys: the loader keeps both and says so."""
    raw = '[{"tag": "a", "patterns": ["hi", "hello"], "patterns": ["yo"], "responses": ["x"], "note": 1, "note": 2},'
    raw += ' {"tag": "b", "patterns": ["bye", "ciao", "later"], "responses": ["y"]}]'
    path = write(tmp_path, raw)
    intents = load_intents(path)
    assert intents.intents[0].patterns == ("hi", "hello", "yo")
    assert intents.intents[0].extra == {"note": 2}
    (repeated,) = of_kind(intents, "repeated_key")
    assert repeated.where == place(path, 1, "a")
    assert repeated.message == 'key(s) "patterns", "note" repeated: lists joined, other values the last one kept'
    assert strict_error(intents) is not None


def test_two_lists_of_intents_are_joined(tmp_path):
    raw = '{"intents": [{"tag": "a", "patterns": ["hi", "hey", "yo"]}], "Intents": [{"tag": "b", "patterns": "bye"}]}'
    path = write(tmp_path, raw)
    intents = load_intents(path)
    assert intents.tags == ["a", "b"]
    (repeated,) = of_kind(intents, "repeated_key")
    assert (
        repeated.where == str(path)
        and repeated.message == '2 lists of intents ("intents", "Intents"); joined in file order'
    )
    assert "Intents -> intents (1×)" in of_kind(intents, "key_spelling")[0].message


def test_a_tag_repeated_with_two_values_is_an_error(tmp_path):
    path = write(tmp_path, '[{"tag": "a", "tag": "b", "patterns": ["hi"]}, {"tag": "c", "patterns": ["x"]}]')
    with pytest.raises(IntentsError, match=r"intent #1: more than one tag \(tag, tag\)"):
        load_intents(path)


def test_tags_that_differ_only_in_case_or_form_are_kept_apart_with_a_note(tmp_path):
    nfd = unicodedata.normalize("NFD", "café")
    tags = ["café", nfd, "Greeting", "greeting "]
    intents = load(tmp_path, [intent(tag, [f"{i} one", f"{i} two", f"{i} three"]) for i, tag in enumerate(tags)])
    assert len(intents.tags) == 4
    similar = of_kind(intents, "similar_tags")
    assert [f.tag for f in similar] == [nfd, "greeting "]
    assert similar[1].message == "tag differs from 'Greeting' only in case, spacing or Unicode form"
    assert strict_error(intents) is None  # a note: the tags may be meant to differ


def test_patterns_with_the_same_words_under_two_tags_get_a_note(tmp_path):
    intents = load(tmp_path, [intent("a", ["hi!", "one", "two"]), intent("b", ["hi?", "three", "four"])])
    (same,) = of_kind(intents, "same_words")
    assert (same.tag, same.message) == ("b", "pattern 'hi?' has the same words as 'hi!' of 'a'")
    assert of_kind(intents, "shared_pattern") == []


def test_a_number_where_a_list_belongs_is_a_list_of_one_text(tmp_path):
    intents = load(tmp_path, [intent("a", 42), intent("b")])
    assert intents.intents[0].patterns == ("42",)
    assert of_kind(intents, "not_text")[0].message == '"patterns" is the number 42; read as a list of one text'


def test_only_blank_responses_are_reported_once_as_no_responses(tmp_path):
    intents = load(tmp_path, [intent("a", responses=["", " "]), intent("b", responses=["", "ok"])])
    assert [(f.kind, f.tag) for f in intents.findings if f.kind in ("no_responses", "blank_response")] == [
        ("no_responses", "a"),
        ("blank_response", "b"),
    ]


def test_a_tag_with_a_line_break_keeps_findings_on_one_line(tmp_path):
    intents = load(tmp_path, [intent("two\nlines", ["hi"]), intent("b")])
    (few,) = of_kind(intents, "few_patterns")
    assert few.where.endswith("intent #1 ('two\\nlines')") and "\n" not in str(few)
    assert intents.tags[0] == "two\nlines"  # the tag itself is unchanged
