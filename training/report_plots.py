"""The evaluation report's pictures: which intents get confused, and how confident right and wrong answers are.

A full confusion matrix of 77 or more intents is a grey carpet nobody can read, so the confusion picture shows only
the intents involved in the most mistakes, plus the most confused pairs as bars.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from sklearn.metrics import confusion_matrix

from training.plots import _pyplot, save_figure  # _pyplot: the one place that sets matplotlib's Agg backend

HEATMAP_INTENTS = 20
BAR_PAIRS = 20


def plot_confusion(
    gold: Sequence[str],
    predicted: Sequence[str],
    path: str | Path,
    max_intents: int = HEATMAP_INTENTS,
    top_pairs: int = BAR_PAIRS,
) -> Path:
    """Left: mistakes among the `max_intents` intents involved in the most of them (rows gold, columns predicted,
    the diagonal left out so that mistakes set the colour scale). Right: the `top_pairs` most frequent mistakes."""
    plt = _pyplot()
    labels = sorted(set(gold) | set(predicted))
    # A single label cannot be confused (and scikit-learn warns about it).
    errors = confusion_matrix(gold, predicted, labels=labels) if len(labels) > 1 else np.zeros((1, 1), dtype=int)
    np.fill_diagonal(errors, 0)
    if not errors.any():
        note = f"No confusions: all {len(gold)} messages got their gold intent" if gold else "No in-scope messages"
        return _message_figure(note, path)
    pairs = _pairs(errors, labels)
    picked: dict[int, None] = {}  # both intents of the most frequent mistakes first, so those pairs are on the map
    for r, c in pairs:
        if len(picked | {r: None, c: None}) <= max_intents:
            picked |= {r: None, c: None}
    chosen = list(picked)
    fig, (ax_map, ax_bar) = plt.subplots(
        1, 2, figsize=(18, 9), dpi=100, gridspec_kw={"width_ratios": [1.15, 1]}, layout="constrained"
    )
    _heatmap(fig, ax_map, errors[np.ix_(chosen, chosen)], [labels[i] for i in chosen])
    ax_map.set_title(
        f"Mistakes among the {len(chosen)} most confused of {len(labels)} intents "
        f"({int(errors[np.ix_(chosen, chosen)].sum())} of {int(errors.sum())} mistakes)"
    )
    _pair_bars(ax_bar, errors, labels, pairs[:top_pairs])
    fig.suptitle(f"Confusions on {len(gold)} in-scope messages", fontsize=14)
    return save_figure(fig, path, tight_layout=False, bbox_inches="tight")  # keep long names


def _heatmap(fig, ax, counts: np.ndarray, names: list[str]) -> None:
    image = ax.imshow(np.ma.masked_equal(counts, 0), cmap="Reds", vmin=0, vmax=max(1, counts.max()))
    ax.set_facecolor("#f4f4f4")
    ax.set_xticks(range(len(names)), names, rotation=90, fontsize=8)
    ax.set_yticks(range(len(names)), names, fontsize=8)
    ax.set_xlabel("predicted intent")
    ax.set_ylabel("gold intent")
    for r, c in zip(*np.nonzero(counts)):
        dark = counts[r, c] > 0.6 * counts.max()
        ax.text(c, r, str(counts[r, c]), ha="center", va="center", fontsize=7, color="white" if dark else "black")
    fig.colorbar(image, ax=ax, shrink=0.6, label="messages", ticks=_integer_ticks())


def _pairs(errors: np.ndarray, labels: list[str]) -> list[tuple[int, int]]:
    """(gold, predicted) index pairs with at least one mistake, most mistakes first, ties by name."""
    rows, cols = np.nonzero(errors)
    return sorted(zip(rows.tolist(), cols.tolist()), key=lambda rc: (-errors[rc], labels[rc[0]], labels[rc[1]]))


def _pair_bars(ax, errors: np.ndarray, labels: list[str], pairs: list[tuple[int, int]]) -> None:
    names = [f"{labels[r]} → {labels[c]}" for r, c in pairs]
    counts = [int(errors[r, c]) for r, c in pairs]
    positions = np.arange(len(pairs))[::-1]
    ax.barh(positions, counts, color="tab:red")
    ax.set_yticks(positions, names, fontsize=8)
    for y, count in zip(positions, counts):
        ax.text(count, y, f" {count}", va="center", fontsize=8)
    ax.set_xlabel("messages (gold → predicted)")
    ax.xaxis.set_major_locator(_integer_ticks())
    ax.set_title(f"The {len(pairs)} most frequent mistakes")
    ax.grid(axis="x", alpha=0.3)


def plot_confidence_histogram(
    confidence: Sequence[float],
    correct: Sequence[bool],
    threshold: float,
    path: str | Path,
    out_of_scope_confidence: Sequence[float] = (),
) -> Path:
    """Confidence of right and of wrong answers (and of out-of-scope messages, if any) on one shared axis, the
    fallback threshold drawn across all: what lies left of the line becomes "I didn't understand"."""
    plt = _pyplot()
    confidence, correct = np.asarray(confidence, dtype=float), np.asarray(correct, dtype=bool)
    groups = [
        ("right answers", confidence[correct], "tab:green"),
        ("wrong answers", confidence[~correct], "tab:red"),
    ]
    groups.append(("out-of-scope messages", np.asarray(out_of_scope_confidence, dtype=float), "tab:purple"))
    groups = [group for group in groups if len(group[1])]  # an empty panel would only show a meaningless axis
    if not groups:
        return _message_figure("No messages to show", path)
    bins = np.linspace(0, 1, 41)
    fig, axes = plt.subplots(
        len(groups), 1, figsize=(8, 2.3 * len(groups) + 0.8), dpi=110, sharex=True, layout="constrained", squeeze=False
    )
    axes = axes[:, 0]
    for ax, (name, values, colour) in zip(axes, groups):
        ax.hist(values, bins=bins, color=colour, alpha=0.8)
        ax.axvline(threshold, color="black", linestyle="--", linewidth=1.2)
        below = int((values < threshold).sum())
        ax.set_title(f"{name}: {len(values)}, of which {below} below the threshold (fall back)", fontsize=10)
        ax.set_ylabel("messages")
        ax.yaxis.set_major_locator(_integer_ticks())
        ax.grid(alpha=0.3)
    axes[0].text(threshold, axes[0].get_ylim()[1] * 0.9, f" threshold {threshold:.3f}", fontsize=9, va="top")
    axes[-1].set_xlabel("confidence of the top intent")
    axes[-1].set_xlim(0, 1)
    return save_figure(fig, path, tight_layout=False, bbox_inches="tight")  # keep long names


def _integer_ticks():
    """Counts of messages: no ticks at 0.5."""
    from matplotlib.ticker import MaxNLocator

    return MaxNLocator(integer=True)


def _message_figure(message: str, path: str | Path) -> Path:
    """A small picture that says why there is no chart, so the report always has every file."""
    fig, ax = _pyplot().subplots(figsize=(7, 3), dpi=110, layout="constrained")
    ax.axis("off")
    ax.text(0.5, 0.5, message, ha="center", va="center")
    return save_figure(fig, path, tight_layout=False, bbox_inches="tight")  # keep long names
