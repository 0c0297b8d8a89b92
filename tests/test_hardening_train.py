"""`chatbot train` and the loader against what a hostile tester found: special files at --model, files that are not
checkpoints, a full disk, killed trainings, memory that grows with tag length, and silent long epochs."""

from __future__ import annotations

import os
import shutil
import signal
import stat
import subprocess
import sys
import textwrap
import tracemalloc
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner
from intents_files import tiny as tiny_intents

from chatbot.cli import main
from chatbot.progress import TrainingProgress
from training.checkpoint import load_checkpoint
from training.loop import BatchProgress, EpochStats, TrainConfig, fit
from training.model import IntentNet, ModelConfig
from training.pipeline import split_examples

CHATBOT = str(Path(sys.executable).parent / "chatbot")
ROOT = Path(__file__).resolve().parent.parent


def train(intents: Path, model: Path, *extra: str):
    return CliRunner().invoke(main, ["train", "--intents", str(intents), "--model", str(model), *extra])


def run_chatbot(*args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    """`chatbot ARGS` in a child process: a hang fails the test by its timeout instead of hanging the suite."""
    return subprocess.run([CHATBOT, *args], capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)


# --- 1. what --model names --------------------------------------------------------------------------------------------


def test_train_never_replaces_a_device_node(tmp_path):
    device = tmp_path / "null"
    try:
        os.mknod(device, stat.S_IFCHR | 0o666, os.makedev(1, 3))  # the /dev/null device, in a folder of our own
    except PermissionError:
        pytest.skip("creating a device node needs CAP_MKNOD")
    for extra in ((), ("--force",)):
        result = train(tiny_intents(tmp_path), device, *extra)
        assert result.exit_code == 1
        assert f"Error: {device} is a device, not a file; choose another --model path; nothing was trained" in (
            result.output
        )
        assert stat.S_ISCHR(device.lstat().st_mode)


def test_train_replaces_a_symbolic_link_only_with_force_and_never_its_target(tmp_path):
    kept = tmp_path / "notes.txt"
    kept.write_text("not a model")
    link = tmp_path / "chatbot.pt"
    link.symlink_to(kept)
    refused = train(tiny_intents(tmp_path), link)
    assert refused.exit_code == 1
    assert f"{link} is a symbolic link (to {kept}); choose another --model path, or --force" in refused.output
    assert link.is_symlink()
    forced = train(tiny_intents(tmp_path), link, "--force")
    assert forced.exit_code == 0, forced.output
    assert not link.is_symlink() and load_checkpoint(link)["tags"] == ["greet", "bye"]
    assert kept.read_text() == "not a model"


def test_train_never_overwrites_its_own_intents_file(tmp_path):
    intents = tiny_intents(tmp_path)
    before = intents.read_bytes()
    for extra in ((), ("--force",)):
        result = train(intents, intents, *extra)
        assert result.exit_code == 1
        assert f"{intents} is the intents file being trained on; choose another --model path" in result.output
    assert intents.read_bytes() == before


def test_train_replaces_a_file_that_is_not_a_checkpoint_only_with_force(tmp_path):
    other = tmp_path / "report.pt"
    other.write_text("a file someone cares about")
    refused = train(tiny_intents(tmp_path), other)
    assert refused.exit_code == 1
    assert f"{other} exists and is not a chatbot checkpoint; choose another --model path, or --force" in (
        refused.output
    )
    assert other.read_text() == "a file someone cares about"
    assert train(tiny_intents(tmp_path), other, "--force").exit_code == 0
    assert load_checkpoint(other)["tags"] == ["greet", "bye"]


def test_train_replaces_a_damaged_checkpoint_without_force(model_copy, tmp_path):
    model_copy.write_bytes(model_copy.read_bytes()[:5000])
    result = train(tiny_intents(tmp_path), model_copy)
    assert result.exit_code == 0, result.output
    assert load_checkpoint(model_copy)["tags"] == ["greet", "bye"]


def test_a_named_pipe_as_the_model_never_hangs_train_or_predict(tmp_path):
    fifo = tmp_path / "chatbot.pt"
    os.mkfifo(fifo)
    predicted = run_chatbot("predict", "--model", str(fifo), "hello")
    assert (predicted.returncode, predicted.stderr) == (
        1,
        f"Error: {fifo} is a named pipe (FIFO), not a checkpoint file\n",
    )
    trained = run_chatbot("train", "--intents", str(tiny_intents(tmp_path)), "--model", str(fifo))
    assert trained.returncode == 1
    assert f"Error: {fifo} is a named pipe (FIFO), not a file; choose another --model path" in trained.stderr
    assert stat.S_ISFIFO(fifo.lstat().st_mode)


def can_mount_a_private_tmpfs() -> bool:
    if shutil.which("unshare") is None:
        return False
    probe = subprocess.run(["unshare", "-m", "mount", "-t", "tmpfs", "tmpfs", "/mnt"], capture_output=True, timeout=30)
    return probe.returncode == 0


@pytest.mark.skipif(not can_mount_a_private_tmpfs(), reason="needs `unshare -m` and mount rights for a private tmpfs")
def test_a_full_disk_says_no_space_left_and_keeps_the_model(model_copy, tmp_path):
    """A real full disk: a small tmpfs, in a mount namespace of its own, with 64 KiB left when `chatbot train` saves
    (torch then fails in the middle of the archive, with a message about its own source file)."""
    disk = tmp_path / "disk"
    disk.mkdir()
    model = disk / "chatbot.pt"
    script = f"""
        mount -t tmpfs -o size=4m tmpfs {disk} || exit 99
        cp {model_copy} {model}
        head -c 65536 /dev/zero > {disk}/spare
        cat /dev/zero > {disk}/filler 2>/dev/null
        rm {disk}/spare
        {CHATBOT} train --intents {tiny_intents(tmp_path)} --model {model}
        echo "exit=$?"
        cmp -s {model_copy} {model} && echo "model unchanged"
        ls -A {disk}
    """
    result = subprocess.run(["unshare", "-m", "bash", "-c", textwrap.dedent(script)], capture_output=True, text=True)
    assert f"Error: cannot write {model}: no space left on the device; {model} was not changed\n" in result.stderr
    assert "Traceback" not in result.stderr
    assert result.stdout.splitlines()[-4:] == ["exit=1", "model unchanged", "chatbot.pt", "filler"], result.stdout


# --- 4. memory and progress -------------------------------------------------------------------------------------------


def test_the_validation_split_does_not_copy_the_tag_for_every_pattern():
    long_tags = ["a" * 10_000, "b" * 10_000]
    labels = [tag for tag in long_tags for _ in range(100)]
    tracemalloc.start()
    try:
        split = split_examples(labels, 0.1, seed=0)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert len(split.val) == 20 and {labels[i] for i in split.val} == set(long_tags)
    assert peak < 1_000_000  # (patterns x longest tag) characters would be 8 MB, and 24 MB at numpy's peak


def test_the_progress_bar_knows_how_many_epochs_there_are(capsys, monkeypatch):
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    progress = TrainingProgress()
    progress.update("fit", EpochStats(1, 0.5, total=12))
    progress.close()
    assert "/12 " in capsys.readouterr().err


def test_fit_reports_every_batch_of_every_epoch():
    bags, y = bags_of_two_intents(24)  # small data: batches of 24 / 8 = 3, so 8 batches an epoch
    seen: list[BatchProgress] = []
    model = IntentNet(ModelConfig(n_features=4, n_intents=2, members=1))
    fit(model, bags, y, TrainConfig(), epochs=2, on_batch=seen.append)
    assert seen == [BatchProgress(epoch, 2, batch, 8) for epoch in (1, 2) for batch in range(1, 9)]


def test_a_long_epoch_prints_how_far_it_got(capsys):
    progress = TrainingProgress(tty=False, every=0)
    progress.batch("fit", BatchProgress(3, 10, 120, 400))
    progress.batch("fit", BatchProgress(3, 10, 400, 400))  # the epoch line follows at once: no batch line for it
    progress.update("fit", EpochStats(3, 0.25, total=10))
    assert capsys.readouterr().out.splitlines() == [
        "fit   epoch   3/10  batch 120/400",
        "fit   epoch   3/10  loss 0.2500  (0.00s)",
    ]


def bags_of_two_intents(n: int):
    from training.bags import Bags

    ids = [[0, 1] if i % 2 else [2, 3] for i in range(n)]
    return Bags.from_lists(ids), torch.tensor([i % 2 for i in range(n)])


# --- 7. killed trainings, and files that are not checkpoints ----------------------------------------------------------


def test_sigterm_while_saving_removes_the_temporary_file_and_keeps_the_model(model_copy, tmp_path):
    """SIGTERM arrives the moment the temporary file is complete (at its fsync), as a service manager would send it."""
    before = model_copy.read_bytes()
    child = f"""
        import os, signal, sys
        real_fsync = os.fsync
        def fsync_then_sigterm(fd):
            real_fsync(fd)
            os.kill(os.getpid(), signal.SIGTERM)
        os.fsync = fsync_then_sigterm
        from chatbot.cli import main
        sys.argv = ["chatbot", "train", "--intents", {str(tiny_intents(tmp_path))!r}, "--model", {str(model_copy)!r}]
        main()
    """
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(child)], capture_output=True, text=True, timeout=120, cwd=ROOT
    )
    assert result.returncode == 128 + signal.SIGTERM, result.stderr
    assert result.stderr.endswith(f"Error: stopped by SIGTERM; {model_copy} was not changed\n")
    assert sorted(p.name for p in model_copy.parent.iterdir()) == ["chatbot.pt"]
    assert model_copy.read_bytes() == before


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        ('{"intents": []}', "a JSON text file, not a saved model: an intents file is trained with `chatbot train`"),
        ("hello\nworld\n", "a text file, not a saved model"),
        ("", "the file is empty"),
    ],
    ids=["json", "text", "empty"],
)
def test_a_file_that_is_not_a_checkpoint_is_named_for_what_it_is(tmp_path, content, reason):
    path = tmp_path / "chatbot.pt"
    path.write_text(content)
    result = CliRunner().invoke(main, ["predict", "--model", str(path), "hi"])
    assert result.exit_code == 1
    assert result.output == f"Error: {path}: not a readable chatbot checkpoint ({reason})\n"
