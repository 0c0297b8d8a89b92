import json
import stat

import pytest
from click.testing import CliRunner

from chatbot.cli import main
from training.csv_import import PLACEHOLDER_RESPONSE, CsvImportError, Row, build_intents, read_rows
from training.intents_reader import load_intents

ROUND_TRIP_CSV = (
    "text,label\n"
    "hi there,greet\n"
    '"Hello, bot!",greet\n'
    "bye,leave\n"
    '"a message on\ntwo lines",leave\n'
    "hi there,greet\n"  # an exact repeat under the same label: kept once
    '"Grüß dich ""friend""?",greet\n'
    "thanks a lot,thank\n"
)


@pytest.fixture
def runner():
    return CliRunner()


def write(tmp_path, content, name="data.csv", encoding="utf-8"):
    path = tmp_path / name
    path.write_text(content, encoding=encoding, newline="")
    return path


def run_import(runner, tmp_path, content, *options):
    source = write(tmp_path, content)
    out = tmp_path / "intents.json"
    return runner.invoke(main, ["import-csv", str(source), "--out", str(out), *options]), source, out


def test_csv_round_trips_through_load_intents(runner, tmp_path):
    result, _, out = run_import(runner, tmp_path, ROUND_TRIP_CSV)
    assert result.exit_code == 0, result.output
    texts, labels = load_intents(out).examples()
    assert list(zip(texts, labels)) == [
        ("hi there", "greet"),
        ("Hello, bot!", "greet"),
        ('Grüß dich "friend"?', "greet"),
        ("bye", "leave"),
        ("a message on\ntwo lines", "leave"),
        ("thanks a lot", "thank"),
    ]
    assert load_intents(out).tags == ["greet", "leave", "thank"]  # order of first appearance
    assert (
        "Wrote " in result.output and ": 3 intents, 6 patterns from 7 rows; 1 repeated text(s) dropped" in result.output
    )
    assert "3 intent(s) have a placeholder response" in result.output


def test_output_is_readable_utf8_json_with_mode_0644_and_no_temp_file(runner, tmp_path):
    result, _, out = run_import(runner, tmp_path, ROUND_TRIP_CSV)
    assert result.exit_code == 0, result.output
    assert "Grüß" in out.read_text(encoding="utf-8")  # not \u escapes: people edit this file
    assert stat.S_IMODE(out.stat().st_mode) == 0o644
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data.csv", "intents.json"]


def test_placeholder_responses_unless_given(runner, tmp_path):
    responses = tmp_path / "responses.json"
    responses.write_text(json.dumps({"greet": ["Hello!"], "unused_tag": ["never said"]}))
    result, _, out = run_import(runner, tmp_path, ROUND_TRIP_CSV, "--responses", str(responses))
    assert result.exit_code == 0, result.output
    intents = {i.tag: i.responses for i in load_intents(out).intents}
    assert intents["greet"] == ("Hello!",)
    assert intents["leave"] == (PLACEHOLDER_RESPONSE.format(tag="leave"),)
    assert "warning: responses for 'unused_tag', which no row of" in result.stderr
    assert "2 intent(s) have a placeholder response" in result.output


def test_label_column_option_and_extra_columns(runner, tmp_path):
    content = "id,category,text\n1,card_arrival,where is my card\n2,top_up,how do I top up\n"
    result, _, out = run_import(runner, tmp_path, content, "--label-column", "category")
    assert result.exit_code == 0, result.output
    assert load_intents(out).examples() == (["where is my card", "how do I top up"], ["card_arrival", "top_up"])


def test_missing_label_column_lists_columns_and_suggests_one(runner, tmp_path):
    result, source, out = run_import(runner, tmp_path, "text,category\nhi,greet\n")
    assert result.exit_code == 1
    assert result.output.strip().splitlines()[-1] == (
        f"Error: {source}: no column 'label'; the header has 'text', 'category'; did you mean --label-column category?"
    )
    assert not out.exists()


def test_missing_text_column(runner, tmp_path):
    result, source, _ = run_import(runner, tmp_path, "utterance,label\nhi,greet\n", "--text-column", "message")
    assert result.exit_code == 1
    assert f"Error: {source}: no column 'message'; the header has 'utterance', 'label'; " in result.output
    assert "did you mean --text-column utterance?" in result.output


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('text,label\n"two\nlines",a\n   ,b\n', "line 4: empty text"),  # a quoted text's newline counts as a line
        ("text,label\nhello,a\nhey,\n", "line 3: empty label"),
        ("text,label\nhello,a\nhey\n", "line 3: empty label"),  # a short row: the label field is missing
        ("text,label\nhello,a\n???,b\n", "line 3: text '???' has no words"),
        ("text,label\n", "no rows under the header"),
        ("", "empty file; expected a header line naming the columns"),
    ],
)
def test_bad_rows_are_named_by_line(runner, tmp_path, content, message):
    result, source, out = run_import(runner, tmp_path, content)
    assert result.exit_code == 1
    assert f"Error: {source}: {message}" in result.output
    assert "Traceback" not in result.output
    assert not out.exists()


