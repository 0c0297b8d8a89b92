"""Run the app on gunicorn, started from Python: what `chatbot serve` and the benchmark call.

gunicorn's `gthread` workers, several threads each, without keep-alive (measurements: benchmarks/server_choice.md):
- not `sync` workers: a sync worker blocks on the first request of every connection it accepts, so two idle
  connections, such as a browser opens ahead of time, stall a two-worker server until they time out;
- no keep-alive: a kept-alive connection stays with the worker that accepted it, and a client holding a few
  connections (a load tester, a proxy's pool) was often pinned to one worker, at a third of the throughput. Closing
  after each answer lets the kernel spread every request over the workers. A proxy in front can keep clients' alive.

The master process checks the checkpoint once and keeps an accepted copy in a private folder that the workers load
and watch (see app/model_store.py); each worker then builds its own app, so no loaded model crosses a fork.
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from gunicorn.app.base import BaseApplication

DEFAULT_WORKERS = 2
DEFAULT_THREADS = 4


class GunicornServer(BaseApplication):
    """gunicorn configured from a dict, serving the WSGI app that `factory` builds in each worker."""

    def __init__(self, factory: Callable[[], Any], options: dict[str, Any]) -> None:
        self.factory = factory
        self.options = options
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            self.cfg.set(key, value)

    def load(self) -> Any:
        return self.factory()


def gunicorn_options(host: str, port: int, workers: int, threads: int) -> dict[str, Any]:
    return {
        "bind": f"[{host}]:{port}" if ":" in host else f"{host}:{port}",
        "workers": workers,
        "threads": threads,
        "worker_class": "gthread",
        "keepalive": 0,  # see the module docstring
        "timeout": 30,
        "graceful_timeout": 10,
        "accesslog": None,  # the app logs one line per request itself
        "errorlog": "-",
        "loglevel": "info",
        "proc_name": "chatbot",
        "control_socket_disable": True,  # gunicorn >= 25 would otherwise open one socket per user, shared by servers
        "when_ready": announce,
    }


def announce(arbiter: Any) -> None:
    """Print where the chat page is once the port is bound (connections wait there until a worker takes them)."""
    for listener in arbiter.LISTENERS:
        print(f"Chat page: {listener}/  (Ctrl-C to stop)", flush=True)


def worker_app(overrides: dict[str, Any]) -> Any:
    """The app of one worker process, with one torch thread, built after the fork."""
    import torch

    from app import create_app

    torch.set_num_threads(1)
    return create_app(overrides | {"DEBUG": False})  # Flask would turn debug on for a FLASK_DEBUG=1 left exported


def run_server(
    model: str | Path,
    host: str = "127.0.0.1",
    port: int = 5000,
    workers: int = DEFAULT_WORKERS,
    threads: int = DEFAULT_THREADS,
) -> None:
    """Serve until SIGINT or SIGTERM.

    Raises CheckpointError (bad model) or ValueError (bad CHATBOT_* setting) before binding the port.
    """
    import torch

    from app.model_store import create_shared_dir
    from app.settings import settings_from_env

    # One torch thread, set before the first tensor operation: a worker forked from a master whose OpenMP pool ran
    # with more threads hangs in its first parallel copy (libgomp is not fork-safe). One thread per worker is also
    # the fastest setting on a small machine (NOTES).
    torch.set_num_threads(1)
    settings_from_env(os.environ)
    shared_dir = create_shared_dir(model)
    overrides = {"MODEL_PATH": str(model), "MODEL_SHARED_DIR": str(shared_dir)}
    master = os.getpid()
    try:
        GunicornServer(lambda: worker_app(overrides), gunicorn_options(host, port, workers, threads)).run()
    finally:
        if os.getpid() == master:  # worker processes leave through here too, by sys.exit in gunicorn's fork
            shutil.rmtree(shared_dir, ignore_errors=True)
            sys.stdout.flush()
