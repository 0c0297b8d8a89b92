"""The batched training loop, evaluation, and early stopping on a validation split."""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import torch
from torch.nn import functional as F

from training.bags import Bags
from training.errors import UserError
from training.model import IntentNet
from training.optim import Adam
from training.runtime import pick_device, use_training_threads


class TrainingError(UserError, RuntimeError):
    """Training produced no usable model (it diverged); nothing may be saved from it."""


@dataclass(frozen=True)
class TrainConfig:
    """Training settings; every `chatbot train` option maps onto one field and the checkpoint records them all."""

    epochs: int | None = None  # None: chosen from the data size by `auto_epochs`
    batch_size: int = 256
    lr: float = 6e-3
    label_smoothing: float = 0.1
    seed: int = 0
    val_fraction: float = 0.1
    patience: int = 3
    refit: bool | None = None  # retrain on all data for the best epoch count; None: only on small data sets

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class EpochStats:
    epoch: int
    train_loss: float
    val_loss: float | None = None
    val_accuracy: float | None = None
    seconds: float = 0.0
    total: int = 0  # the epoch budget this epoch is part of


@dataclass(frozen=True)
class BatchProgress:
    """How far an epoch has got: reported after every batch, so that a long epoch is not a silent one."""

    epoch: int
    epochs: int  # the epoch budget
    batch: int
    batches: int  # in this epoch


@dataclass
class History:
    """What happened, epoch by epoch; `best_epoch` is the one whose weights were kept."""

    epochs: list[EpochStats] = field(default_factory=list)
    best_epoch: int = 0

    def to_dict(self) -> dict:
        return {"best_epoch": self.best_epoch, "epochs": [asdict(e) for e in self.epochs]}


def effective_batch_size(n_examples: int, batch_size: int) -> int:
    """Small data sets get smaller batches, so that an epoch is still several optimizer steps."""
    return max(1, min(batch_size, math.ceil(n_examples / 8)))


def auto_epochs(n_examples: int, batch_size: int) -> int:
    """Epochs for about 350 optimizer steps, 10 to 200: BANKING77 gets 10, a 240-pattern file 44.

    A step budget rather than an epoch count: small files need many more epochs because each is only a few steps.
    """
    steps_per_epoch = math.ceil(n_examples / effective_batch_size(n_examples, batch_size))
    return max(10, min(200, math.ceil(350 / steps_per_epoch)))


def train_epoch(
    model: IntentNet,
    optimizer: Adam,
    bags: Bags,
    y: torch.Tensor,
    batch_size: int,
    label_smoothing: float,
    generator: torch.Generator,
    on_batch: Callable[[int, int], None] | None = None,
) -> float:
    """One pass over the data in shuffled batches; returns the mean training loss per example.

    `on_batch(done, batches)` is called after each batch.
    """
    model.train()
    order = torch.randperm(len(y), generator=generator, device=y.device)
    running_loss = 0.0
    batches = math.ceil(len(y) / batch_size)
    for done, start in enumerate(range(0, len(y), batch_size), start=1):
        rows = order[start : start + batch_size]
        ids, offsets = bags.select(rows)
        logits = model(ids, offsets)  # (members, batch, intents)
        targets = y[rows].repeat(logits.shape[0])
        loss = F.cross_entropy(logits.flatten(0, 1), targets, label_smoothing=label_smoothing)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        running_loss += loss.item() * len(rows)
        if on_batch is not None:
            on_batch(done, batches)
    return running_loss / len(y)


@torch.inference_mode()
def predict_proba(model: IntentNet, bags: Bags) -> torch.Tensor:
    """Averaged member probabilities, (messages, intents), in eval mode."""
    model.eval()
    return model.probabilities(*bags.all())


def loss_and_accuracy(model: IntentNet, bags: Bags, y: torch.Tensor) -> tuple[float, float]:
    """(loss, accuracy) of the averaged prediction: the loss is the negative log-likelihood of the true intent."""
    probs = predict_proba(model, bags)
    loss = F.nll_loss(torch.log(probs.clamp_min(1e-12)), y).item()
    accuracy = (probs.argmax(dim=1) == y).float().mean().item()
    return loss, accuracy


def fit(
    model: IntentNet,
    bags: Bags,
    y: torch.Tensor,
    config: TrainConfig,
    epochs: int,
    validation: tuple[Bags, torch.Tensor] | None = None,
    on_epoch: Callable[[EpochStats], None] | None = None,
    stop_early: bool = True,
    on_batch: Callable[[BatchProgress], None] | None = None,
) -> History:
    """Train for up to `epochs`; with a validation set, stop after `patience` epochs without a better validation
    loss and restore the best weights. Validation loss, not accuracy: on a few dozen held-out messages accuracy
    plateaus on noise long before the network has learned what it can. With `stop_early` off the validation set is
    only reported on, and all `epochs` run. `on_epoch` hears of every finished epoch, `on_batch` of every batch."""
    device = pick_device()
    use_training_threads()
    model.to(device)
    bags, y = bags.to(device), y.to(device)
    if validation is not None:
        validation = (validation[0].to(device), validation[1].to(device))
    generator = torch.Generator(device=device).manual_seed(config.seed)
    optimizer = Adam(model.parameters(), lr=config.lr)
    batch_size = effective_batch_size(len(y), config.batch_size)
    history = History()
    best_loss, best_state = math.inf, None
    for epoch in range(1, epochs + 1):
        started = time.perf_counter()
        report = None if on_batch is None else _batch_reporter(on_batch, epoch, epochs)
        train_loss = train_epoch(model, optimizer, bags, y, batch_size, config.label_smoothing, generator, report)
        if not math.isfinite(train_loss):
            raise TrainingError(f"training diverged at epoch {epoch} (loss {train_loss}); try a lower --lr")
        stats = EpochStats(epoch, train_loss, total=epochs)
        if validation is not None:
            stats.val_loss, stats.val_accuracy = loss_and_accuracy(model, *validation)
        stats.seconds = time.perf_counter() - started
        history.epochs.append(stats)
        if on_epoch is not None:
            on_epoch(stats)
        if validation is None or not stop_early:
            history.best_epoch = epoch
            continue
        if stats.val_loss < best_loss:
            best_loss, best_state, history.best_epoch = stats.val_loss, copy.deepcopy(model.state_dict()), epoch
        elif epoch - history.best_epoch >= config.patience:
            break
    if best_state is not None:
        model.load_state_dict(best_state)
    model.cpu()  # checkpoints and the classifier live on the CPU: a bag-of-words forward is too small for a GPU
    return history


def _batch_reporter(on_batch: Callable[[BatchProgress], None], epoch: int, epochs: int) -> Callable[[int, int], None]:
    return lambda done, batches: on_batch(BatchProgress(epoch, epochs, done, batches))
