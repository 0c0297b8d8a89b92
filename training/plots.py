"""Pictures a person would rather look at than read: loss curves. matplotlib is imported only when drawing."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from training.errors import UserError
from training.loop import History

FORMATS = (".png", ".svg", ".pdf")


class PlotError(UserError, ValueError):
    """A figure could not be written; the message names the file."""


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_training(history: History, path: str | Path, title: str = "Training") -> Path:
    """Training loss and validation accuracy per epoch in one figure, the kept epoch marked."""
    plt = _pyplot()
    epochs = [e.epoch for e in history.epochs]
    fig, ax = plt.subplots(figsize=(7, 4), dpi=110)
    ax.plot(epochs, [e.train_loss for e in history.epochs], "o-", color="tab:blue", label="training loss")
    val_loss = [e.val_loss for e in history.epochs]
    if any(v is not None for v in val_loss):
        ax.plot(epochs, val_loss, "s--", color="tab:cyan", label="validation loss")
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss")
    lines, labels = ax.get_legend_handles_labels()
    val_acc = [e.val_accuracy for e in history.epochs]
    if any(v is not None for v in val_acc):
        ax2 = ax.twinx()
        ax2.plot(epochs, [100 * v for v in val_acc], "^-", color="tab:orange", label="validation accuracy (%)")
        ax2.set_ylabel("validation accuracy (%)")
        ax2.set_ylim(0, 100)
        more_lines, more_labels = ax2.get_legend_handles_labels()
        lines, labels = lines + more_lines, labels + more_labels
        ax.axvline(history.best_epoch, color="grey", linestyle=":", linewidth=1)
    ax.legend(lines, labels, loc="center right")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    return save_figure(fig, path)


def plot_losses(losses: Sequence[float], path: str | Path, title: str) -> Path:
    """A single loss curve on a log scale (the house-price demo's falls by orders of magnitude)."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 4), dpi=110)
    ax.plot(range(1, len(losses) + 1), losses, color="tab:blue")
    ax.set_yscale("log")
    ax.set_xlabel("epoch")
    ax.set_ylabel("MSE loss")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    return save_figure(fig, path)


def save_figure(fig, path: str | Path, tight_layout: bool = True, **savefig_options) -> Path:
    """Save `fig` as PNG, SVG or PDF and close it; PlotError (one line) when that is impossible.

    `tight_layout=False` is for figures laid out by matplotlib's constrained layout, which tight layout would undo.
    """
    path = Path(path)
    try:
        if path.suffix.lower() not in FORMATS:
            raise PlotError(f"cannot write {path}: use a {', '.join(FORMATS)} file name")
        path.parent.mkdir(parents=True, exist_ok=True)
        if tight_layout:
            fig.tight_layout()
        fig.savefig(path, **savefig_options)
    except OSError as exc:
        raise PlotError(f"cannot write {path}: {exc.strerror or exc}") from None
    finally:
        _pyplot().close(fig)
    return path
