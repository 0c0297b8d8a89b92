"""Hostile checkpoint files against the running service: `chatbot serve` refuses them at startup with one line, and a
reload refuses them with a JSON error while the model already serving keeps answering.

The same files at the `load_checkpoint` and `chatbot predict` level: tests/test_checkpoint.py and tests/test_cli.py.
"""

from __future__ import annotations

import io
import os
import pickle
import struct
import subprocess
import sys
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch
from http_calls import call

from training.checkpoint import FORMAT_VERSION, CheckpointError, load_checkpoint, save_checkpoint

ROOT = Path(__file__).resolve().parent.parent
TOKEN = "hostile-checkpoint-reload-token"
SERVING_ANSWER = "Answer from the model being served."
SERVING_CREATED_AT = "2001-02-03T04:05:06+00:00"


class Payload:
    """Unpickling this runs `touch marker`: a checkpoint that carries it must be refused without running it."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Callable[..., Any], tuple[str]]:
        return os.system, (f"touch {self.marker}",)


def truncated(good: Path, target: Path, marker: Path) -> None:
    data = good.read_bytes()
    target.write_bytes(data[: len(data) // 2])


def empty(good: Path, target: Path, marker: Path) -> None:
    target.write_bytes(b"")


def foreign(good: Path, target: Path, marker: Path) -> None:
    torch.save({"w": torch.zeros(3)}, target)


def newer(good: Path, target: Path, marker: Path) -> None:
    checkpoint = load_checkpoint(good)
    checkpoint["format_version"] = FORMAT_VERSION + 1
    torch.save(checkpoint, target)


def code_in_torch_file(good: Path, target: Path, marker: Path) -> None:
    torch.save({"format": "chatbot-checkpoint", "format_version": FORMAT_VERSION, "x": Payload(marker)}, target)


def code_in_plain_pickle(good: Path, target: Path, marker: Path) -> None:
    with open(target, "wb") as handle:
        pickle.dump({"format": "chatbot-checkpoint", "x": Payload(marker)}, handle)


def no_responses(good: Path, target: Path, marker: Path) -> None:
    """Well formed, but with nothing to answer: every intent and the fallback have an empty list of responses."""
    checkpoint = load_checkpoint(good)
    checkpoint["responses"] = {tag: [] for tag in checkpoint["tags"]}
    checkpoint["fallback"]["responses"] = []
    torch.save(checkpoint, target)


def same_shaped_splice(source: Path, target: Path) -> str:
    """`source` with the bytes of its largest tensor taken from a same-shaped model (the weights halved): every part
    is where the archive says, only its CRC-32 no longer matches. Returns the spliced part's name."""
    donor_path = target.with_name("donor.pt")
    donor = load_checkpoint(source)
    donor["state_dict"] = {k: v / 2 for k, v in donor["state_dict"].items()}
    save_checkpoint(donor, donor_path)
    data, donor_data = bytearray(source.read_bytes()), donor_path.read_bytes()
    donor_path.unlink()
    name, (begin, size) = max(part_bodies(data).items(), key=lambda item: item[1][1])
    donor_begin, donor_size = part_bodies(donor_data)[name]
    assert donor_size == size
    data[begin : begin + size] = donor_data[donor_begin : donor_begin + size]
    target.write_bytes(data)
    return name


def part_bodies(data: bytes) -> dict[str, tuple[int, int]]:
    """Each archive part (without the archive's own folder name): where its bytes start, and how many there are."""
    bodies = {}
    for part in zipfile.ZipFile(io.BytesIO(data)).infolist():
        name_length, extra_length = struct.unpack("<HH", data[part.header_offset + 26 : part.header_offset + 30])
        bodies[part.filename.split("/", 1)[1]] = (part.header_offset + 30 + name_length + extra_length, part.file_size)
    return bodies


def spliced(good: Path, target: Path, marker: Path) -> None:
    same_shaped_splice(good, target)


UNREADABLE = "not a readable chatbot checkpoint ("
# name: (how to make the file, the reason after "<path>: " in the one-line error; a prefix when it ends with "(")
HOSTILE = {
    "truncated": (truncated, UNREADABLE),
    "empty": (empty, UNREADABLE),
    "foreign": (foreign, "not a chatbot checkpoint (no 'chatbot-checkpoint' marker)"),
    "newer": (
        newer,
        f"checkpoint format {FORMAT_VERSION + 1} is newer than this chatbot reads ({FORMAT_VERSION}); upgrade chatbot",
    ),
    "code-in-torch-file": (code_in_torch_file, UNREADABLE),
    "code-in-plain-pickle": (code_in_plain_pickle, UNREADABLE),
    "no-responses": (no_responses, "damaged checkpoint"),
    "spliced": (spliced, "damaged checkpoint ("),
}


