"""What `chatbot train` shows while it works: one line per epoch, and a progress bar when a person is watching."""

from __future__ import annotations

import sys
import time
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:  # torch: not for `chatbot --help`
    from training.loop import BatchProgress, EpochStats

PROGRESS_EVERY = 10.0  # seconds: without a progress bar, a long epoch reports how far it got this often


def format_epoch(phase: str, stats: EpochStats) -> str:
    line = f"{phase:5} epoch {stats.epoch:3d}/{stats.total}  loss {stats.train_loss:.4f}"
    if stats.val_loss is not None:
        line += f"  val_loss {stats.val_loss:.4f}  val_acc {100 * stats.val_accuracy:5.1f}%"
    return line + f"  ({stats.seconds:.2f}s)"


class TrainingProgress:
    """Per-epoch lines (always, flushed, so a piped or killed run shows how far it got) and a tqdm bar on a TTY.

    Inside an epoch the bar advances batch by batch; without a bar, a line says how far a long epoch has got every
    `every` seconds.
    """

    def __init__(self, tty: bool | None = None, every: float = PROGRESS_EVERY) -> None:
        self.tty = sys.stderr.isatty() if tty is None else tty
        self.every = every
        self.bar = None
        self.phase = None
        self.last_line = time.monotonic()

    def batch(self, phase: str, progress: BatchProgress) -> None:
        self._enter(phase)
        if self.tty:
            if self.bar is None:
                self.bar = self._bar(phase, progress.epochs * progress.batches, "batch")
            if self.bar.unit == "batch":
                self.bar.update(1)
        elif progress.batch < progress.batches and time.monotonic() - self.last_line >= self.every:
            self._echo(
                f"{phase:5} epoch {progress.epoch:3d}/{progress.epochs}  batch {progress.batch}/{progress.batches}"
            )

    def update(self, phase: str, stats: EpochStats) -> None:
        self._enter(phase)
        line = format_epoch(phase, stats)
        if self.tty:
            if self.bar is None:
                self.bar = self._bar(phase, stats.total, "epoch")
            if self.bar.unit == "epoch":
                self.bar.update(1)
            self.bar.write(line)
        else:
            self._echo(line)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None

    def _enter(self, phase: str) -> None:
        if phase != self.phase:
            self.close()
            self.phase = phase

    def _bar(self, phase: str, total: int, unit: str):
        from tqdm import tqdm

        return tqdm(desc=phase, total=total, unit=unit, leave=False)

    def _echo(self, line: str) -> None:
        click.echo(line)
        sys.stdout.flush()
        self.last_line = time.monotonic()
