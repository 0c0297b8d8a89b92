"""Past one machine, on one machine: three `chatbot serve --store` replicas behind a real nginx, under load, while
models are published, a corrupt one is refused, a rollback is followed and a replica is killed and restarted.

Two replicas read the store as a folder (a shared volume); the third reads it over HTTP, served by the same nginx
(conditional GETs: its ETag answers 304 while nothing changes). Every answer names its model in `X-Model-Digest`.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from pathlib import Path

import pytest
from click.testing import CliRunner
from http_calls import free_port
from store_files import publish_by_hand

from chatbot.cli import main

ROOT = Path(__file__).resolve().parent.parent
NGINX = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)
POLL = 4.0  # seconds between two looks at the store
LOAD_SLACK = 12.0  # seconds, beyond two looks, for a replica to download, check and load a model on a slow machine
SECRET = "replicas-share-this-secret-0123456789"

pytestmark = pytest.mark.skipif(NGINX is None, reason="nginx is not installed (apt-get install nginx)")


class Replica:
    def __init__(self, store: str, port: int, log: Path) -> None:
        self.store, self.port, self.log_path = store, port, log
        self.start()

    def start(self) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("CHATBOT_")} | {"CHATBOT_SECRET_KEY": SECRET}
        command = [sys.executable, "-m", "chatbot", "serve", "--store", self.store, "--poll", str(POLL)]
        command += ["--port", str(self.port), "--workers", "2", "--threads", "2"]
        self.log = open(self.log_path, "ab")  # noqa: SIM115  (closed in stop)
        self.process = subprocess.Popen(command, stdout=self.log, stderr=self.log, stdin=subprocess.DEVNULL, env=env)
        wait_until(lambda: self.digest() is not None, 60, f"replica on {self.port} did not start:\n{self.text()}")

    def digest(self) -> str | None:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/api/health", timeout=2) as response:
                return json.load(response)["model"]["digest"]
        except (OSError, ValueError):
            return None

    def kill(self) -> None:
        """SIGKILL the server's master, as a crashed container; its workers notice and leave."""
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)
        wait_until(lambda: self.digest() is None, 30, "the killed replica's workers kept answering")
        self.log.close()

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()
        if not self.log.closed:
            self.log.close()

    def text(self) -> str:
        return self.log_path.read_text(errors="replace")


def wait_until(condition, timeout: float, message: str) -> float:
    """Seconds it took for `condition()` to hold; fails with `message` after `timeout`."""
    started = time.monotonic()
    while not condition():
        if time.monotonic() - started > timeout:
            pytest.fail(message)
        time.sleep(0.1)
    return time.monotonic() - started


NGINX_CONF = """
worker_processes 1;
pid {work}/nginx.pid;
error_log {work}/error.log warn;
{user}
events {{ worker_connections 256; }}
http {{
    access_log {work}/access.log;
    client_body_temp_path {work}/body;
    proxy_temp_path {work}/proxy;
    fastcgi_temp_path {work}/fastcgi;
    uwsgi_temp_path {work}/uwsgi;
    scgi_temp_path {work}/scgi;
    upstream replicas {{
        {servers}
    }}
    server {{
        listen 127.0.0.1:{port};
        location /store/ {{ alias {store}/; }}
        location / {{
            proxy_pass http://replicas;
            proxy_next_upstream error timeout http_502;
            proxy_connect_timeout 2s;
        }}
    }}
}}
"""


class Load:
    """Chat requests through nginx from 4 threads until stopped (at most 4 x 8,000), each answer's status and
    digest recorded with the phase of the test it happened in."""

    def __init__(self, url: str) -> None:
        self.url, self.phase, self.results = url, "start", []
        self._stop = threading.Event()
        self.threads = [threading.Thread(target=self._run, daemon=True) for _ in range(4)]
        for thread in self.threads:
            thread.start()

    def _run(self) -> None:
        body = json.dumps({"message": "hello there"}).encode()
        for _ in range(8000):
            if self._stop.is_set():
                return
            request = urllib.request.Request(self.url, body, {"Content-Type": "application/json"}, method="POST")
            phase = self.phase
            try:
                with urllib.request.urlopen(request, timeout=10) as response:
                    self.results.append((phase, response.status, response.headers.get("X-Model-Digest")))
            except urllib.error.HTTPError as error:
                self.results.append((phase, error.code, None))
            except OSError:
                self.results.append((phase, 0, None))

    def stop(self) -> None:
        self._stop.set()
        for thread in self.threads:
            thread.join(30)