def assert_reason(message: str, path: Path, reason: str) -> None:
    expected = f"{path}: {reason}"
    if reason.endswith("(") or reason == "damaged checkpoint":
        assert message.startswith(expected), message
    else:
        assert message == expected


@pytest.fixture(scope="module")
def hostile_dir(trained_model, tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("hostile")
    for name, (make, _) in HOSTILE.items():
        make(trained_model, folder / f"{name}.pt", folder / f"ran-code-{name}")
    return folder


@pytest.fixture(scope="module")
def refused(hostile_dir) -> dict[str, subprocess.CompletedProcess]:
    """`chatbot serve` on every hostile file, all at once (each exits within seconds); their outcomes by name."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHATBOT_")}
    processes = {
        name: subprocess.Popen(
            [sys.executable, "-m", "chatbot", "serve", "--model", str(hostile_dir / f"{name}.pt"), "--port", "0"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
            cwd=ROOT,
        )
        for name in HOSTILE
    }
    outcomes = {}
    for name, process in processes.items():
        try:
            stdout, stderr = process.communicate(timeout=60)
        except subprocess.TimeoutExpired:  # it started serving: stop it and let the test report that
            process.terminate()
            try:
                stdout, stderr = process.communicate(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                stdout, stderr = process.communicate()
        outcomes[name] = subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)
    return outcomes


@pytest.mark.parametrize("name", HOSTILE)
def test_serve_refuses_a_hostile_checkpoint_at_startup_with_one_line(refused, hostile_dir, name):
    outcome = refused[name]
    path = hostile_dir / f"{name}.pt"
    assert outcome.stdout == ""  # never announced a chat page: the port was not opened
    assert outcome.returncode == 1, outcome.stderr
    assert "Traceback" not in outcome.stderr
    lines = outcome.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), outcome.stderr
    assert_reason(lines[0].removeprefix("Error: "), path, HOSTILE[name][1])
    assert not (hostile_dir / f"ran-code-{name}").exists()


def test_a_checkpoint_spliced_from_two_same_shaped_models_is_refused(trained_model, tmp_path):
    path = tmp_path / "spliced.pt"
    part = same_shaped_splice(trained_model, path)
    torch.load(path, weights_only=True)  # what torch alone accepts
    with pytest.raises(CheckpointError) as refused:
        load_checkpoint(path)
    assert str(refused.value) == (
        f"{path}: damaged checkpoint (part 'archive/{part}' does not match its CRC-32: the file was changed "
        "while it was read, or mixed from two files)"
    )


# --- reload while serving --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def serving(start_server, trained_model, edit_checkpoint, tmp_path_factory):
    """One server for every reload case: two workers answering from a checkpoint whose answers are recognisable."""
    model = tmp_path_factory.mktemp("serving") / "chatbot.pt"
    edit_checkpoint(trained_model, model, SERVING_ANSWER, created_at=SERVING_CREATED_AT)
    server = start_server(model, workers=2, threads=2, env={"CHATBOT_ADMIN_TOKEN": TOKEN})
    return server, model


@pytest.mark.parametrize("name", HOSTILE)
def test_reload_refuses_a_hostile_checkpoint_and_keeps_serving_the_old_model(serving, hostile_dir, name):
    server, model = serving
    model.write_bytes((hostile_dir / f"{name}.pt").read_bytes())
    status, _, answer = call(server.url, "POST", "/api/model/reload", headers={"Authorization": f"Bearer {TOKEN}"})
    assert status == 422, answer
    prefix = "reload failed, still serving the previous model: "
    assert list(answer) == ["error"] and answer["error"].startswith(prefix)
    assert_reason(answer["error"].removeprefix(prefix), model, HOSTILE[name][1])
    for _ in range(6):  # fresh connections, spread over both workers
        status, _, chat = call(server.url, "POST", "/api/chat", {"message": "hello"})
        assert (status, chat["response"]) == (200, SERVING_ANSWER)
    status, _, health = call(server.url, "GET", "/api/health")
    assert (status, health["model"]["created_at"]) == (200, SERVING_CREATED_AT)
    assert not (hostile_dir / f"ran-code-{name}").exists()
