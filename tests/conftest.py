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
    from training.checkpoint import save_checkpoint
    from training.intents import load_intents
    from training.pipeline import train_model

    path = tmp_path_factory.mktemp("model") / "chatbot.pt"
    save_checkpoint(train_model(load_intents(SHIPPED_INTENTS)).checkpoint, path)
    return path


@pytest.fixture(scope="session")
def classifier(trained_model: Path):
    from training.classifier import IntentClassifier

    return IntentClassifier.from_checkpoint(trained_model, seed=0)


@pytest.fixture(scope="session")
def banking77() -> Path:
    if not (BANKING77 / "train.csv").exists():
        pytest.skip("BANKING77 not found beside the project (../shared/data/banking77)")
    return BANKING77
