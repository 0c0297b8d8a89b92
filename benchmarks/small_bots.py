"""Small bots: few patterns per intent, and messages about everything else (the protocol of ../shared/data/README.md).

    .venv/bin/python benchmarks/small_bots.py [--seeds 0 1 2] [--json benchmarks/small_bots.json]
                                              [--plot benchmarks/small_bots.png]

Four bots built from HWU64 by scenario, 16 intents each, trained on the first 10 rows (file order) of each intent
in train.csv; in scope: the rest of their intents' rows; out of scope: every row of the other bots' intents. Each
bot is trained as `chatbot train` trains a file (`parse_intents` + `train_model` with default settings) and answers
through `IntentClassifier.predict_batch`, fallback included. Figures are summed over the four bots:

- accuracy: in-scope messages whose top intent is right, no rejection; beside TF-IDF + LinearSVC on the same rows;
- answered right / out-of-scope recall: with the bot's own fallback, in-scope messages answered with the right intent,
  and out-of-scope messages that fall back;
- AUROC of the confidence between in- and out-of-scope messages (a message that falls back at any threshold, having
  no known word or landing on the out-of-scope intent, counts as the lowest confidence);
- best answered right at out-of-scope recall >= 85 %, over all thresholds: what a perfect threshold would give.

"with out-of-scope examples" trains each bot again with an `out_of_scope` intent holding the first 10 rows of each
intent of one scenario of each other bot, and tests on the other out-of-scope messages (those scenarios left out).
BANKING77 10-shot: the first 10 rows of each category of train.csv, scored on the whole test.csv.
Shipped bot: the project's intents.json, on benchmarks/shipped_bot_messages.json (hand-written, never trained on):
paraphrases of its intents answered right, and messages about other things that fall back.

A benchmark: it prints and writes figures, it asserts nothing.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import platform
import sys
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from accuracy import linear_svc  # noqa: E402
from sklearn.metrics import roc_auc_score  # noqa: E402

from training.classifier import IntentClassifier  # noqa: E402
from training.intents import OUT_OF_SCOPE_TAG  # noqa: E402
from training.intents_reader import load_intents, parse_intents  # noqa: E402
from training.loop import TrainConfig  # noqa: E402
from training.pipeline import train_model  # noqa: E402

SHARED = ROOT.parent / "shared" / "data"
BOTS = {
    "home": ("iot", "alarm", "audio", "cooking"),
    "office": ("calendar", "email", "lists", "datetime", "transport"),
    "media": ("music", "play", "news", "social", "recommendation", "takeaway"),
    "chat": ("general", "qa", "weather"),
}
SHOTS = 10
RECALL_TARGET = 0.85
GRID = np.round(np.linspace(0.0, 1.0, 101), 2)  # thresholds for the plotted curve


@dataclass(frozen=True)
class Row:
    text: str
    label: str

    @property
    def scenario(self) -> str:
        return self.label.split("_", 1)[0]


@dataclass(frozen=True)
class Task:
    """One bot: what it is trained on, and what it is tested on."""

    name: str
    train: list[Row]
    in_scope: list[Row]
    out_of_scope: list[str]
    oos_patterns: list[str]  # user-written out-of-scope examples, empty in the plain protocol


def read(path: Path, label_column: str) -> list[Row]:
    with path.open(newline="", encoding="utf-8") as handle:
        return [Row(r["text"], r[label_column]) for r in csv.DictReader(handle)]


def first_rows(rows: Iterable[Row], shots: int) -> tuple[list[Row], list[Row]]:
    """(the first `shots` rows of each label in file order, the rest)."""
    seen: dict[str, int] = defaultdict(int)
    head, rest = [], []
    for row in rows:
        seen[row.label] += 1
        (head if seen[row.label] <= shots else rest).append(row)
    return head, rest


def small_bots(train: list[Row], test: list[Row], with_oos_examples: bool = False) -> list[Task]:
    tasks = []
    for name, scenarios in BOTS.items():
        mine = [r for r in train if r.scenario in scenarios]
        head, rest = first_rows(mine, SHOTS)
        others = [r for r in train + test if r.scenario not in scenarios]
        oos_patterns: list[str] = []
        if with_oos_examples:
            # one scenario of each other bot (its first) becomes examples; those scenarios leave the test
            lent = {BOTS[other][0] for other in BOTS if other != name}
            oos_patterns = [r.text for r in first_rows([r for r in train if r.scenario in lent], SHOTS)[0]]
            others = [r for r in others if r.scenario not in lent]
        in_scope = [r for r in test if r.scenario in scenarios] + rest
        tasks.append(Task(name, head, in_scope, [r.text for r in others], oos_patterns))
    return tasks


def document(rows: Sequence[Row], oos_patterns: Sequence[str] = ()) -> dict:
    """The intents.json a bot author would write for these rows."""
    patterns: dict[str, list[str]] = defaultdict(list)
    for row in rows:
        patterns[row.label].append(row.text)
    intents = [{"tag": tag, "patterns": p, "responses": [f"({tag})"]} for tag, p in patterns.items()]
    if oos_patterns:
        intents.append({"tag": OUT_OF_SCOPE_TAG, "patterns": list(oos_patterns), "responses": []})
    return {"intents": intents}


def train_bot(rows: Sequence[Row], seed: int, oos_patterns: Sequence[str] = ()) -> IntentClassifier:
    intents = parse_intents(document(rows, oos_patterns), source="small-bot")
    return IntentClassifier(train_model(intents, TrainConfig(seed=seed)).checkpoint, seed=seed)


@dataclass
class Scores:
    """Per-message results of one bot; summed over bots by concatenation."""

    in_correct: np.ndarray  # top intent right
    in_score: np.ndarray  # confidence; -1 where the bot falls back at any threshold
    in_fallback: np.ndarray  # with the bot's own threshold
    oos_score: np.ndarray
    oos_fallback: np.ndarray
    threshold: float

    @staticmethod
    def join(parts: Sequence[Scores]) -> Scores:
        return Scores(
            *(np.concatenate([getattr(p, f) for p in parts]) for f in Scores.__dataclass_fields__ if f != "threshold"),
            threshold=float("nan"),
        )


def score_bot(classifier: IntentClassifier, task: Task) -> Scores:
    def run(texts: list[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        answers = classifier.predict_batch(texts)
        forced = np.array([a.fallback for a in classifier.predict_batch(texts, threshold=0.0)])
        score = np.where(forced, -1.0, [a.confidence for a in answers])
        return np.array([a.intent for a in answers]), score, np.array([a.fallback for a in answers])

    intents, in_score, in_fallback = run([r.text for r in task.in_scope])
    _, oos_score, oos_fallback = run(task.out_of_scope)
    in_correct = intents == np.array([r.label for r in task.in_scope])
    return Scores(in_correct, in_score, in_fallback, oos_score, oos_fallback, classifier.threshold)


def figures(s: Scores) -> dict[str, float]:
    answered_right = s.in_correct & ~s.in_fallback
    labels = np.r_[np.ones(len(s.in_score)), np.zeros(len(s.oos_score))]
    return {
        "accuracy": float(s.in_correct.mean()),
        "answered_right": float(answered_right.mean()),
        "oos_recall": float(s.oos_fallback.mean()),
        "auroc": float(roc_auc_score(labels, np.r_[s.in_score, s.oos_score])),
        "best_answered_right_at_recall": best_answered_right(s, RECALL_TARGET),
    }


def best_answered_right(s: Scores, recall: float) -> float:
    """Answered-right share at the lowest threshold that makes `recall` of out-of-scope messages fall back."""
    if not len(s.oos_score):  # nothing out of scope to catch: no threshold is defined by it
        return float("nan")
    ordered = np.sort(s.oos_score)
    k = math.ceil(recall * len(ordered))
    threshold = np.nextafter(ordered[k - 1], np.inf)  # the k lowest scores fall below it
    return float((s.in_correct & (s.in_score >= threshold)).mean())


def curve(s: Scores) -> tuple[list[float], list[float]]:
    """(out-of-scope recall, answered right) at each threshold of GRID."""
    recall = [float((s.oos_score < t).mean()) for t in GRID]
    right = [float((s.in_correct & (s.in_score >= t)).mean()) for t in GRID]
    return recall, right


def banking_10shot(seed: int) -> dict[str, float]:
    data = SHARED / "banking77"
    train, test = read(data / "train.csv", "category"), read(data / "test.csv", "category")
    head, _ = first_rows(train, SHOTS)
    classifier = train_bot(head, seed)
    answers = classifier.predict_batch([r.text for r in test])
    ours = float(np.mean([a.intent == r.label for a, r in zip(answers, test)]))
    svc, _ = linear_svc(
        [r.text for r in head], [r.label for r in head], [r.text for r in test], [r.label for r in test]
    )
    return {"accuracy": ours, "linear_svc": svc, "patterns": len(head)}


def shipped_bot(seed: int) -> dict[str, float]:
    messages = json.loads((ROOT / "benchmarks" / "shipped_bot_messages.json").read_text(encoding="utf-8"))
    checkpoint = train_model(load_intents(ROOT / "intents.json"), TrainConfig(seed=seed)).checkpoint
    classifier = IntentClassifier(checkpoint, seed=seed)
    paraphrases = classifier.predict_batch([t for t, _ in messages["paraphrases"]])
    elsewhere = classifier.predict_batch(messages["out_of_scope"])
    right = [a.intent == tag and not a.fallback for a, (_, tag) in zip(paraphrases, messages["paraphrases"])]
    return {
        "paraphrases": len(paraphrases),
        "answered_right": float(np.mean(right)),
        "paraphrase_accuracy": float(
            np.mean([a.intent == t for a, (_, t) in zip(paraphrases, messages["paraphrases"])])
        ),
        "out_of_scope": len(elsewhere),
        "oos_recall": float(np.mean([a.fallback for a in elsewhere])),
        "threshold": classifier.threshold,
    }


def run_bots(tasks: list[Task], seed: int) -> tuple[dict[str, dict], Scores]:
    per_bot, parts = {}, []
    for task in tasks:
        scores = score_bot(train_bot(task.train, seed, task.oos_patterns), task)
        svc, _ = linear_svc(
            [r.text for r in task.train],
            [r.label for r in task.train],
            [r.text for r in task.in_scope],
            [r.label for r in task.in_scope],
        )
        per_bot[task.name] = figures(scores) | {"linear_svc": svc, "threshold": scores.threshold}
        parts.append(scores)
    summed = Scores.join(parts)
    per_bot["summed"] = figures(summed) | {
        "linear_svc": float(
            np.mean(np.concatenate([[v["linear_svc"]] * len(t.in_scope) for v, t in zip(per_bot.values(), tasks)]))
        )
    }
    return per_bot, summed


FIGURES = ("accuracy", "linear_svc", "answered_right", "oos_recall", "auroc", "best_answered_right_at_recall")
HEADERS = ("accuracy", "LinearSVC", "answered right", "OOS recall", "AUROC", "best right @85%")


def table(title: str, results: dict[str, dict]) -> str:
    lines = [title, f"{'bot':<8}" + "".join(f"{h:>16}" for h in HEADERS)]
    for bot, values in results.items():
        cells = [f"{100 * values[f]:.1f} %" if f != "auroc" else f"{values[f]:.3f}" for f in FIGURES]
        lines.append(f"{bot:<8}" + "".join(f"{c:>16}" for c in cells))
    return "\n".join(lines)


def mean_spread(runs: list[dict]) -> dict:
    """{figure: [mean, std]} over seeds, for nested dicts of floats."""
    out = {}
    for key, value in runs[0].items():
        if isinstance(value, dict):
            out[key] = mean_spread([r[key] for r in runs])
        elif isinstance(value, (int, float)):
            values = np.array([r[key] for r in runs], dtype=float)
            out[key] = [float(values.mean()), float(values.std())]
    return out


def plot(curves: dict[str, tuple[list[float], list[float], tuple[float, float]]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=110)
    for (label, (recall, right, default)), color in zip(curves.items(), ("tab:blue", "tab:orange")):
        ax.plot(np.array(recall) * 100, np.array(right) * 100, "-", color=color, label=f"{label}: over thresholds")
        ax.plot(
            default[0] * 100,
            default[1] * 100,
            "o",
            color=color,
            markersize=9,
            label=f"{label}: the bot's own threshold",
        )
    ax.axvline(RECALL_TARGET * 100, color="grey", linestyle=":", linewidth=1)
    ax.set_xlabel("out-of-scope messages that fall back (%)")
    ax.set_ylabel("in-scope messages answered right (%)")
    ax.set_title("Four HWU64 small bots, 10 patterns per intent (seed 0, summed)")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower left", fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=SHARED / "hwu64", help="folder with HWU64 train.csv and test.csv")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--json", type=Path, default=ROOT / "benchmarks" / "small_bots.json")
    parser.add_argument("--plot", type=Path, default=ROOT / "benchmarks" / "small_bots.png")
    parser.add_argument("--skip-banking", action="store_true", help="leave out BANKING77 10-shot")
    parser.add_argument("--skip-shipped", action="store_true", help="leave out the shipped intents.json")
    args = parser.parse_args(argv)
    train, test = read(args.data / "train.csv", "label"), read(args.data / "test.csv", "label")
    print(f"python {platform.python_version()}, torch {torch.__version__}, {torch.get_num_threads()} thread(s)")
    plain, with_oos = small_bots(train, test), small_bots(train, test, with_oos_examples=True)
    print(
        "bots: "
        + ", ".join(
            f"{t.name} {len(t.train)} patterns / {len(t.in_scope)} in scope / {len(t.out_of_scope)} out of scope"
            for t in plain
        ),
        flush=True,
    )
    runs: dict[str, list] = {"plain": [], "with_oos_examples": [], "banking77_10shot": [], "shipped_bot": []}
    curves = {}
    for seed in args.seeds:
        for key, tasks in (("plain", plain), ("with_oos_examples", with_oos)):
            results, summed = run_bots(tasks, seed)
            runs[key].append(results)
            print(table(f"\n{key.replace('_', ' ')}, seed {seed}", results), flush=True)
            if seed == args.seeds[0]:
                s = results["summed"]
                label = "plain" if key == "plain" else "with out-of-scope examples"
                curves[label] = (*curve(summed), (s["oos_recall"], s["answered_right"]))
        if not args.skip_shipped:
            shipped = shipped_bot(seed)
            runs["shipped_bot"].append(shipped)
            print(
                f"\nshipped intents.json, seed {seed}: {shipped['paraphrases']} paraphrases answered right "
                f"{100 * shipped['answered_right']:.1f} % (top intent right "
                f"{100 * shipped['paraphrase_accuracy']:.1f} %), {shipped['out_of_scope']} out-of-scope messages "
                f"fall back {100 * shipped['oos_recall']:.1f} %",
                flush=True,
            )
        if not args.skip_banking:
            banking = banking_10shot(seed)
            runs["banking77_10shot"].append(banking)
            print(
                f"\nBANKING77 10-shot, seed {seed}: {100 * banking['accuracy']:.2f} % "
                f"(LinearSVC {100 * banking['linear_svc']:.2f} %)",
                flush=True,
            )
    summary = {key: mean_spread(value) for key, value in runs.items() if value}
    print(f"\nmean ± std over seeds {args.seeds}:")
    for key, result in summary.items():
        rows = result.get("summed", result)
        print(
            f"{key:<18}"
            + "  ".join(
                f"{f} {100 * m:.1f}±{100 * sd:.1f}" if f != "auroc" else f"{f} {m:.3f}±{sd:.3f}"
                for f, (m, sd) in rows.items()
                if f not in ("patterns", "paraphrases", "out_of_scope")
            )
        )
    args.json.write_text(json.dumps({"seeds": args.seeds, "runs": runs, "mean_std": summary}, indent=1) + "\n")
    plot(curves, args.plot)
    print(f"\nwrote {args.json} and {args.plot}")


if __name__ == "__main__":
    main()
