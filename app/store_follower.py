"""Keep a server on its model store's current model: the process `chatbot serve --store` runs beside its workers.

Every poll interval (with ±20 % jitter, so that replicas do not ask at once) it reads the store's manifest; when it
names another model, the follower downloads it, checks its SHA-256, loads it and runs its self-test, here, off the
request path, and only then publishes it in the server's shared folder, from which every worker picks it up before
its next answer (app/model_store.py). On any failure it logs one line and the server keeps its model; a model that
was refused is not tried again until the store names another one.

    python -m app.store_follower STORE SHARED_DIR POLL_SECONDS CURRENT_DIGEST PARENT_PID
"""

from __future__ import annotations

import contextlib
import os
import random
import sys
import time
from pathlib import Path

from app.model_store import BadModel, accept_bytes, release_free_memory
from app.store_source import open_source
from training.checkpoint import CheckpointError
from training.registry import RegistryError

JITTER = 0.2
HEARTBEAT = ".follower-looked"  # in the shared folder, touched after every look at the store


def log(message: str) -> None:
    print(f"[store] {message}", file=sys.stderr, flush=True)


def follow(spec: str, shared_dir: Path, poll: float, digest: str, parent: int) -> None:
    source = open_source(spec)
    refused: str | None = None  # a model that does not load or fails its self-test: not downloaded again
    last_problem: str | None = None
    while True:
        deadline = time.monotonic() + poll * random.uniform(1 - JITTER, 1 + JITTER)
        while time.monotonic() < deadline:
            if os.getppid() != parent:  # the server is gone: so is its follower
                return
            time.sleep(min(0.2, max(0.0, deadline - time.monotonic())))
        problem = None
        try:
            manifest = source.current()
            if manifest is None or manifest.digest in (digest, refused):
                continue
            try:
                accept_bytes(source.fetch(manifest.digest), shared_dir, f"{source.label} model {manifest.short}")
            except BadModel as exc:
                refused = manifest.digest
                problem = f"refused {manifest.short}, still serving {digest[:12]}: {exc}"
                continue
            finally:
                release_free_memory()  # the download and the model it checked are garbage now
            digest, refused = manifest.digest, None
            log(f"now serving {manifest.short} (published {manifest.published_at} by {manifest.published_by})")
        except (RegistryError, CheckpointError) as exc:  # unreachable, a cut download, a full disk: tried again
            problem = f"cannot follow {source.label} yet, still serving {digest[:12]}: {exc}"
            source.forget()
        except Exception as exc:  # whatever else: the follower must outlive it, or the replica stops following
            problem = f"cannot follow {source.label} yet, still serving {digest[:12]}: {type(exc).__name__}: {exc}"
            source.forget()
        finally:
            if problem and problem != last_problem:  # one line per problem, not one per poll
                log(problem)
            last_problem = problem
            with contextlib.suppress(OSError):
                (shared_dir / HEARTBEAT).touch()  # /api/health tells how long ago it last looked


def main(argv: list[str]) -> None:
    import torch

    torch.set_num_threads(1)
    spec, shared_dir, poll, digest, parent = argv
    with contextlib.suppress(KeyboardInterrupt):
        follow(spec, Path(shared_dir), float(poll), digest, int(parent))


if __name__ == "__main__":
    main(sys.argv[1:])
