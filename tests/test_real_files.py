"""The intents.json files people really write, end to end: `chatbot train` on them with no flags, then answers.

Loader details (every repair, every error) are in test_intents.py; this file checks what a user sees when they bring
such a file: it trains, the summary is short, their tags come back unchanged, and their own patterns are recognised.
"""

import json

import pytest
import torch
from click.testing import CliRunner
from small_intents import N_INTENTS, small_intents_document

from chatbot.cli import main
from training.checkpoint import FORMAT_VERSION, load_checkpoint, save_checkpoint
from training.classifier import IntentClassifier
from training.intents import KINDS
from training.intents_reader import load_intents


@pytest.fixture
def runner():
    return CliRunner()


def write(path, document, encoding_prefix=b""):
    path.write_bytes(encoding_prefix + json.dumps(document, ensure_ascii=False, indent=1).encode())
    return path


@pytest.fixture(scope="module")
def small_model(tmp_path_factory):
    """150 intents of 1-3 patterns, some Bengali and Vietnamese, trained by `chatbot train` with no options."""
    folder = tmp_path_factory.mktemp("small")
    intents = write(folder / "intents.json", small_intents_document())
    model = folder / "chatbot.pt"
    result = CliRunner().invoke(main, ["train", "--intents", str(intents), "--model", str(model)])
    assert result.exit_code == 0, result.output
    return intents, model, result


def test_many_intents_with_few_patterns_learn_their_own_patterns(small_model):
    intents_path, model, _ = small_model
    intents = load_intents(intents_path)
    assert len(intents.tags) == N_INTENTS
    assert max(len(i.patterns) for i in intents.intents) == 3 and min(len(i.patterns) for i in intents.intents) == 1
    texts, labels = intents.examples()
    answers = IntentClassifier.from_checkpoint(model).predict_batch(texts)
    right = sum(answer.intent == label for answer, label in zip(answers, labels))
    assert right / len(texts) >= 0.95, f"{right} of {len(texts)}"
    for script_sample in ["লাইব্রেরি কখন খোলে", "thư viện mở cửa lúc mấy giờ"]:
        assert answers[texts.index(script_sample)].intent == labels[texts.index(script_sample)]


def test_small_data_says_how_it_was_validated(small_model):
    """A single-pattern intent cannot be held out: the output says what small data gets instead."""
    _, model, result = small_model
    n_single = sum(len(intent["patterns"]) == 1 for intent in small_intents_document()["intents"])
    assert f"{n_single} intent(s) with a single pattern are trained on, never held out" in result.output
    checkpoint = load_checkpoint(model)
    assert checkpoint["validation"].startswith("validation on ")
    assert checkpoint["fallback"]["calibrated"] is True
    assert checkpoint["refit_on_all_data"] is True


def test_summary_is_one_data_line_and_one_line_per_kind_of_finding(small_model):
    _, _, result = small_model
    lines = result.output.splitlines()
    data = [line for line in lines if line.startswith("Data: ")]
    assert len(data) == 1 and f"{N_INTENTS} intents ({N_INTENTS} trainable)" in data[0]
    grouped = [line for line in lines if line.startswith(("warning: ", "note: "))]
    assert len(grouped) <= len(KINDS)  # 101 intents with few patterns: one grouped line, not 101
    few = [line for line in grouped if "fewer than 3 patterns" in line]
    n_few = sum(len(intent["patterns"]) < 3 for intent in small_intents_document()["intents"])
    assert len(few) == 1 and few[0].startswith(f"note: {n_few} × ") and few[0].endswith(f" and {n_few - 3} more")


def test_tags_in_any_script_come_back_unchanged_through_http(small_model):
    from app import create_app

    _, model, _ = small_model
    client = create_app({"MODEL_PATH": str(model), "TESTING": True}).test_client()
    for message, tag in [("লাইব্রেরি কখন খোলে", "লাইব্রেরি কখন খোলে?"), ("xin chào", "chào hỏi")]:
        answer = client.post("/api/chat", json={"message": message})
        assert answer.status_code == 200
        assert answer.json["intent"] == tag
        assert json.loads(answer.data.decode("utf-8"))["intent"] == tag


MESSY = [
    {"Tag": "greeting", "Patterns": ["Hi", "hello", "hello", "  ", "?!"], "response": "Hello!"},
    {"tag": "goodbye", "patterns": ["bye", "see you later", "goodbye"], "responses": []},
    {"tag": "order_followup", "patterns": [], "responses": ["Anything else?"], "context_filter": "ordering"},
    {"tag": "greeting", "patterns": ["hey there"], "responses": ["Hey!"], "context_set": ""},
    {"tag": "What are your opening hours?", "patterns": ["when are you open", "opening hours"], "responses": "9-5"},
]


