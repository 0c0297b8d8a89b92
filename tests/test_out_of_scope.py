"""The out-of-scope intent: patterns the bot must not answer, written by the user, through train, predict and HTTP."""

import json
import urllib.request

import pytest
from click.testing import CliRunner
from intents_files import write

from chatbot.cli import main
from training.classifier import IntentClassifier

LIGHTS = ["turn on the lights", "lights on please", "switch the lamp on", "make the room bright", "light up the room"]
MUSIC = ["play some music", "put on a song", "start my playlist", "play jazz", "i want to hear music"]
ELSEWHERE = [
    "what is the capital of france",
    "who won the football match",
    "how tall is mount everest",
    "tell me the stock price of apple",
    "what is the weather in paris",
    "who wrote hamlet",
]


def bot(out_of_scope: dict | None) -> dict:
    intents = [
        {"tag": "lights", "patterns": LIGHTS, "responses": ["Lights on."]},
        {"tag": "music", "patterns": MUSIC, "responses": ["Playing."]},
    ]
    return {"intents": intents + ([out_of_scope] if out_of_scope else [])}


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """(model path, intents path) of a bot with out-of-scope examples and no responses for them."""
    folder = tmp_path_factory.mktemp("oos")
    intents = write(folder, bot({"tag": "out_of_scope", "patterns": ELSEWHERE}))
    model = folder / "oos.pt"
    result = CliRunner().invoke(main, ["train", "--intents", str(intents), "--model", str(model)])
    assert result.exit_code == 0, result.output
    return model, intents


def test_validate_reports_the_out_of_scope_examples_as_a_note(trained):
    result = CliRunner().invoke(main, ["validate", "--strict", str(trained[1])])
    assert result.exit_code == 0, result.output
    assert "6 out-of-scope example(s): messages like them get the fallback response" in result.output
    assert "[out_of_scope]" in result.output and "no responses" not in result.output


def test_a_message_like_the_examples_falls_back_with_the_fallback_response(trained):
    classifier = IntentClassifier.from_checkpoint(trained[0])
    answer = classifier.predict("what is the capital of spain")
    assert answer.intent == "out_of_scope" and answer.fallback
    assert answer.response in classifier.fallback_responses
    assert classifier.predict("turn the lights on").intent == "lights"
    assert not classifier.predict("turn the lights on").fallback


def test_out_of_scope_responses_of_its_own_are_used(tmp_path):
    own = {"tag": "out_of_scope", "patterns": ELSEWHERE, "responses": ["I only do lights and music."]}
    intents, model = write(tmp_path, bot(own)), tmp_path / "m.pt"
    assert CliRunner().invoke(main, ["train", "--intents", str(intents), "--model", str(model)]).exit_code == 0
    answer = IntentClassifier.from_checkpoint(model).predict("who wrote hamlet")
    assert (answer.intent, answer.fallback, answer.response) == ("out_of_scope", True, "I only do lights and music.")


def test_predict_command_and_http_answer_out_of_scope_as_fallback(trained, monkeypatch):
    result = CliRunner().invoke(main, ["predict", "--model", str(trained[0]), "who won the football match"])
    assert result.exit_code == 0, result.output
    printed = json.loads(result.output.strip().splitlines()[-1])
    assert printed["intent"] == "out_of_scope" and printed["fallback"] is True

    from app import create_app

    client = create_app({"TESTING": True, "MODEL_PATH": str(trained[0])}).test_client()
    reply = client.post("/api/chat", json={"message": "who won the football match"})
    assert reply.status_code == 200
    assert reply.get_json()["fallback"] is True and reply.get_json()["intent"] == "out_of_scope"
    reply = client.post("/api/chat", json={"message": "play some jazz"})
    assert reply.get_json()["intent"] == "music" and reply.get_json()["fallback"] is False


def test_a_served_bot_falls_back_on_out_of_scope_messages_over_real_http(trained, start_server):
    server = start_server(trained[0], workers=1, threads=2)
    request = urllib.request.Request(
        server.url + "api/chat",
        data=json.dumps({"message": "who won the football match"}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as reply:
        answer = json.loads(reply.read())
    assert answer["intent"] == "out_of_scope" and answer["fallback"] is True


def test_the_out_of_scope_intent_is_recorded_in_the_checkpoint(trained):
    classifier = IntentClassifier.from_checkpoint(trained[0])
    assert classifier.metadata["fallback"]["out_of_scope_tag"] == "out_of_scope"
    assert "out_of_scope" in classifier.tags
