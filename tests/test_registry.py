"""The model store: `chatbot publish`, `chatbot rollback`, `chatbot models`, `chatbot train --publish`, and the
library behind them (training/registry.py).

The commands run in a group of their own, built as `chatbot.cli.main` is (the same `ChatbotGroup`, which prints a
`UserError` as one line): they are registered in `main` separately.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import RENTAL_INTENTS, ROOT

from chatbot.cli import ChatbotGroup
from chatbot.models import models_command, publish_command, rollback_command
from chatbot.train import train

cli = ChatbotGroup(name="chatbot", commands={c.name: c for c in (publish_command, rollback_command, models_command)})
cli.add_command(train)


@pytest.fixture(autouse=True)
def no_store_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CHATBOT_STORE", raising=False)


@pytest.fixture
def store(tmp_path: Path) -> Path:
    return tmp_path / "store"


@pytest.fixture(scope="session")
def three_models(trained_model: Path, rental_model: Path, banking_flow_model: Path) -> list[Path]:
    return [trained_model, rental_model, banking_flow_model]


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, [str(a) for a in args], prog_name="chatbot")
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, result.output


def publish(model: Path, store: Path, *options: str) -> str:
    code, output = run("publish", model, "--store", store, "--by", "ana@ci", *options)
    assert code == 0, output
    return output


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def current(store: Path) -> dict:
    return json.loads((store / "current.json").read_text())


def history(store: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted((store / "history").iterdir())]


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


# --- Publishing ---


def test_publish_stores_the_checkpoint_under_its_digest_and_makes_it_current(trained_model, store):
    from training.checkpoint import load_checkpoint

    digest = sha256(trained_model)
    checkpoint = load_checkpoint(trained_model)
    n = len(checkpoint["tags"])
    assert publish(trained_model, store) == f"Published {digest} ({n} intents) to {store}: now current\n"
    assert (store / "models" / f"{digest}.pt").read_bytes() == trained_model.read_bytes()
    manifest = current(store)
    assert manifest == {
        "digest": digest,
        "published_at": manifest["published_at"],
        "published_by": "ana@ci",
        "source": str(trained_model),
        "intents": n,
        "intents_sha256": checkpoint["intents_sha256"],
        "format_version": 3,
        "created_at": checkpoint["created_at"],
        "metrics": checkpoint["metrics"],
    }
    assert manifest["published_at"].endswith("+00:00")
    assert [p.name for p in (store / "history").iterdir()] == [f"000001-{digest[:12]}.json"]
    assert history(store) == [manifest]


def test_publishing_the_current_model_again_changes_nothing(trained_model, store):
    publish(trained_model, store)
    before = snapshot(store)
    output = publish(trained_model, store)
    assert output == f"{sha256(trained_model)} (20 intents) is already current in {store}; nothing changed\n"
    assert snapshot(store) == before


def test_each_publish_adds_to_the_history_and_models_lists_it_newest_first(three_models, store):
    first, second, _ = three_models
    publish(first, store)
    output = publish(second, store, "--keep", "5")
    assert output.endswith(f"now current (was {sha256(first)[:12]})\n")
    assert current(store)["digest"] == sha256(second)
    assert [entry["digest"] for entry in history(store)] == [sha256(first), sha256(second)]
    code, output = run("models", "--store", store)
    assert code == 0
    header, newest, oldest = output.splitlines()
    assert header.split() == ["DIGEST", "PUBLISHED", "(UTC)", "BY", "INTENTS", "SOURCE"]
    assert newest.startswith(f"*  {sha256(second)[:12]}  ") and newest.endswith(f"  5  {second}")
    assert oldest.startswith(f"   {sha256(first)[:12]}  ") and oldest.endswith(f" 20  {first}")
    assert "ana@ci" in newest


def test_by_defaults_to_user_at_host_and_the_store_to_its_variable(trained_model, store, monkeypatch):
    import socket

    monkeypatch.setenv("USER", "bea")
    monkeypatch.setenv("CHATBOT_STORE", str(store))
    code, output = run("publish", trained_model)
    assert code == 0, output
    assert current(store)["published_by"] == f"bea@{socket.gethostname()}"
    assert run("models")[1].splitlines()[1].startswith(f"*  {sha256(trained_model)[:12]}")


def truncated(source: Path, target: Path) -> None:
    data = source.read_bytes()
    target.write_bytes(data[: len(data) // 2])


def json_text(source: Path, target: Path) -> None:
    target.write_text(json.dumps(RENTAL_INTENTS))


def last_layer_zeroed(source: Path, target: Path) -> None:
    from training.checkpoint import load_checkpoint, save_checkpoint

    checkpoint = load_checkpoint(source)
    checkpoint["state_dict"]["fc3_weight"].zero_()
    save_checkpoint(checkpoint, target)


@pytest.mark.parametrize(
    ("damage", "reason"),
    [
        (truncated, "not a readable chatbot checkpoint (truncated or damaged"),
        (json_text, "not a readable chatbot checkpoint (a JSON text file, not a saved model"),
        (last_layer_zeroed, "fails its self-test ("),
    ],
)
def test_a_damaged_checkpoint_is_refused_and_the_store_is_unchanged(trained_model, store, tmp_path, damage, reason):
    publish(trained_model, store)
    before = snapshot(store)
    bad = tmp_path / "bad.pt"
    damage(trained_model, bad)
    code, output = run("publish", bad, "--store", store)
    assert code == 1
    assert output.startswith(f"Error: {bad}") and reason in output and output.endswith("; not published\n")
    assert len(output.splitlines()) == 1
    assert snapshot(store) == before


def test_a_refused_checkpoint_creates_no_store(tmp_path, store):
    bad = tmp_path / "bad.pt"
    json_text(bad, bad)
    assert run("publish", bad, "--store", store)[0] == 1
    assert not store.exists()


def test_the_self_test_fails_on_zeroed_weights_with_an_example(trained_model, tmp_path):
    from training.checkpoint import load_checkpoint
    from training.classifier import IntentClassifier
    from training.registry import self_test_problem

    last_layer_zeroed(trained_model, tmp_path / "zeroed.pt")
    checkpoint = load_checkpoint(tmp_path / "zeroed.pt")
    problem = self_test_problem(IntentClassifier(checkpoint), checkpoint)
    assert problem is not None and " self-test patterns get another intent, e.g. '" in problem


# --- The self-test each checkpoint records ---


def test_every_trained_checkpoint_records_a_self_test_that_it_passes(trained_model, classifier):
    from training.checkpoint import load_checkpoint, self_test_cases
    from training.registry import self_test_problem

    checkpoint = load_checkpoint(trained_model)
    cases = self_test_cases(checkpoint)
    per_intent = {tag: sum(1 for _, t in cases if t == tag) for tag in classifier.tags}
    assert set(per_intent.values()) <= {1, 2} and sum(per_intent.values()) == len(cases) >= len(classifier.tags)
    assert all(isinstance(pattern, str) for pattern, _ in cases)
    assert [p.intent for p in classifier.predict_batch([pattern for pattern, _ in cases], threshold=0)] == [
        tag for _, tag in cases
    ]
    assert self_test_problem(classifier, checkpoint) is None


def test_a_checkpoint_made_before_the_self_test_still_publishes(trained_model, store, tmp_path):
    from training.checkpoint import load_checkpoint, save_checkpoint

    checkpoint = load_checkpoint(trained_model)
    del checkpoint["self_test"]
    older = save_checkpoint(checkpoint, tmp_path / "older.pt")
    assert publish(older, store).startswith(f"Published {sha256(older)} (20 intents)")


def test_a_damaged_self_test_record_is_refused(trained_model, store, tmp_path):
    from training.checkpoint import load_checkpoint, save_checkpoint

    checkpoint = load_checkpoint(trained_model)
    checkpoint["self_test"]["intents"].pop()
    bad = save_checkpoint(checkpoint, tmp_path / "bad.pt")
    code, output = run("publish", bad, "--store", store)
    assert code == 1 and "its self-test record is damaged" in output


# --- Rolling back ---


def test_rollback_steps_back_one_model_at_a_time(three_models, store):
    a, b, c = (sha256(p) for p in three_models)
    for model in three_models:
        publish(model, store)
    code, output = run("rollback", "--store", store, "--by", "cy@ops")
    assert code == 0, output
    assert output.startswith(f"Rolled back {store} to {b} (5 intents, published from {three_models[1]}); ")
    assert output.endswith(f"; {c[:12]} is no longer current\n")
    assert current(store)["digest"] == b
    assert current(store)["rollback_of"] == c and current(store)["published_by"] == "cy@ops"
    assert run("rollback", "--store", store)[0] == 0
    assert current(store)["digest"] == a
    code, output = run("rollback", "--store", store)
    assert code == 1 and output == f"Error: {store}: no earlier model than {a[:12]} to roll back to\n"
    assert [entry["digest"] for entry in history(store)] == [a, b, c, b, a]
    assert history(store)[-1] == current(store)
    listed = run("models", "--store", store)[1].splitlines()
    assert listed[1].startswith(f"*  {a[:12]}") and listed[1].endswith(f"(rollback from {b[:12]})")


def test_rollback_after_a_new_publish_returns_to_the_model_before_it(three_models, store):
    a = sha256(three_models[0])
    publish(three_models[0], store)
    publish(three_models[1], store)
    run("rollback", "--store", store)
    publish(three_models[2], store)
    assert run("rollback", "--store", store)[0] == 0
    assert current(store)["digest"] == a
    assert run("rollback", "--store", store)[0] == 1  # a, then b undone: nothing was current before a


def test_rollback_to_a_digest_prefix(three_models, store):
    a, _, c = (sha256(p) for p in three_models)
    for model in three_models:
        publish(model, store)
    code, output = run("rollback", "--store", store, "--to", a[:8].upper())
    assert code == 0, output
    assert current(store)["digest"] == a and current(store)["rollback_of"] == c
    code, output = run("rollback", "--store", store, "--to", a[:10])
    assert code == 1 and output == f"Error: {a[:12]} is already the current model of {store}\n"


def test_rollback_with_nothing_before_is_an_error_and_changes_nothing(trained_model, store):
    publish(trained_model, store)
    before = snapshot(store)
    code, output = run("rollback", "--store", store)
    assert code == 1
    assert output == f"Error: {store}: no earlier model than {sha256(trained_model)[:12]} to roll back to\n"
    assert snapshot(store) == before


def test_rollback_to_an_unknown_short_ambiguous_pruned_or_damaged_digest_is_an_error(three_models, store):
    a, b, _ = (sha256(p) for p in three_models)
    for model in three_models:
        publish(model, store, "--keep", "0")  # a is pruned once c is published
    for fake in ("ab12cd34" + "0" * 56, "ab12cd34" + "1" * 56):
        (store / "models" / f"{fake}.pt").write_bytes(b"")
    (store / "models" / f"{b}.pt").write_bytes(b"not what was published")
    before = snapshot(store)
    errors = {
        "0123456789": "no model with digest 0123456789 in",
        "ab12": "'ab12' is not a digest: give at least 8 of its hex characters",
        "not-hex!": "is not a digest",
        "ab12cd34": f"digest ab12cd34 is ambiguous in {store}: it starts ab12cd340000, ab12cd341111",
        a[:8]: f"the checkpoint of {a[:12]} is no longer in the store",
        b[:8]: "is damaged: its SHA-256 is",
    }
    for prefix, message in errors.items():
        code, output = run("rollback", "--store", store, "--to", prefix)
        assert code == 1 and message in output, (prefix, output)
        assert len(output.splitlines()) == 1
    assert snapshot(store) == before


# --- Pruning ---


def test_prune_keeps_the_current_and_the_previous_checkpoint_and_every_history_entry(three_models, store):
    a, b, c = (sha256(p) for p in three_models)
    publish(three_models[0], store, "--keep", "0")
    publish(three_models[1], store, "--keep", "0")
    output = publish(three_models[2], store, "--keep", "0")
    assert output.splitlines()[1] == f"Pruned 1 old checkpoint(s) from the store: {a[:12]}"
    assert sorted(p.stem for p in (store / "models").iterdir()) == sorted([b, c])
    assert len(history(store)) == 3
    assert run("models", "--store", store)[1].splitlines()[3].endswith(f"{three_models[0]}  (pruned)")
    assert run("rollback", "--store", store)[0] == 0  # the previous one is there to roll back to
    assert current(store)["digest"] == b


def test_prune_keeps_the_most_recently_published_models(three_models, store):
    from training.registry import prune

    for model in three_models:
        publish(model, store)
    assert len(list((store / "models").iterdir())) == 3
    assert prune(store, keep=3) == []
    assert prune(store, keep=0) == [sha256(three_models[0])]


# --- Several publishers, and readers ---

PUBLISHER = """
import sys, time
from pathlib import Path
from training.registry import publish
model, store, ready, go = sys.argv[1:]
Path(ready).touch()
while not Path(go).exists():
    time.sleep(0.002)