def test_same_text_under_two_labels_is_an_error_naming_both_lines(runner, tmp_path):
    content = "text,label\nTop up please,top_up\nhello,greet\ntop  up PLEASE,top_up_failed\n"
    result, source, out = run_import(runner, tmp_path, content)
    assert result.exit_code == 1
    assert (
        f"Error: {source}: 1 text(s) under two labels, first line 2 'Top up please' (top_up) and line 4 "
        "(top_up_failed); fix the labels or pass --drop-conflicts"
    ) in result.output
    assert not out.exists()


def test_drop_conflicts_drops_every_copy_with_a_warning(runner, tmp_path):
    content = "text,label\nTop up please,top_up\ntop up now,top_up\nhello,greet\ntop  up PLEASE,greet\n"
    result, source, out = run_import(runner, tmp_path, content, "--drop-conflicts")
    assert result.exit_code == 0, result.output
    assert f"warning: {source}: dropped 1 text(s) that appear under two labels" in result.stderr
    assert load_intents(out).examples() == (["top up now", "hello"], ["top_up", "greet"])
    assert "2 row(s) with a text under two labels dropped" in result.output


def test_existing_output_needs_force_and_is_left_alone(runner, tmp_path):
    out = tmp_path / "intents.json"
    out.write_text("hand-written knowledge")
    source = write(tmp_path, ROUND_TRIP_CSV)
    result = runner.invoke(main, ["import-csv", str(source), "--out", str(out)])
    assert result.exit_code == 1
    assert f"Error: {out} exists; pass --force to replace it" in result.output
    assert out.read_text() == "hand-written knowledge"
    result = runner.invoke(main, ["import-csv", str(source), "--out", str(out), "--force"])
    assert result.exit_code == 0, result.output
    assert load_intents(out).tags == ["greet", "leave", "thank"]


def test_failed_import_leaves_existing_output_untouched(runner, tmp_path):
    out = tmp_path / "intents.json"
    out.write_text("old")
    source = write(tmp_path, "text,label\nhello,\n")
    result = runner.invoke(main, ["import-csv", str(source), "--out", str(out), "--force"])
    assert result.exit_code == 1
    assert out.read_text() == "old"


def test_unreadable_inputs(runner, tmp_path):
    missing = tmp_path / "nope.csv"
    result = runner.invoke(main, ["import-csv", str(missing), "--out", str(tmp_path / "o.json")])
    assert result.exit_code == 1 and f"Error: {missing}: file not found" in result.output
    latin1 = write(tmp_path, "text,label\ncafé,a\n", name="latin1.csv", encoding="latin-1")
    result = runner.invoke(main, ["import-csv", str(latin1), "--out", str(tmp_path / "o.json")])
    assert result.exit_code == 1
    assert f"Error: {latin1}: not UTF-8 text (line 2, byte 14); save it as UTF-8" in result.output


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("[1, 2]", 'expected a JSON object {"tag": ["response", ...]}'),
        ('{"greet": "Hello!"}', "'greet': expected a non-empty list of non-blank strings"),
        ('{"greet": []}', "'greet': expected a non-empty list of non-blank strings"),
        ('{"greet": ', "not valid JSON"),
    ],
)
def test_bad_responses_file(runner, tmp_path, content, message):
    responses = tmp_path / "responses.json"
    responses.write_text(content)
    result, _, out = run_import(runner, tmp_path, ROUND_TRIP_CSV, "--responses", str(responses))
    assert result.exit_code == 1
    assert f"Error: {responses}: {message}" in result.output
    assert not out.exists()


def test_utf8_bom_in_header_is_ignored(tmp_path):
    source = write(tmp_path, "\ufefftext,label\nhello,greet\n")
    assert read_rows(source, "text", "label") == [Row(2, "hello", "greet")]


def test_build_intents_rejects_an_empty_label_without_the_cli():
    with pytest.raises(CsvImportError, match=r"^x.csv: line 3: empty label$"):
        build_intents([Row(2, "hello", "greet"), Row(3, "bye", "")], "x.csv")


@pytest.mark.slow
def test_banking77_imports_with_every_distinct_row(runner, tmp_path, banking77):
    out = tmp_path / "banking77.json"
    result = runner.invoke(
        main, ["import-csv", str(banking77 / "train.csv"), "--out", str(out), "--label-column", "category"]
    )
    assert result.exit_code == 0, result.output
    intents = load_intents(out)
    assert len(intents.tags) == 77
    # 10,003 rows: four repeat another row of their label but for case or spacing, and none is under two labels
    assert len(intents.examples()[0]) == 9_999
    assert (
        "Wrote " + str(out) + ": 77 intents, 9999 patterns from 10003 rows; 4 repeated text(s) dropped" in result.output
    )
    assert intents.repairs == []  # what import-csv writes loads without a repair