def publish(model: Path, store: Path) -> str:
    result = CliRunner().invoke(main, ["publish", str(model), "--store", str(store)])
    assert result.exit_code == 0, result.output
    return hashlib.sha256(model.read_bytes()).hexdigest()


def test_replicas_follow_the_store_through_publish_corruption_rollback_and_a_crash(
    tmp_path: Path, trained_model: Path, rental_model: Path
):
    store = tmp_path / "store"
    first = publish(trained_model, store)
    nginx_port = free_port()
    ports = [free_port() for _ in range(3)]
    sources = [str(store), str(store), f"http://127.0.0.1:{nginx_port}/store/"]
    work = tmp_path / "nginx"
    work.mkdir()
    conf = work / "nginx.conf"
    conf.write_text(
        NGINX_CONF.format(
            work=work,
            user="user root;" if os.geteuid() == 0 else "",
            servers="\n        ".join(f"server 127.0.0.1:{p} max_fails=1 fail_timeout=2s;" for p in ports),
            port=nginx_port,
            store=store,
        )
    )
    nginx = subprocess.Popen([NGINX, "-c", str(conf), "-g", "daemon off;"], stderr=subprocess.DEVNULL)
    replicas: list[Replica] = []
    load = None
    try:
        wait_until(lambda: _reachable(nginx_port), 10, f"nginx did not start: {_text(work / 'error.log')}")
        replicas = [Replica(s, p, tmp_path / f"replica{i}.log") for i, (s, p) in enumerate(zip(sources, ports))]
        assert [r.digest() for r in replicas] == [first] * 3
        load = Load(f"http://127.0.0.1:{nginx_port}/api/chat")
        time.sleep(1)

        load.phase = "publish"
        second = publish(rental_model, store)
        # The target is two poll intervals: the wait for the next look, then the download, the load and the
        # self-test, then each worker's reload. Here that took 5.7-7.4 s at POLL 4 (printed below); the bound leaves
        # room for a machine several times slower: it fails on a replica that does not follow, not on a busy day.
        took = wait_until(
            lambda: all(r.digest() == second for r in replicas), 2 * POLL + LOAD_SLACK, "not every replica followed"
        )
        print(f"every replica serves the new model {took:.1f} s after it was published (poll {POLL} s)")
        wait_until(lambda: load.results[-1][2] == second, 10, "nginx's answers do not name the new model")

        load.phase = "corrupt"
        refused = CliRunner().invoke(main, ["publish", str(_corrupt_file(tmp_path)), "--store", str(store)])
        assert refused.exit_code == 1 and "Error: " in refused.output
        publish_by_hand(store, b"PK\x03\x04 this is not a model" * 100)  # a manifest naming garbage, digest and all
        wait_until(
            lambda: all("refused" in r.text() for r in replicas), 2 * POLL + LOAD_SLACK, "a replica took no notice"
        )
        assert [r.digest() for r in replicas] == [second] * 3  # every one kept the good model

        load.phase = "rollback"
        rolled = CliRunner().invoke(main, ["rollback", "--store", str(store), "--to", first[:12]])
        assert rolled.exit_code == 0, rolled.output
        wait_until(
            lambda: all(r.digest() == first for r in replicas), 2 * POLL + LOAD_SLACK, "not every replica rolled back"
        )

        load.phase = "crash"
        replicas[1].kill()
        load.phase = "restart"
        replicas[1].start()  # it comes up on what is current now
        assert replicas[1].digest() == first
        load.phase = "end"
        time.sleep(2 * POLL + 1)  # nothing changes now: the HTTP replica's looks get 304
    finally:
        if load is not None:
            load.stop()
        for replica in replicas:
            replica.stop()
        nginx.terminate()
        nginx.wait(10)

    by_phase = Counter((phase, status) for phase, status, _ in load.results)
    print("answers through nginx by phase and status:", dict(by_phase))
    assert len(load.results) > 100
    errors = [(phase, status) for phase, status, _ in load.results if status != 200]
    assert [e for e in errors if e[0] != "crash"] == []  # only a crash may cost the requests it had in hand
    assert len(errors) <= 8
    digests = {digest for _, status, digest in load.results if status == 200}
    assert digests <= {first, second}  # nothing ever answered with the corrupt model
    assert " 304 " in (work / "access.log").read_text()  # the HTTP replica's unchanged manifests


def _text(path: Path) -> str:
    return path.read_text(errors="replace") if path.exists() else ""


def _reachable(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _corrupt_file(folder: Path) -> Path:
    path = folder / "corrupt.pt"
    path.write_bytes(b"not a checkpoint at all")
    return path
