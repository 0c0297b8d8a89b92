"""ModelStore with a shared folder: how a reload made by one worker process reaches the others (two stores here)."""

from __future__ import annotations

import platform
import shutil
from pathlib import Path

import pytest

from app.model_store import CURRENT, ModelStore, create_shared_dir
from training.checkpoint import CheckpointError


@pytest.fixture
def shared_dir(model_copy: Path):
    path = create_shared_dir(model_copy)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def answer(store: ModelStore) -> str:
    return store.classifier().predict("hello").response


def test_the_shared_folder_holds_one_accepted_copy(model_copy, shared_dir):
    assert [p.name for p in shared_dir.iterdir()] == [CURRENT]
    assert (shared_dir / CURRENT).read_bytes() == model_copy.read_bytes()


def test_a_bad_checkpoint_never_gets_a_shared_folder(tmp_path):
    (tmp_path / "bad.pt").write_bytes(b"junk")
    before = set(Path("/tmp").glob("chatbot-serve-*"))
    with pytest.raises(CheckpointError, match=f"{tmp_path / 'bad.pt'}: not a readable chatbot checkpoint"):
        create_shared_dir(tmp_path / "bad.pt")
    assert set(Path("/tmp").glob("chatbot-serve-*")) == before


def test_a_reload_in_one_worker_reaches_the_other(model_copy, shared_dir, edit_checkpoint):
    first, second = ModelStore(model_copy, shared_dir), ModelStore(model_copy, shared_dir)
    edit_checkpoint(model_copy, model_copy, "new model")
    assert answer(second) != "new model"  # nobody asked for a reload yet
    first.reload()
    assert answer(first) == answer(second) == "new model"


def test_a_worker_started_later_loads_the_accepted_model_not_model_path(model_copy, shared_dir, edit_checkpoint):
    edit_checkpoint(model_copy, model_copy, "new model")
    ModelStore(model_copy, shared_dir).reload()
    model_copy.write_bytes(b"corrupt since the reload")
    assert answer(ModelStore(model_copy, shared_dir)) == "new model"


def test_a_failed_reload_changes_nothing_anywhere(model_copy, shared_dir):
    first, second = ModelStore(model_copy, shared_dir), ModelStore(model_copy, shared_dir)
    accepted = (shared_dir / CURRENT).read_bytes()
    models = first.classifier(), second.classifier()
    model_copy.write_bytes(b"corrupt")
    with pytest.raises(CheckpointError, match=f"{model_copy}: not a readable chatbot checkpoint"):
        first.reload()
    assert (shared_dir / CURRENT).read_bytes() == accepted
    assert [p.name for p in shared_dir.iterdir()] == [CURRENT]  # the rejected copy is gone
    assert (first.classifier(), second.classifier()) == models


def test_a_worker_keeps_answering_when_the_accepted_file_cannot_be_loaded(model_copy, shared_dir):
    store = ModelStore(model_copy, shared_dir)
    model = store.classifier()
    (shared_dir / CURRENT).write_bytes(b"tampered with on disk")
    assert store.classifier() is model
    shutil.rmtree(shared_dir)  # the server is shutting down
    assert store.classifier() is model


@pytest.mark.parametrize("special", ["/dev/zero", "folder"])
def test_a_reload_from_a_device_or_folder_is_refused_unread(model_copy, shared_dir, special, tmp_path):
    """A plain copy of /dev/zero would never end (and fill the disk); the path is refused before anything is read."""
    path = Path(special) if special.startswith("/") else tmp_path
    store = ModelStore(path, shared_dir)
    kind = "a device" if special.startswith("/") else "a folder"
    with pytest.raises(CheckpointError, match=f"{path} is {kind}, not a checkpoint file"):
        store.reload()
    assert (shared_dir / CURRENT).read_bytes() == model_copy.read_bytes()


def test_free_heap_pages_go_back_to_the_system_after_a_load():
    from app.model_store import release_free_memory

    # glibc here: malloc_trim exists and is called; elsewhere the call is skipped, never an error
    assert release_free_memory() is (platform.libc_ver()[0] == "glibc")