print(publish(model, store, "proc").changed)
"""


def test_two_processes_publishing_at_once_both_succeed_one_after_the_other(three_models, store, tmp_path):
    go = tmp_path / "go"
    ready = [tmp_path / "ready-1", tmp_path / "ready-2"]
    env = os.environ | {"OMP_NUM_THREADS": "1"}
    publishers = [
        subprocess.Popen(
            [sys.executable, "-c", PUBLISHER, str(model), str(store), str(flag), str(go)],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for model, flag in zip(three_models[1:], ready)
    ]
    deadline = time.monotonic() + 60
    while not all(flag.exists() for flag in ready) and time.monotonic() < deadline:  # both have imported torch
        time.sleep(0.01)
    go.touch()
    outputs = [p.communicate(timeout=120) for p in publishers]
    assert [p.returncode for p in publishers] == [0, 0], outputs
    assert [out for out, _ in outputs] == ["True\n", "True\n"]
    entries = history(store)
    assert sorted(p.name[:6] for p in (store / "history").iterdir()) == ["000001", "000002"]
    assert sorted(entry["digest"] for entry in entries) == sorted(sha256(p) for p in three_models[1:])
    assert entries[1]["published_by"] == "proc" and entries[-1] == current(store)
    assert sorted(p.stem for p in (store / "models").iterdir()) == sorted(entry["digest"] for entry in entries)


def test_a_publisher_waits_while_another_holds_the_store_lock(trained_model, store):
    from training.registry import publish

    store.mkdir()
    results = []
    with open(store / ".lock", "w") as lock:  # another open file: flock excludes it, even in this process
        fcntl.flock(lock, fcntl.LOCK_EX)
        publisher = threading.Thread(target=lambda: results.append(publish(trained_model, store, "waiter")))
        publisher.start()
        publisher.join(1.5)
        assert publisher.is_alive() and not (store / "current.json").exists()
    publisher.join(30)
    assert results[0].changed and current(store)["digest"] == sha256(trained_model)


def test_the_serving_side_reads_the_current_manifest_and_checked_bytes(trained_model, store):
    from training.registry import RegistryError, current_manifest, model_path, read_model

    with pytest.raises(RegistryError, match="does not exist"):
        current_manifest(store)
    publish(trained_model, store)
    manifest = current_manifest(store)
    assert manifest.digest == sha256(trained_model) and manifest.published_by == "ana@ci"
    assert model_path(store, manifest.digest) == store / "models" / f"{manifest.digest}.pt"
    assert read_model(store, manifest.digest) == trained_model.read_bytes()
    model_path(store, manifest.digest).write_bytes(b"changed")
    with pytest.raises(RegistryError, match="is damaged"):
        read_model(store, manifest.digest)


def test_commands_on_a_missing_or_empty_store_say_so(store):
    assert run("models", "--store", store) == (
        1,
        f"Error: model store {store} does not exist (`chatbot publish` creates it)\n",
    )
    assert run("rollback", "--store", store)[0] == 1
    store.mkdir()
    assert run("models", "--store", store) == (1, f"Error: no model has been published to {store} yet\n")
    assert run("rollback", "--store", store) == (1, f"Error: no model is current in {store}: nothing to roll back\n")
    code, output = run("models")
    assert code == 2 and "Missing option '--store'" in output


# --- chatbot train --publish ---


def test_train_publish_makes_the_new_model_current(store, tmp_path):
    intents = tmp_path / "intents.json"
    intents.write_text(json.dumps(RENTAL_INTENTS))
    model = tmp_path / "chatbot.pt"
    code, output = run("train", "--intents", intents, "--model", model, "--publish", store)
    assert code == 0, output
    assert output.endswith(f"Published {sha256(model)} (5 intents) to {store}: now current\n")
    assert current(store)["digest"] == sha256(model) and current(store)["source"] == str(model)
    code, output = run("train", "--intents", intents, "--model", model, "--publish", store, "--if-needed")
    assert code == 0, output
    assert output.endswith(
        f"not retraining.\n{sha256(model)} (5 intents) is already current in {store}; nothing changed\n"
    )


def test_a_copied_store_keeps_working(trained_model, store, tmp_path):
    """A store is only files: copied elsewhere (a backup, another mount), it lists and rolls back as before."""
    publish(trained_model, store)
    copy = Path(shutil.copytree(store, tmp_path / "copy"))
    assert run("models", "--store", copy)[1].splitlines()[1].startswith(f"*  {sha256(trained_model)[:12]}")
