"""Shared fixtures: one briefly trained checkpoint per test session, and the shipped files."""

from __future__ import annotations

import os
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import pytest
from hypothesis import HealthCheck, settings

# Property-based tests: a modest number of examples by default, `--hypothesis-profile=thorough` for 2,000+ each.
settings.register_profile("default", max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("thorough", max_examples=2500, deadline=None, suppress_health_check=list(HealthCheck))
settings.load_profile("default")

ROOT = Path(__file__).resolve().parent.parent
SHIPPED_INTENTS = ROOT / "intents.json"
BANKING77 = ROOT.parent / "shared" / "data" / "banking77"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--run-slow", action="store_true", help="also run the heavy tests marked slow")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--run-slow"):
        return
    skip = pytest.mark.skip(reason="heavy test: run with --run-slow")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def intents_path() -> Path:
    return SHIPPED_INTENTS


@pytest.fixture(scope="session")
def trained_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A checkpoint trained on the shipped intents.json with the default settings, shared by the whole session.

    Tests must not modify it: copy it first (`shutil.copy`) when a test replaces or damages the file.
    """
    from training.intents_reader import load_intents
    from training.train_file import train_file

    return train_file(load_intents(SHIPPED_INTENTS), tmp_path_factory.mktemp("model") / "chatbot.pt").path


@pytest.fixture(scope="session")
def classifier(trained_model: Path):
    from training.classifier import IntentClassifier

    return IntentClassifier.from_checkpoint(trained_model, seed=0)


@pytest.fixture(scope="session")
def banking77() -> Path:
    if not (BANKING77 / "train.csv").exists():
        pytest.skip("BANKING77 not found beside the project (../shared/data/banking77)")
    return BANKING77


# --- The web app and the server ---------------------------------------------------------------------------------------

HTML_ANSWER = "<script>window.pwned=1</script><b>bold</b><img src=x onerror=window.pwned=2>"


@pytest.fixture
def model_copy(trained_model: Path, tmp_path: Path) -> Path:
    """A private copy of the session checkpoint, alone in its own models/ folder, free to replace or damage."""
    import shutil

    folder = tmp_path / "models"
    folder.mkdir()
    return Path(shutil.copy(trained_model, folder / "chatbot.pt"))


@pytest.fixture(scope="session")
def html_model(trained_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The session checkpoint with every answer, fallbacks included, replaced by HTML that would run if interpreted."""
    return _edited_checkpoint(trained_model, tmp_path_factory.mktemp("html") / "chatbot.pt", HTML_ANSWER)


@pytest.fixture(scope="session")
def edit_checkpoint():
    """`edit_checkpoint(source, target, response, created_at=None)`: see `_edited_checkpoint`."""
    return _edited_checkpoint


def _edited_checkpoint(source: Path, target: Path, response: str, created_at: str | None = None) -> Path:
    """A copy of `source` whose every response is `response`: answers then tell which checkpoint gave them."""
    from training.checkpoint import load_checkpoint, save_checkpoint

    checkpoint = load_checkpoint(source)
    checkpoint["responses"] = {tag: [response] for tag in checkpoint["tags"]}
    checkpoint["fallback"]["responses"] = [response]
    if created_at:
        checkpoint["created_at"] = created_at
    return save_checkpoint(checkpoint, target)


@pytest.fixture
def app(model_copy: Path, monkeypatch: pytest.MonkeyPatch):
    """The Flask app on a private checkpoint copy, deaf to any CHATBOT_* variable of the machine running the tests."""
    from app import create_app

    for name in list(os.environ):
        if name.startswith("CHATBOT_"):
            monkeypatch.delenv(name)
    return create_app({"TESTING": True, "MODEL_PATH": str(model_copy)})


@pytest.fixture
def client(app):
    return app.test_client()


class ServerProcess:
    """`chatbot serve` running in a subprocess on a free port of 127.0.0.1; `url` ends with a slash."""

    def __init__(self, model: Path, log_path: Path, workers: int, threads: int, env: dict[str, str]) -> None:
        import subprocess
        import sys
        import threading

        self.log_path = log_path
        self.url = ""
        command = [sys.executable, "-m", "chatbot", "serve", "--model", str(model), "--port", "0"]
        command += ["--workers", str(workers), "--threads", str(threads)]
        clean_env = {k: v for k, v in os.environ.items() if not k.startswith("CHATBOT_")} | env
        self._log = open(log_path, "wb")  # noqa: SIM115  (closed in stop)
        self.process = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=self._log, stdin=subprocess.DEVNULL, env=clean_env, cwd=ROOT
        )
        self._ready = threading.Event()
        self.stdout: list[str] = []
        self._reader = threading.Thread(target=self._read_stdout, daemon=True)
        self._reader.start()

    def _read_stdout(self) -> None:
        for raw in self.process.stdout:
            line = raw.decode(errors="replace").rstrip("\n")
            self.stdout.append(line)
            if line.startswith("Chat page: ") and not self.url:
                self.url = line.split()[2]
                self._ready.set()
        self._ready.set()  # exited: let wait_ready report it

    def wait_ready(self, timeout: float = 60) -> ServerProcess:
        import json
        import urllib.request

        if not self._ready.wait(timeout) or not self.url:
            self.stop()
            raise AssertionError(f"chatbot serve did not start; stdout {self.stdout}; log:\n{self.log()}")
        with urllib.request.urlopen(self.url + "api/health", timeout=timeout) as answer:  # waits for a worker
            assert json.load(answer)["status"] == "ok"
        return self

    def log(self) -> str:
        if not self._log.closed:
            self._log.flush()
        return self.log_path.read_text(errors="replace")

    def stop(self, timeout: float = 20) -> int:
        """SIGTERM, then SIGKILL if it does not stop in time; the exit code."""
        import subprocess

        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._reader.join(5)  # stdout reaches its end once every process of the server has exited
        self.process.stdout.close()
        self._log.close()
        return self.process.returncode


