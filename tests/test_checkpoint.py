import errno
import os
import pickle
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from training.checkpoint import (
    FORMAT_VERSION,
    CheckpointError,
    load_checkpoint,
    remove_stale_temp_files,
    save_checkpoint,
)
from training.classifier import IntentClassifier


def test_saved_and_reloaded_model_gives_identical_logits(trained_model, tmp_path):
    original = IntentClassifier.from_checkpoint(trained_model)
    copy = tmp_path / "copy.pt"
    save_checkpoint(load_checkpoint(trained_model), copy)
    reloaded = IntentClassifier.from_checkpoint(copy)
    messages = ["hello", "how do I retrain you", "tell me a joke please"]
    torch.testing.assert_close(original.probabilities(messages), reloaded.probabilities(messages), rtol=0, atol=0)


def test_checkpoint_is_self_contained(trained_model):
    ckpt = load_checkpoint(trained_model)
    for key in ["state_dict", "model_config", "features", "tags", "responses", "fallback", "train_config", "seed"]:
        assert key in ckpt
    assert ckpt["format_version"] == FORMAT_VERSION
    assert set(ckpt["versions"]) >= {"python", "torch", "nltk", "scikit-learn", "numpy"}
    assert len(ckpt["intents_sha256"]) == 64
    assert 0 < ckpt["fallback"]["threshold"] < 1
    assert ckpt["model_config"] | {"n_features": 0, "n_intents": 0} == {
        "n_features": 0,
        "n_intents": 0,
        "hidden1": 128,
        "hidden2": 64,
        "dropout": 0.5,
        "members": 3,
    }
    # a file this small (240 patterns) calibrates its fallback on pooled cross-validation folds
    assert 0 < ckpt["metrics"]["cv_accuracy"] <= 1
    assert ckpt["fallback"]["calibration"].startswith("cross-validation (5 folds")
    assert ckpt["created_at"].endswith("+00:00")


def test_checkpoint_file_is_world_readable(trained_model, tmp_path):
    path = save_checkpoint(load_checkpoint(trained_model), tmp_path / "m.pt")
    assert stat.S_IMODE(path.stat().st_mode) == 0o644


def test_missing_model_says_to_train_first(tmp_path):
    with pytest.raises(CheckpointError, match=r"model not found: .*run `chatbot train` first"):
        load_checkpoint(tmp_path / "none.pt")


def test_truncated_empty_and_foreign_files_are_refused(trained_model, tmp_path):
    data = trained_model.read_bytes()
    (tmp_path / "truncated.pt").write_bytes(data[: len(data) // 2])
    (tmp_path / "empty.pt").write_bytes(b"")
    torch.save({"weights": torch.zeros(3)}, tmp_path / "foreign.pt")
    torch.save(torch.zeros(3), tmp_path / "tensor.pt")
    (tmp_path / "text.pt").write_text("hello")
    for name in ["truncated.pt", "empty.pt", "text.pt"]:
        with pytest.raises(CheckpointError, match="not a readable chatbot checkpoint"):
            load_checkpoint(tmp_path / name)
    for name in ["foreign.pt", "tensor.pt"]:
        with pytest.raises(CheckpointError, match="not a chatbot checkpoint"):
            load_checkpoint(tmp_path / name)


def test_newer_format_is_refused_with_upgrade_hint(trained_model, tmp_path):
    ckpt = load_checkpoint(trained_model)
    ckpt["format_version"] = FORMAT_VERSION + 1
    torch.save(ckpt, tmp_path / "newer.pt")
    with pytest.raises(CheckpointError, match=r"newer than this chatbot reads.*upgrade"):
        load_checkpoint(tmp_path / "newer.pt")


class Payload:
    def __reduce__(self):
        return (os.system, (f"touch {Payload.marker}",))


def test_checkpoint_that_runs_code_when_unpickled_is_refused(tmp_path):
    Payload.marker = tmp_path / "pwned"
    with open(tmp_path / "evil.pt", "wb") as handle:
        pickle.dump({"format": "chatbot-checkpoint", "x": Payload()}, handle)
    torch.save({"format": "chatbot-checkpoint", "x": Payload()}, tmp_path / "evil2.pt")
    for name in ["evil.pt", "evil2.pt"]:
        with pytest.raises(CheckpointError):
            load_checkpoint(tmp_path / name)
    assert not Payload.marker.exists()


def test_failed_write_leaves_previous_checkpoint_and_no_temp_file(trained_model, tmp_path, monkeypatch):
    target = tmp_path / "chatbot.pt"
    target.write_bytes(trained_model.read_bytes())
    before = target.read_bytes()

    def disk_full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr("training.files.os.fsync", disk_full)
    with pytest.raises(CheckpointError, match=rf"^cannot write {target}: no space left on the device$"):
        save_checkpoint(load_checkpoint(trained_model), target)
    assert target.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["chatbot.pt"]


def test_a_checkpoint_that_cannot_be_serialized_creates_no_file(tmp_path):
    with pytest.raises(CheckpointError, match="cannot save the checkpoint"):
        save_checkpoint({"format": "chatbot-checkpoint", "x": lambda: None}, tmp_path / "chatbot.pt")
    assert list(tmp_path.iterdir()) == []


def test_a_checkpoint_written_by_plain_torch_save_still_loads(trained_model, tmp_path):
    """Older versions wrote with torch.save on a path (the archive then takes the file's name) and had no checks."""
    old = tmp_path / "old.pt"
    torch.save(load_checkpoint(trained_model), old)
    assert load_checkpoint(old)["tags"] == load_checkpoint(trained_model)["tags"]


def test_file_size_limit_during_write_leaves_previous_checkpoint(trained_model, tmp_path):
    """As root a read-only folder does not stop writes; a file-size limit makes the write itself fail."""
    target = tmp_path / "chatbot.pt"
    target.write_bytes(trained_model.read_bytes())
    before = target.read_bytes()
    script = (
        "import resource, signal, sys\n"
        "signal.signal(signal.SIGXFSZ, signal.SIG_IGN)\n"
        "resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))\n"
        "from training.checkpoint import load_checkpoint, save_checkpoint, CheckpointError\n"
        f"ckpt = load_checkpoint({str(trained_model)!r})\n"
        f"try:\n    save_checkpoint(ckpt, {str(target)!r})\n"
        "except CheckpointError as exc:\n    print(exc); sys.exit(3)\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert result.returncode == 3, result.stderr
    assert "cannot write" in result.stdout
    assert target.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["chatbot.pt"]


def test_stale_temp_files_of_dead_processes_are_cleaned(tmp_path):
    target = tmp_path / "chatbot.pt"
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    stale = tmp_path / f".chatbot.pt.tmp-{dead.stdout.strip()}-abc.tmp"
    stale.write_bytes(b"half a model")
    alive = tmp_path / f".chatbot.pt.tmp-{os.getppid()}-abc.tmp"
    alive.write_bytes(b"being written")
    assert remove_stale_temp_files(target) == [stale]
    assert not stale.exists() and alive.exists()
    assert isinstance(target, Path)
