"""Run the app on gunicorn, started from Python: what `chatbot serve` and the benchmark call.

gunicorn's `gthread` workers, several threads each, without keep-alive (measurements: benchmarks/server_choice.md):
- not `sync` workers: a sync worker blocks on the first request of every connection it accepts, so two idle
  connections, such as a browser opens ahead of time, stall a two-worker server until they time out;
- no keep-alive: a kept-alive connection stays with the worker that accepted it, and a client holding a few
  connections (a load tester, a proxy's pool) was often pinned to one worker, at a third of the throughput. Closing
  after each answer lets the kernel spread every request over the workers. A proxy in front can keep clients' alive.

The workers are gunicorn's gthread with deadlines on reading requests and JSON protocol errors (app/worker.py): slow
clients wait in a worker's poller, not in its threads.

The master process checks the checkpoint once and keeps an accepted copy in a private folder that the workers load
and watch (see app/model_store.py); each worker then builds its own app, so no loaded model crosses a fork. The master
binds the port itself before gunicorn starts, so that a port in use is one line and exit code 1, not five retries.
"""

from __future__ import annotations

import errno
import os
import secrets
import shutil
import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from gunicorn.app.base import BaseApplication

from app.settings import DEFAULT_THREADS, DEFAULT_WORKERS
from app.worker import ReadLimits
from training.errors import UserError


class ListenError(UserError):
    """The address cannot be listened on: in use, not this machine's, or a privileged port."""


class GunicornServer(BaseApplication):
    """gunicorn configured from a dict, serving the WSGI app that `factory` builds in each worker."""

    def __init__(
        self, factory: Callable[[], Any], options: dict[str, Any], read_limits: ReadLimits | None = None
    ) -> None:
        self.factory = factory
        self.options = options
        self.read_limits = read_limits or ReadLimits()  # read by the workers (app/worker.py)
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            self.cfg.set(key, value)

    def load(self) -> Any:
        return self.factory()


def gunicorn_options(bind: str, workers: int, threads: int) -> dict[str, Any]:
    """`bind` is what gunicorn listens on: "host:port", or "fd://N" for a socket already bound (see bind_listener)."""
    return {
        "bind": bind,
        "workers": workers,
        "threads": threads,
        "worker_class": "app.worker.JsonThreadWorker",
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


def bind_listener(host: str, port: int) -> socket.socket:
    """A socket bound to host:port as gunicorn would bind it; ListenError says in one line why it cannot be."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    listener = socket.socket(family, socket.SOCK_STREAM)
    try:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as gunicorn: a port in TIME_WAIT is free
        listener.bind((host, port))
    except OSError as exc:
        listener.close()
        where = f"[{host}]:{port}" if family == socket.AF_INET6 else f"{host}:{port}"
        reason = "the port is in use (choose another with --port)" if exc.errno == errno.EADDRINUSE else exc.strerror
        raise ListenError(f"cannot listen on {where}: {reason or exc}") from None
    return listener


def announce(arbiter: Any) -> None:
    """Print where the chat page is once the port is bound (connections wait there until a worker takes them)."""
    for listener in arbiter.LISTENERS:
        print(f"Chat page: {listener}/  (Ctrl-C to stop)", flush=True)


def start_follower(store: str, shared_dir: Path, poll: float, digest: str) -> subprocess.Popen:
    """The process that keeps `shared_dir` on the store's current model (app/store_follower.py)."""
    command = [sys.executable, "-m", "app.store_follower", store, str(shared_dir), str(poll), digest, str(os.getpid())]
    return subprocess.Popen(command, stdin=subprocess.DEVNULL)


def worker_app(settings: dict[str, Any]) -> Any:
    """The app of one worker process, with one torch thread, built after the fork from the master's settings."""
    import torch

    from app import create_app

    torch.set_num_threads(1)
    # DEBUG off: Flask would turn debug on for a FLASK_DEBUG=1 left exported
    return create_app({"DEBUG": False}, settings=settings)


def run_server(
    model: str | Path,
    host: str = "127.0.0.1",
    port: int = 5000,
    workers: int = DEFAULT_WORKERS,
    threads: int = DEFAULT_THREADS,
    overrides: dict[str, Any] | None = None,
) -> None:
    """Serve until SIGINT or SIGTERM.

    Raises CheckpointError (bad model), SettingsError (bad CHATBOT_* setting) or ListenError (port in use), all before
    gunicorn starts.
    """
    import torch

    from app.message_log import check_writable
    from app.model_store import create_shared_dir
    from app.settings import DEFAULTS, settings_from_env
    from app.store_source import open_source

    # One torch thread, set before the first tensor operation: a worker forked from a master whose OpenMP pool ran
    # with more threads hangs in its first parallel copy (libgomp is not fork-safe). One thread per worker is also
    # the fastest setting on a small machine (NOTES).
    torch.set_num_threads(1)
    settings = DEFAULTS | settings_from_env(os.environ) | (overrides or {})
    if settings["MESSAGE_LOG"]:
        check_writable(settings["MESSAGE_LOG"])
    read_limits = ReadLimits(settings["READ_TIMEOUT"], settings["MAX_CONTENT_LENGTH"])
    follower = None
    if settings["STORE"]:
        source = open_source(settings["STORE"])
        manifest = source.current()
        model = f"{source.label} model {manifest.short}"
        shared_dir = create_shared_dir(model, source.fetch(manifest.digest))
        print(f"Serving {manifest.short} from {source.label} (published {manifest.published_at})", flush=True)
    else:
        shared_dir = create_shared_dir(model)
    settings |= {"MODEL_PATH": str(model), "MODEL_SHARED_DIR": str(shared_dir)}
    made_secret = not settings["CONTEXT_SECRET"]
    if made_secret:  # one key for all workers, so that any of them reads another's context tokens
        settings["CONTEXT_SECRET"] = secrets.token_urlsafe(32)
    master = os.getpid()
    try:
        bind = f"fd://{bind_listener(host, port).detach()}"  # gunicorn takes the descriptor over
        if settings["STORE"]:
            follower = start_follower(settings["STORE"], shared_dir, settings["POLL"], manifest.digest)
        if made_secret:
            print(
                "CHATBOT_SECRET_KEY is not set: conversation contexts are signed with a key made now, shared by "
                "this server's workers; set it to keep them across restarts and replicas",
                flush=True,
            )
        GunicornServer(lambda: worker_app(settings), gunicorn_options(bind, workers, threads), read_limits).run()
    finally:
        if os.getpid() == master:  # worker processes leave through here too, by sys.exit in gunicorn's fork
            if follower is not None:
                follower.terminate()
                try:
                    follower.wait(10)
                except subprocess.TimeoutExpired:
                    follower.kill()
            shutil.rmtree(shared_dir, ignore_errors=True)
            sys.stdout.flush()