@pytest.fixture(scope="module")
def start_server(tmp_path_factory: pytest.TempPathFactory):
    """Start `chatbot serve` subprocesses: `start_server(model, workers=, threads=, env=)`; all stopped at the end."""
    servers: list[ServerProcess] = []

    def start(model: Path, workers: int = 2, threads: int = 4, env: dict[str, str] | None = None) -> ServerProcess:
        log_path = tmp_path_factory.mktemp("server") / "server.log"
        servers.append(ServerProcess(model, log_path, workers, threads, env or {}))
        return servers[-1].wait_ready()

    yield start
    for server in servers:
        server.stop()


# --- Conversations with contexts ---------------------------------------------------------------------------------

# The classic tutorial's moped rental: "today" may answer only after the rental question set "rentalday", and a
# greeting clears it.
RENTAL_INTENTS = {
    "intents": [
        {
            "tag": "greeting",
            "patterns": ["Hi", "How are you", "Is anyone there?", "Hello", "Good day", "hey there"],
            "responses": ["Hello, thanks for visiting"],
            "context_set": "",
        },
        {
            "tag": "goodbye",
            "patterns": ["Bye", "See you later", "Goodbye", "I am leaving"],
            "responses": ["See you later, thanks for visiting"],
        },
        {
            "tag": "thanks",
            "patterns": ["Thanks", "Thank you", "That's helpful", "thanks a lot"],
            "responses": ["Happy to help!"],
        },
        {
            "tag": "rental",
            "patterns": [
                "Can we rent a moped?",
                "I'd like to rent a moped",
                "How does this work?",
                "rent a scooter",
                "moped rental",
            ],
            "responses": ["Are you looking to rent today or later this week?"],
            "context_set": "rentalday",
        },
        {
            "tag": "today",
            "patterns": ["today", "today please", "for today", "rent it today"],
            "responses": ["For rentals today please call 1-800-MYMOPED"],
            "context_filter": "rentalday",
        },
    ]
}

# A bank asks for the customer's ID first, then a name, then a date of birth: each question is answerable only in
# its turn (like a public banking bot that filters ten intents this way).
BANKING_FLOW_INTENTS = {
    "intents": [
        {
            "tag": "greeting",
            "patterns": ["hello", "hi there", "good morning", "hey"],
            "responses": ["Welcome to the bank. What is your customer ID?"],
            "context_set": "",
        },
        {
            "tag": "customer_id",
            "patterns": [
                "my customer id is 12345",
                "customer id 998877",
                "here is my customer number",
                "my id is 4455",
                "customer number 123",
            ],
            "responses": ["Thank you. What is your first name?"],
            "context_set": "has_id",
        },
        {
            "tag": "first_name",
            "patterns": ["my first name is John", "first name Maria", "my name is Anna", "call me Peter"],
            "responses": ["Thanks. What is your date of birth?"],
            "context_filter": "has_id",
            "context_set": ["has_id", "has_name"],
        },
        {
            "tag": "date_of_birth",
            "patterns": ["I was born on 1 May 1990", "my date of birth is 3 March 1985", "born 12 June 1970"],
            "responses": ["You are verified. How can I help?"],
            "context_filter": "has_name",
            "context_set": "verified",
            "context_lifespan": 2,
        },
        {
            "tag": "balance",
            "patterns": ["what is my balance", "how much money do I have", "show my account balance"],
            "responses": ["Your balance is shown in the app."],
        },
        {
            "tag": "goodbye",
            "patterns": ["bye", "goodbye", "see you", "that is all"],
            "responses": ["Goodbye!"],
        },
    ]
}


def _trained_flow(document: dict, folder: Path) -> Path:
    import json

    from training.intents_reader import load_intents
    from training.train_file import train_file

    intents = folder / "intents.json"
    intents.write_text(json.dumps(document), encoding="utf-8")
    return train_file(load_intents(intents), folder / "chatbot.pt").path


@pytest.fixture(scope="session")
def rental_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _trained_flow(RENTAL_INTENTS, tmp_path_factory.mktemp("rental"))


@pytest.fixture(scope="session")
def banking_flow_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _trained_flow(BANKING_FLOW_INTENTS, tmp_path_factory.mktemp("banking-flow"))