def test_a_messy_file_trains_and_the_checkpoint_keeps_every_intent(runner, tmp_path):
    intents = write(tmp_path / "messy.json", MESSY, encoding_prefix=b"\xef\xbb\xbf")
    model = tmp_path / "chatbot.pt"
    result = runner.invoke(main, ["train", "--intents", str(intents), "--model", str(model)])
    assert result.exit_code == 0, result.output
    checkpoint = load_checkpoint(model)
    assert checkpoint["format_version"] == FORMAT_VERSION
    assert checkpoint["tags"] == ["greeting", "goodbye", "What are your opening hours?"]
    records = {record["tag"]: record for record in checkpoint["intents"]}
    assert records["order_followup"] == {
        "tag": "order_followup",
        "trainable": False,
        "patterns": 0,
        "responses": ["Anything else?"],
        "extra_json": '{"context_filter": "ordering"}',
    }
    assert json.loads(records["greeting"]["extra_json"]) == {"context_set": ""}
    assert records["greeting"]["responses"] == ["Hello!", "Hey!"]
    assert checkpoint["data_findings"]["duplicate_tag"] == 1
    assert checkpoint["data_findings"]["response_only"] == 1
    assert checkpoint["features"]["stemmer"] == "porter"
    classifier = IntentClassifier.from_checkpoint(model)
    bye = classifier.predict("bye, see you later")
    assert bye.intent == "goodbye" and not bye.fallback
    assert bye.response in classifier.fallback_responses  # recognised, but it has nothing of its own to say
    assert classifier.info()["response_only_intents"] == 1


def test_strict_refuses_a_file_that_needs_repairs_and_keeps_the_old_model(runner, tmp_path, model_copy):
    before = model_copy.read_bytes()
    intents = write(tmp_path / "messy.json", MESSY)
    result = runner.invoke(main, ["train", "--strict", "--intents", str(intents), "--model", str(model_copy)])
    assert result.exit_code == 1
    assert f"Error: {intents}: --strict: " in result.output and "repair(s) needed" in result.output
    assert "Traceback" not in result.output
    assert model_copy.read_bytes() == before


def test_strict_accepts_the_shipped_file(runner, tmp_path, intents_path):
    model = tmp_path / "chatbot.pt"
    result = runner.invoke(main, ["train", "--strict", "--intents", str(intents_path), "--model", str(model)])
    assert result.exit_code == 0, result.output
    assert "warning:" not in result.output


def test_if_needed_retrains_when_the_stemmer_changes_and_keeps_a_chosen_one(runner, tmp_path):
    intents = write(tmp_path / "intents.json", MESSY)
    model = tmp_path / "chatbot.pt"
    base = ["train", "--if-needed", "--intents", str(intents), "--model", str(model)]
    assert "Saved" in runner.invoke(main, base).output
    assert "is up to date" in runner.invoke(main, base).output
    changed = runner.invoke(main, [*base, "--stemmer", "none"])
    assert f"Retraining {model}: it was trained with the porter stemmer, not none." in changed.output
    assert load_checkpoint(model)["features"]["stemmer"] == "none"
    assert "is up to date" in runner.invoke(main, base).output  # no --stemmer: the checkpoint's is fine
    intents.write_text(intents.read_text().replace("see you later", "see you soon"))
    edited = runner.invoke(main, base)  # the README's main command after an edit: retrain, keep the stemmer
    assert f"Retraining {model}: the intents file has changed since it was trained." in edited.output
    assert "Stemmer: none, as in" in edited.output
    assert load_checkpoint(model)["features"]["stemmer"] == "none"


def test_if_needed_retrains_a_checkpoint_of_an_older_format(runner, tmp_path, intents_path):
    model = tmp_path / "chatbot.pt"
    base = ["train", "--if-needed", "--intents", str(intents_path), "--model", str(model)]
    assert runner.invoke(main, base).exit_code == 0
    checkpoint = torch.load(model, weights_only=True)
    save_checkpoint(checkpoint | {"format_version": 1}, model)
    again = runner.invoke(main, base)
    assert "it was made by an older version (checkpoint format 1)" in again.output and "Saved" in again.output


def test_a_stemmer_is_recorded_and_used_when_answering(runner, tmp_path):
    document = {
        "intents": [
            {"tag": "libros", "patterns": ["busco libros", "quiero leer un libro"], "responses": ["Biblioteca"]},
            {"tag": "comida", "patterns": ["tengo hambre", "quiero comer"], "responses": ["Cafetería"]},
        ]
    }
    intents, model = write(tmp_path / "es.json", document), tmp_path / "es.pt"
    result = runner.invoke(main, ["train", "--stemmer", "spanish", "--intents", str(intents), "--model", str(model)])
    assert result.exit_code == 0, result.output
    classifier = IntentClassifier.from_checkpoint(model)
    assert classifier.stemmer == "spanish" and "libr" in classifier.vocabulary
    assert classifier.predict("librería de libros").intent == "libros"


def test_format_1_checkpoints_still_load_and_answer(tmp_path, trained_model):
    """Checkpoints written before stemmer settings recorded nltk's class name and no intent records."""
    checkpoint = torch.load(trained_model, weights_only=True)
    checkpoint["format_version"] = 1
    checkpoint["features"]["stemmer"] = "nltk PorterStemmer"
    checkpoint["features"]["tokenizer"] = r"regular expression \w+ (nltk RegexpTokenizer's rule), lower-cased"
    for key in ("intents", "data_findings"):
        checkpoint.pop(key)
    old = save_checkpoint(checkpoint, tmp_path / "old.pt")
    classifier = IntentClassifier.from_checkpoint(old)
    assert classifier.stemmer == "porter"
    assert classifier.predict("hello there").intent == "greeting"
