"""A bounded load on `chatbot serve` with its defaults: 5,000 chats over 16 connections, and not one error.

Run it with:

    .venv/bin/python -m pytest tests/test_load.py --run-slow -s

It prints the requests per second and the p50 / p99 latency (also without `-s`), and writes them to `load.json` in the
test's temporary folder. The client is Python threads on the same machine as the server, so the figures include the
client's own time: they show the service holds up under concurrency, they are not its top speed (benchmarks/ is).
The server closes every connection after its answer (no keep-alive), so each request opens a new one.
"""

from __future__ import annotations

import http.client
import json
import statistics
import threading
import time
import urllib.parse

import pytest

REQUESTS = 5_000
CONNECTIONS = 16
MESSAGE = "hello, how do I retrain you?"


def send_chats(host: str, port: int, count: int, start: threading.Barrier, latencies: list[float], errors: list[str]):
    """`count` chats one after another, each over a new connection; latency in seconds, or what went wrong."""
    body = json.dumps({"message": MESSAGE})
    start.wait()
    for _ in range(count):
        started = time.perf_counter()
        connection = http.client.HTTPConnection(host, port, timeout=10)
        try:
            connection.request("POST", "/api/chat", body=body, headers={"Content-Type": "application/json"})
            response = connection.getresponse()
            payload = response.read()
            if response.status != 200 or json.loads(payload).get("text") != MESSAGE:
                errors.append(f"{response.status} {payload[:200]!r}")
        except (OSError, http.client.HTTPException, ValueError) as exc:
            errors.append(repr(exc))
        finally:
            connection.close()
        latencies.append(time.perf_counter() - started)


@pytest.mark.slow
def test_serve_answers_5000_chats_over_16_connections_without_an_error(start_server, model_copy, tmp_path, capsys):
    server = start_server(model_copy)  # the defaults of `chatbot serve`: 2 workers, 4 threads each
    parts = urllib.parse.urlsplit(server.url)
    counts = [REQUESTS // CONNECTIONS + (i < REQUESTS % CONNECTIONS) for i in range(CONNECTIONS)]
    start = threading.Barrier(CONNECTIONS + 1)
    latencies: list[list[float]] = [[] for _ in range(CONNECTIONS)]
    errors: list[str] = []
    clients = [
        threading.Thread(target=send_chats, args=(parts.hostname, parts.port, n, start, latencies[i], errors))
        for i, n in enumerate(counts)
    ]
    for client in clients:
        client.start()
    start.wait()
    began = time.perf_counter()
    for client in clients:
        client.join()
    seconds = time.perf_counter() - began

    every = sorted(t for own in latencies for t in own)
    cuts = statistics.quantiles(every, n=100, method="inclusive")
    figures = {
        "requests": len(every),
        "connections": CONNECTIONS,
        "errors": len(errors),
        "seconds": round(seconds, 3),
        "requests_per_second": round(len(every) / seconds, 1),
        "p50_ms": round(cuts[49] * 1000, 2),
        "p99_ms": round(cuts[98] * 1000, 2),
        "max_ms": round(every[-1] * 1000, 2),
    }
    (tmp_path / "load.json").write_text(json.dumps(figures, indent=2) + "\n")
    with capsys.disabled():
        print(
            f"\nload on chatbot serve (2 workers x 4 threads): {json.dumps(figures)}\nwritten to {tmp_path}/load.json"
        )

    assert len(every) == REQUESTS
    assert errors == [], f"{len(errors)} failed, first ones: {errors[:5]}"
    assert "Traceback" not in server.log()
