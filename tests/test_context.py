"""Follow-up questions: context_filter / context_set / context_lifespan, from the rules to real HTTP conversations.

The conversation's contexts travel in a signed token: two separate servers that share the secret continue each
other's conversations, and a token that is tampered with, expired or foreign resets the context, never fails.
"""

from __future__ import annotations

import json
import time
import urllib.request
from pathlib import Path

import pytest
from click.testing import CliRunner
from itsdangerous import URLSafeTimedSerializer

from app.context_token import SALT, ContextTokens
from chatbot.cli import main
from training.classifier import IntentClassifier
from training.context import ContextKeyError, ContextRules, IntentContext, intent_context
from training.intents_reader import parse_intents

SECRET = "a-secret-shared-by-both-servers-0123456789"


def post_chat(url: str, message: str, context: str | None = None) -> tuple[int, dict]:
    body = {"message": message} | ({"context": context} if context is not None else {})
    request = urllib.request.Request(
        url + "api/chat", json.dumps(body).encode(), {"Content-Type": "application/json"}, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            return answer.status, json.load(answer)
    except urllib.error.HTTPError as error:
        return error.code, json.load(error)


def converse(url: str, messages: list[str], context: str | None = None) -> list[dict]:
    """Send `messages` in turn, each with the token of the answer before; the answers."""
    answers = []
    for message in messages:
        status, answer = post_chat(url, message, context)
        assert status == 200, answer
        answers.append(answer)
        context = answer["context"]["token"]
    return answers


# --- The rules ---------------------------------------------------------------------------------------------------


def test_context_keys_take_a_name_or_a_list_and_blank_means_none():
    assert intent_context({}) == IntentContext()
    assert intent_context({"context_set": "rentalday"}).sets == ("rentalday",)
    assert intent_context({"context_set": ""}).sets == ()  # the tutorial's way of clearing
    assert intent_context({"context_set": []}).sets == ()
    assert intent_context({"context_filter": ["a", " b ", "a"]}).filter == {"a", "b"}
    assert intent_context({"context_filter": ""}).filter == frozenset()  # no filter: always eligible
    assert intent_context({"context_set": "x", "context_lifespan": 3}).lifespan == 3
    for bad in ({"context_set": 5}, {"context_filter": [1]}, {"context_lifespan": 0}, {"context_lifespan": True}):
        with pytest.raises(ContextKeyError):
            intent_context(bad)


RULES = ContextRules(
    {
        "ask": IntentContext(sets=("asked",), lifespan=2),
        "answer": IntentContext(filter=frozenset({"asked"})),
        "forever": IntentContext(sets=("open",)),
        "clear": IntentContext(sets=()),
        "plain": IntentContext(),
    }
)


def test_a_lifespan_counts_the_users_turns_and_then_expires():
    active = RULES.after({}, "ask")
    assert active == {"asked": 2}
    assert RULES.eligible(["answer", "plain"], active) == [True, True]
    active = RULES.after(active, "plain")  # turn 1 of 2
    assert active == {"asked": 1} and RULES.eligible(["answer"], active) == [True]
    active = RULES.after(active, "plain")  # turn 2 of 2
    assert active == {} and RULES.eligible(["answer"], active) == [False]


def test_names_without_a_lifespan_last_until_replaced_or_cleared():
    active = RULES.after({}, "forever")
    for _ in range(5):
        active = RULES.after(active, "plain")
    assert active == {"open": None}
    assert RULES.after(active, "ask") == {"asked": 2}  # replaced, not added to
    assert RULES.after(active, "clear") == {}  # "" or [] clears


def test_a_fallback_leaves_the_context_as_it_was():
    active = {"asked": 1}
    assert RULES.after(active, None) == active  # not even a turn used


def test_names_the_model_does_not_use_are_dropped_and_reported():
    assert RULES.known({"asked": 1, "gone": None}) == ({"asked": 1}, ["gone"])


# --- Validation ----------------------------------------------------------------------------------------------------


def test_validate_reports_a_filter_nobody_sets_and_strict_refuses_it(tmp_path: Path):
    document = {
        "intents": [
            {"tag": "a", "patterns": ["hello", "hi"], "responses": ["x"], "context_set": "used_nowhere"},
            {"tag": "b", "patterns": ["today", "now"], "responses": ["y"], "context_filter": "never_set"},
        ]
    }
    path = tmp_path / "intents.json"
    path.write_text(json.dumps(document), encoding="utf-8")
    intents = parse_intents(document, str(path))
    assert {(f.kind, f.tag) for f in intents.findings} >= {("unreachable_context", "b"), ("unused_context", "a")}
    runner = CliRunner()
    result = runner.invoke(main, ["validate", str(path)])
    assert result.exit_code == 0, result.output
    assert "warning: " in result.output and "'never_set': no intent sets it, so this intent can never answer" in (
        result.output
    )
    assert "note: " in result.output and "context_set 'used_nowhere': no intent filters on it" in result.output
    strict = runner.invoke(main, ["validate", "--strict", str(path)])
    assert strict.exit_code == 1 and "refused under --strict" in strict.output
    train = runner.invoke(main, ["train", "--strict", "--intents", str(path), "--model", str(tmp_path / "m.pt")])
    assert train.exit_code == 1 and "--strict" in train.output and not (tmp_path / "m.pt").exists()


def test_a_malformed_context_key_names_the_file_the_intent_and_the_key(tmp_path: Path):
    path = tmp_path / "intents.json"
    document = {
        "intents": [
            {"tag": "a", "patterns": ["hello"], "responses": ["x"]},
            {"tag": "b", "patterns": ["bye"], "responses": ["y"], "context_filter": {"name": "x"}},
        ]
    }
    path.write_text(json.dumps(document), encoding="utf-8")
    result = CliRunner().invoke(main, ["validate", str(path)])
    assert result.exit_code == 1
    assert f"Error: {path}: intent #2 ('b'): \"context_filter\" must be a context name or a list of names" in (
        result.output
    )


# --- Answers -------------------------------------------------------------------------------------------------------


def test_a_filtered_intent_answers_only_in_its_context(rental_model: Path):
    bot = IntentClassifier.from_checkpoint(rental_model, seed=0)
    assert bot.predict("today").intent == "today"  # single messages rank every intent, as before
    alone = bot.respond("today", {})
    assert alone.prediction.intent != "today" and alone.filtered == ["today"] and alone.active == {}
    asked = bot.respond("can we rent a moped?", {})
    assert (asked.prediction.intent, asked.active) == ("rental", {"rentalday": None})
    followed = bot.respond("today", asked.active)
    assert (followed.prediction.intent, followed.prediction.fallback, followed.filtered) == ("today", False, [])
    assert bot.respond("hello", followed.active).active == {}  # the greeting clears it
    assert bot.info()["context_names"] == ["rentalday"]


def test_train_context_lifespan_gives_intents_without_one_a_default(tmp_path: Path):
    from conftest import RENTAL_INTENTS

    document = json.loads(json.dumps(RENTAL_INTENTS))
    document["intents"].append(
        {"tag": "later", "patterns": ["later this week", "another day"], "responses": ["When?"],
         "context_set": "rentalday", "context_lifespan": 3}
    )  # fmt: skip
    intents = tmp_path / "intents.json"
    intents.write_text(json.dumps(document), encoding="utf-8")
    default = parse_intents(document).with_context_lifespan(1)
    assert [(i.tag, i.context.lifespan) for i in default.intents if i.context.sets is not None] == [
        ("greeting", None),  # it only clears: nothing to keep alive
        ("rental", 1),
        ("later", 3),  # its own lifespan stands
    ]

    model = tmp_path / "chatbot.pt"
    train = ["train", "--intents", str(intents), "--model", str(model), "--context-lifespan", "1"]
    assert CliRunner().invoke(main, train).exit_code == 0
    bot = IntentClassifier.from_checkpoint(model, seed=0)
    asked = bot.respond("can we rent a moped?", {})
    assert asked.active == {"rentalday": 1}
    assert bot.respond("today", asked.active).prediction.intent == "today"  # the next turn may answer it
    thanked = bot.respond("thanks", asked.active)
    assert thanked.prediction.intent == "thanks" and thanked.active == {}  # one turn, then it expired
    assert bot.respond("today", thanked.active).filtered == ["today"]

    again = CliRunner().invoke(main, [*train, "--if-needed"])
    assert "up to date" in again.output
    longer = CliRunner().invoke(main, [*train[:-1], "2", "--if-needed"])
    assert "Retraining" in longer.output and "context lifespans" in longer.output
    assert IntentClassifier.from_checkpoint(model).respond("rent a scooter", {}).active == {"rentalday": 2}


def test_when_every_intent_is_filtered_the_answer_is_the_fallback(tmp_path: Path):
    document = {
        "intents": [
            {"tag": "a", "patterns": ["hello", "hi"], "responses": ["x"], "context_filter": "k"},
            {"tag": "b", "patterns": ["bye", "see you"], "responses": ["y"], "context_filter": "k"},
        ]
    }
    from training.pipeline import train_model

    bot = IntentClassifier(train_model(parse_intents(document)).checkpoint, seed=0)
    turn = bot.respond("hello", {})
    assert turn.prediction.fallback and turn.prediction.intent == "a" and turn.filtered[0] == "a"
    assert bot.respond("hello", {"k": None}).prediction.intent == "a"


def test_the_terminal_chat_carries_the_context_and_reset_starts_over(rental_model: Path):
    script = "today\ncan we rent a moped?\ntoday\n/reset\ntoday\nquit\n"
    result = CliRunner().invoke(main, ["chat", "-v", "--model", str(rental_model)], input=script)
    assert result.exit_code == 0, result.output
    answers = [line for line in result.output.splitlines() if line.startswith("     [")]
    assert "not in context: today" in answers[0]
    assert answers[1].startswith("     [rental") and "context: rentalday" in answers[1]
    assert answers[2].startswith("     [today")
    assert "(new conversation: no context)" in result.output
    assert "not in context: today" in answers[3]


# --- Over HTTP -----------------------------------------------------------------------------------------------------


def test_bad_context_field_is_a_400_and_a_token_from_nowhere_resets(client):
    response = client.post("/api/chat", json={"message": "hello", "context": 5})
    assert response.status_code == 400 and "context" in response.get_json()["error"]
    response = client.post("/api/chat", json={"message": "hello", "context": "not-a-token"})
    assert response.status_code == 200
    assert response.get_json()["context"] | {"token": ""} == {"token": "", "active": [], "reset": "invalid"}
    fresh = client.post("/api/chat", json={"message": "hello"}).get_json()
    assert fresh["context"]["reset"] is None and fresh["filtered_out"] == []


def test_the_rental_flow_over_real_http(start_server, rental_model: Path):
    server = start_server(rental_model, workers=2, threads=2, env={"CHATBOT_SECRET_KEY": SECRET})
    without = converse(server.url, ["today"])[0]
    assert without["intent"] != "today" and without["filtered_out"] == ["today"]
    rental, today, hello, again = converse(server.url, ["can we rent a moped?", "today", "hello", "today"])
    assert (rental["intent"], rental["context"]["active"]) == ("rental", ["rentalday"])
    assert (today["intent"], today["fallback"]) == ("today", False)
    assert today["response"] == "For rentals today please call 1-800-MYMOPED"
    assert hello["context"]["active"] == [] and again["intent"] != "today"
    with urllib.request.urlopen(server.url + "api/health", timeout=10) as response:
        health = json.load(response)
    assert health["model"]["context_names"] == ["rentalday"]


def test_the_banking_flow_asks_in_order_over_real_http(start_server, banking_flow_model: Path):
    server = start_server(banking_flow_model, workers=1, threads=2, env={"CHATBOT_SECRET_KEY": SECRET})
    early = converse(server.url, ["my first name is John"])[0]
    assert early["intent"] != "first_name" and "first_name" in early["filtered_out"]
    steps = ["my customer id is 12345", "my first name is John", "I was born on 1 May 1990", "what is my balance"]
    answers = converse(server.url, steps)
    assert [a["intent"] for a in answers] == ["customer_id", "first_name", "date_of_birth", "balance"]
    assert [a["context"]["active"] for a in answers] == [
        ["has_id"],
        ["has_id", "has_name"],
        ["verified"],
        ["verified"],  # lifespan 2: one of its two turns used
    ]


def test_two_servers_sharing_the_secret_continue_each_others_conversation(start_server, rental_model: Path):
    first = start_server(rental_model, workers=1, threads=2, env={"CHATBOT_SECRET_KEY": SECRET})
    second = start_server(rental_model, workers=1, threads=2, env={"CHATBOT_SECRET_KEY": SECRET})
    status, rental = post_chat(first.url, "can we rent a moped?")
    assert status == 200 and rental["context"]["active"] == ["rentalday"]
    status, today = post_chat(second.url, "today", rental["context"]["token"])
    assert (status, today["intent"], today["context"]["reset"]) == (200, "today", None)
    status, hello = post_chat(first.url, "hello", today["context"]["token"])
    assert (status, hello["intent"], hello["context"]["active"]) == (200, "greeting", [])


def test_tampered_expired_and_foreign_tokens_reset_the_context_never_fail(start_server, rental_model: Path):
    server = start_server(
        rental_model, workers=1, threads=2, env={"CHATBOT_SECRET_KEY": SECRET, "CHATBOT_CONTEXT_MAX_AGE": "2"}
    )
    token = post_chat(server.url, "can we rent a moped?")[1]["context"]["token"]
    tampered = token[:-3] + ("AAA" if not token.endswith("AAA") else "BBB")
    foreign = URLSafeTimedSerializer("another-secret-0123456789", salt=SALT).dumps({"a": {"rentalday": None}})
    wrong_shape = URLSafeTimedSerializer(SECRET, salt=SALT).dumps({"a": {"rentalday": "forever"}})
    for bad in (tampered, foreign, wrong_shape, "x" * 5000):
        status, answer = post_chat(server.url, "today", bad)
        assert status == 200 and answer["context"]["reset"] == "invalid" and answer["intent"] != "today"
    time.sleep(3.2)  # itsdangerous stamps whole seconds: older than 2 s for sure
    status, answer = post_chat(server.url, "today", token)
    assert (status, answer["context"]["reset"], answer["context"]["active"]) == (200, "expired", [])


def test_a_token_for_names_the_model_no_longer_has_drops_them(client):
    tokens: ContextTokens = client.application.extensions["context_tokens"]
    old = tokens.dumps({"retired_context": None}, "older-model", "conversation-1")
    answer = client.post("/api/chat", json={"message": "hello", "context": old}).get_json()
    assert answer["context"]["reset"] == "unknown_names" and answer["context"]["active"] == []


def test_the_token_stays_small_in_a_long_conversation(rental_model: Path):
    from app import create_app

    app = create_app({"TESTING": True, "MODEL_PATH": str(rental_model)})
    chat = app.test_client()
    context = None
    for turn in range(40):
        message = ["can we rent a moped?", "today", "thanks", "hello"][turn % 4]
        answer = chat.post("/api/chat", json={"message": message, "context": context}).get_json()
        context = answer["context"]["token"]
        assert len(context) < 1024


def test_without_a_secret_serve_makes_one_for_all_its_workers_and_says_so(start_server, rental_model: Path):
    server = start_server(rental_model, workers=2, threads=1)
    assert any(line.startswith("CHATBOT_SECRET_KEY is not set:") for line in server.stdout)
    context = None
    for _ in range(6):  # no keep-alive: the requests are spread over both workers
        status, rental = post_chat(server.url, "can we rent a moped?", context)
        status, today = post_chat(server.url, "today", rental["context"]["token"])
        assert (status, today["intent"], today["context"]["reset"]) == (200, "today", None)
        context = today["context"]["token"]
