"""`chatbot serve --store`: the start-up checks and the follower's refusals, without a load balancer."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

from click.testing import CliRunner
from store_files import publish_by_hand

from chatbot.cli import main

ROOT = Path(__file__).resolve().parent.parent


def serve(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "chatbot", "serve", "--port", "0", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout, cwd=ROOT)


def test_model_and_store_together_is_a_usage_error(tmp_path: Path):
    result = CliRunner().invoke(main, ["serve", "--model", "m.pt", "--store", str(tmp_path)])
    assert result.exit_code == 2 and "give --model or --store, not both" in result.output


def test_an_empty_or_unreachable_store_stops_serve_with_one_line(tmp_path: Path):
    (tmp_path / "empty").mkdir()
    empty = serve("--store", str(tmp_path / "empty"))
    assert empty.returncode == 1
    assert empty.stderr.strip().splitlines()[-1].startswith("Error: ")
    assert "Traceback" not in empty.stderr
    unreachable = serve("--store", "http://127.0.0.1:9/store/")
    assert unreachable.returncode == 1
    assert (
        unreachable.stderr.strip()
        == "Error: cannot reach http://127.0.0.1:9/store/current.json: [Errno 111] Connection refused"
    )


def test_a_model_written_into_the_store_by_hand_that_fails_its_self_test_is_refused(
    trained_model: Path, tmp_path: Path
):
    import hashlib
    import os
    import urllib.request

    import torch

    from training.checkpoint import load_checkpoint, serialize

    store = tmp_path / "store"
    assert CliRunner().invoke(main, ["publish", str(trained_model), "--store", str(store)]).exit_code == 0
    good = hashlib.sha256(trained_model.read_bytes()).hexdigest()
    # a checkpoint that loads but answers its own patterns wrong: its last layer's weights zeroed
    checkpoint = load_checkpoint(trained_model)
    last = sorted(k for k in checkpoint["state_dict"] if k.endswith("weight"))[-1]
    checkpoint["state_dict"][last] = torch.zeros_like(checkpoint["state_dict"][last])
    broken = tmp_path / "broken.pt"
    broken.write_bytes(serialize(checkpoint))
    refused = CliRunner().invoke(main, ["publish", str(broken), "--store", str(store)])
    assert refused.exit_code == 1 and "self-test" in refused.output

    log = tmp_path / "serve.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHATBOT_")}
    command = [sys.executable, "-m", "chatbot", "serve", "--store", str(store), "--poll", "0.5", "--port", "0"]
    with log.open("wb") as output:
        server = subprocess.Popen(command, stdout=output, stderr=output, cwd=ROOT, env=env)
    try:
        url = wait_for_url(log)
        digest = publish_by_hand(store, broken.read_bytes())
        deadline = time.monotonic() + 30
        while "fails its self-test" not in log.read_text() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert f"[store] refused {digest[:12]}, still serving {good[:12]}" in log.read_text()
        with urllib.request.urlopen(url + "api/health", timeout=10) as response:
            health = json.load(response)
        assert health["model"]["digest"] == good
        assert health["store"]["follows_store"] is True and health["store"]["poll_seconds"] == 0.5
        assert health["store"]["last_look_seconds_ago"] < 5  # its follower is alive and looking
        time.sleep(2)  # four more polls
        assert log.read_text().count("[store] refused") == 1  # one line, not one per poll
    finally:
        server.terminate()
        server.wait(20)


def wait_for_url(log: Path, timeout: float = 60) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for line in log.read_text(errors="replace").splitlines():
            if line.startswith("Chat page: "):
                return line.split()[2]
        time.sleep(0.2)
    raise AssertionError(f"serve did not start:\n{log.read_text()}")


def test_an_http_store_download_is_checked_against_its_digest(trained_model: Path, tmp_path: Path):
    import functools
    import http.server
    import threading

    import pytest

    from app.store_source import open_source
    from training.registry import RegistryError

    store = tmp_path / "store"
    assert CliRunner().invoke(main, ["publish", str(trained_model), "--store", str(store)]).exit_code == 0
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(store))
    handler.log_message = lambda *args: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        source = open_source(f"http://127.0.0.1:{server.server_address[1]}/")
        manifest = source.current()
        assert source.fetch(manifest.digest) == trained_model.read_bytes()
        stored = store / "models" / f"{manifest.digest}.pt"
        data = bytearray(stored.read_bytes())
        data[len(data) // 2] ^= 0xFF  # one byte changed on the server's disk
        stored.write_bytes(bytes(data))
        with pytest.raises(RegistryError, match="its SHA-256 is not the digest it is published under"):
            source.fetch(manifest.digest)
    finally:
        server.shutdown()
        server.server_close()
