"""Faults a running `chatbot train` must survive without losing the model that is serving."""

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from training.checkpoint import load_checkpoint

CHATBOT = str(Path(sys.executable).parent / "chatbot")


def big_intents(path: Path, intents: int = 60, per_intent: int = 200, seed: int = 0) -> Path:
    """A synthetic file big enough that training takes several seconds (12,000 patterns)."""
    rng = random.Random(seed)
    words = [f"w{i}" for i in range(3000)]
    doc = {"intents": []}
    for k in range(intents):
        topic = rng.sample(words, 30)
        patterns = sorted({" ".join(rng.sample(topic, 4) + rng.sample(words, 3)) for _ in range(per_intent)})
        doc["intents"].append({"tag": f"intent_{k}", "patterns": patterns, "responses": [f"answer {k}"]})
    path.write_text(json.dumps(doc))
    return path


def read_until(process: subprocess.Popen, marker: str, seconds: float = 120) -> list[str]:
    """The training's output lines up to the first holding `marker` (or all it printed within `seconds`)."""
    seen: list[str] = []
    deadline = time.monotonic() + seconds
    for line in process.stdout:
        seen.append(line)
        if marker in line or time.monotonic() > deadline:
            break
    return seen


def start_training(intents: Path, model: Path, output=subprocess.PIPE) -> subprocess.Popen:
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    return subprocess.Popen(
        [CHATBOT, "train", "--intents", str(intents), "--model", str(model)],
        stdout=output,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )


def test_sigkill_mid_training_keeps_previous_checkpoint_and_next_run_cleans_up(model_copy, tmp_path):
    before = model_copy.read_bytes()
    intents = big_intents(tmp_path / "big.json")
    process = start_training(intents, model_copy)
    seen = read_until(process, "epoch   2/")
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    process.stdout.close()
    assert any("epoch   2/" in line for line in seen), seen
    assert process.returncode == -signal.SIGKILL
    assert model_copy.read_bytes() == before
    assert load_checkpoint(model_copy)["tags"][0] == "greeting"
    # A temp file left by a killed writer (dead pid) is removed by the next successful run.
    leftover = model_copy.parent / ".chatbot.pt.tmp-999999-killed.tmp"
    leftover.write_bytes(b"half-written")
    small = tmp_path / "small.json"
    intents = [{"tag": t, "patterns": [f"hi {t}", f"hello {t}", f"hey {t}"], "responses": ["x"]} for t in "ab"]
    small.write_text(json.dumps({"intents": intents}))
    done = subprocess.run(
        [CHATBOT, "train", "--intents", str(small), "--model", str(model_copy)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert f"Removed 1 temporary file(s) left by a training killed while saving: {leftover.name}\n" in done.stderr
    assert sorted(p.name for p in model_copy.parent.iterdir()) == ["chatbot.pt"]


def test_sigterm_mid_training_says_so_and_keeps_previous_checkpoint(model_copy, tmp_path):
    """What a service manager or `kill` sends: one line, the shell's exit status for it, nothing left behind."""
    before = model_copy.read_bytes()
    process = start_training(big_intents(tmp_path / "big.json"), model_copy)
    seen = read_until(process, "epoch   1/")
    process.send_signal(signal.SIGTERM)
    rest, _ = process.communicate(timeout=60)
    assert any("epoch   1/" in line for line in seen), seen
    assert process.returncode == 128 + signal.SIGTERM
    assert rest.endswith(f"Error: stopped by SIGTERM; {model_copy} was not changed\n")
    assert model_copy.read_bytes() == before
    assert sorted(p.name for p in model_copy.parent.iterdir()) == ["chatbot.pt"]


@pytest.mark.slow
def test_sigkill_while_writing_the_checkpoint_keeps_previous_one(model_copy, tmp_path):
    """Kill the trainer the moment its temporary file appears: the old checkpoint must stay intact."""
    before = model_copy.read_bytes()
    process = start_training(big_intents(tmp_path / "big.json"), model_copy, output=subprocess.DEVNULL)
    deadline = time.monotonic() + 180
    killed_while_writing = False
    while process.poll() is None and time.monotonic() < deadline:
        if any(model_copy.parent.glob(".chatbot.pt.tmp-*")):
            process.kill()
            killed_while_writing = True
            break
        time.sleep(0.001)
    process.wait(timeout=30)
    if killed_while_writing:
        assert model_copy.read_bytes() == before
        load_checkpoint(model_copy)
    else:  # the write won the race: then it must be complete and valid
        assert load_checkpoint(model_copy)["tags"][0] == "intent_0"


def test_full_disk_during_save_is_a_clear_error_and_keeps_old_checkpoint(model_copy, tmp_path):
    """As root a read-only folder does not stop writes; a file-size limit (like a full disk) does."""
    before = model_copy.read_bytes()
    small = tmp_path / "small.json"
    intents = [{"tag": t, "patterns": [f"hi {t}", f"hello {t}", f"hey {t}"], "responses": ["x"]} for t in "ab"]
    small.write_text(json.dumps({"intents": intents}))
    script = f"trap '' XFSZ; ulimit -f 8; exec {CHATBOT} train --intents {small} --model {model_copy}"
    result = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=120)
    assert result.returncode == 1
    assert result.stderr.endswith(
        f"Error: cannot write {model_copy}: the file would exceed the file-size limit (ulimit -f); "
        f"{model_copy} was not changed\n"
    )
    assert "Traceback" not in result.stderr + result.stdout
    assert model_copy.read_bytes() == before
    assert sorted(p.name for p in model_copy.parent.iterdir()) == ["chatbot.pt"]
