"""How good the bot is, from gold labels, predicted intents, confidences and fallback flags: pure, no model, no I/O.

Definitions (the report and its tests rely on them):
- A row whose gold label is `oos`, `out_of_scope` or empty is an out-of-scope message: the right answer is to fall
  back. Such rows are left out of every in-scope figure and scored on their own (out-of-scope recall).
- "Declined" means the bot fell back, or its top intent is itself an out-of-scope label (a model trained with an
  `oos` intent declines that way). Fallback figures count declines.
- In-scope figures use the top intent; a gold label the model does not know is always wrong and is reported by
  name. Per-intent figures and macro F1 cover the intents that occur in the in-scope gold labels.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from sklearn.metrics import confusion_matrix, f1_score, precision_recall_fscore_support

OUT_OF_SCOPE_LABELS = frozenset({"oos", "out_of_scope", ""})
MOST_CONFUSED = 20  # pairs listed in the report


def is_out_of_scope(label: str) -> bool:
    return label.strip().casefold() in OUT_OF_SCOPE_LABELS


def evaluate_predictions(
    gold: Sequence[str],
    predicted: Sequence[str],
    confidence: Sequence[float],
    fallback: Sequence[bool],
    known_tags: Sequence[str],
    threshold: float,
) -> dict[str, Any]:
    """Every figure of the evaluation report, as plain JSON-ready numbers, strings, lists and dicts."""
    if not (len(gold) == len(predicted) == len(confidence) == len(fallback)):
        raise ValueError("gold, predicted, confidence and fallback must have the same length")
    gold_a, pred_a = np.asarray(gold, dtype=object), np.asarray(predicted, dtype=object)
    oos_gold = np.array([is_out_of_scope(g) for g in gold_a], dtype=bool)
    declined = np.asarray(fallback, dtype=bool) | np.array([is_out_of_scope(p) for p in pred_a], dtype=bool)
    inside = ~oos_gold
    g, p, d, c = gold_a[inside], pred_a[inside], declined[inside], np.asarray(confidence, dtype=np.float64)[inside]
    correct = g == p
    known = set(known_tags)
    unknown = sorted({label for label in g if label not in known})
    is_known = np.array([label in known for label in g], dtype=bool)
    labels = [t for t in known_tags if t in set(g)] + unknown
    report: dict[str, Any] = {
        "n": len(gold_a),
        "n_in_scope": int(inside.sum()),
        "threshold": float(threshold),
        "accuracy": _mean(correct),
        "accuracy_with_fallback_as_wrong": _mean(correct & ~d),
        "fallback_rate": _mean(d),
        "answered_accuracy": _mean(correct[~d]),
        "macro_f1": float(f1_score(g, p, labels=labels, average="macro", zero_division=0)) if labels else None,
        "right_answers": int(correct.sum()),
        "wrong_answers": int((~correct).sum()),
        "right_lost_to_fallback": int((correct & d).sum()),
        "wrong_caught_by_fallback": int((~correct & d).sum()),
        "share_of_right_lost": _mean(d[correct]),
        "share_of_wrong_caught": _mean(d[~correct]),
        "median_confidence_right": _median(c[correct]),
        "median_confidence_wrong": _median(c[~correct]),
        "unknown_labels": {"rows": int((~is_known).sum()), "names": unknown},
        "accuracy_on_known_labels": _mean(correct[is_known]),
        "out_of_scope": _out_of_scope(declined[oos_gold]),
        "per_intent": per_intent(g, p, labels),
        "most_confused": most_confused(g, p, MOST_CONFUSED),
    }
    return report


def _mean(flags: np.ndarray) -> float | None:
    """The share of true values, or None for no values: 'no messages' must not read as 0 % or 100 %."""
    return float(np.mean(flags)) if flags.size else None


def _median(values: np.ndarray) -> float | None:
    return float(np.median(values)) if values.size else None


def _out_of_scope(declined: np.ndarray) -> dict[str, Any]:
    return {"n": int(declined.size), "declined": int(declined.sum()), "recall": _mean(declined)}


def per_intent(gold: Sequence[str], predicted: Sequence[str], labels: Sequence[str]) -> list[dict[str, Any]]:
    """Precision, recall, F1 and support of each label in `labels`, in that order."""
    if not len(labels):
        return []
    precision, recall, f1, support = precision_recall_fscore_support(
        gold, predicted, labels=list(labels), zero_division=0
    )
    return [
        {"intent": label, "precision": float(pr), "recall": float(rc), "f1": float(f), "support": int(s)}
        for label, pr, rc, f, s in zip(labels, precision, recall, f1, support)
    ]


def most_confused(gold: Sequence[str], predicted: Sequence[str], top: int) -> list[dict[str, Any]]:
    """The `top` (gold, predicted) pairs with the most mistakes, most first; ties in alphabetical order."""
    labels = sorted(set(gold) | set(predicted))
    if len(labels) < 2:  # nothing to confuse (and scikit-learn warns about a single label)
        return []
    matrix = confusion_matrix(gold, predicted, labels=labels)
    np.fill_diagonal(matrix, 0)
    rows, cols = np.nonzero(matrix)
    pairs = sorted(zip(rows, cols), key=lambda rc: (-matrix[rc], labels[rc[0]], labels[rc[1]]))
    return [{"gold": labels[r], "predicted": labels[c], "count": int(matrix[r, c])} for r, c in pairs[:top]]


def error_rows(
    texts: Sequence[str],
    gold: Sequence[str],
    predicted: Sequence[str],
    confidence: Sequence[float],
    fallback: Sequence[bool],
) -> list[dict[str, Any]]:
    """The messages the bot got wrong, most confident first (those hurt most): in-scope messages whose top intent
    is wrong, caught by the fallback or not, and out-of-scope messages it answered."""
    rows = []
    for text, g, p, c, f in zip(texts, gold, predicted, confidence, fallback):
        declined = bool(f) or is_out_of_scope(p)
        wrong = not declined if is_out_of_scope(g) else g != p
        if wrong:
            rows.append({"text": text, "gold": g, "predicted": p, "confidence": float(c), "fallback": bool(f)})
    return sorted(rows, key=lambda row: -row["confidence"])


def format_summary(report: dict[str, Any]) -> list[str]:
    """The headline figures as lines for the terminal."""

    def pct(value: float | None) -> str:
        return "n/a" if value is None else f"{100 * value:.1f}%"

    figures = [
        ("Accuracy (top intent)", pct(report["accuracy"])),
        ("Accuracy, fallbacks counted wrong", pct(report["accuracy_with_fallback_as_wrong"])),
        (f"Fallback rate (threshold {report['threshold']:.3f})", pct(report["fallback_rate"])),
        ("Accuracy of the answers given", pct(report["answered_accuracy"])),
        ("Macro F1", "n/a" if report["macro_f1"] is None else f"{report['macro_f1']:.3f}"),
        (
            "Right answers lost to fallback",
            f"{report['right_lost_to_fallback']} of {report['right_answers']} ({pct(report['share_of_right_lost'])})",
        ),
        (
            "Wrong answers caught by fallback",
            f"{report['wrong_caught_by_fallback']} of {report['wrong_answers']} "
            f"({pct(report['share_of_wrong_caught'])})",
        ),
    ]
    oos = report["out_of_scope"]
    if oos["n"]:
        figures.append(("Out-of-scope messages declined", f"{oos['declined']} of {oos['n']} ({pct(oos['recall'])})"))
    width = max(len(name) for name, _ in figures) + 1
    lines = [f"Messages: {report['n']} ({report['n_in_scope']} in scope, {oos['n']} out of scope)"]
    lines += [f"{name + ':':<{width}}  {value}" for name, value in figures]
    unknown = report["unknown_labels"]
    if unknown["names"]:
        shown = ", ".join(unknown["names"][:10]) + (" ..." if len(unknown["names"]) > 10 else "")
        lines.append(
            f"Labels the model does not know: {len(unknown['names'])} ({unknown['rows']} messages, always wrong): "
            f"{shown}; accuracy on the known ones {pct(report['accuracy_on_known_labels'])}"
        )
    return lines


def format_per_intent(report: dict[str, Any]) -> list[str]:
    """The per-intent table, worst F1 first: the intents to work on are at the top."""
    rows = sorted(report["per_intent"], key=lambda r: (r["f1"], r["intent"]))
    width = max([len("intent"), *(len(r["intent"]) for r in rows)])
    lines = [f"{'intent':<{width}}  precision  recall     f1  support"]
    lines += [
        f"{r['intent']:<{width}}  {r['precision']:9.3f}  {r['recall']:6.3f}  {r['f1']:5.3f}  {r['support']:7d}"
        for r in rows
    ]
    return lines
