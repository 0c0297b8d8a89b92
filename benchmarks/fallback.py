"""Fallback rules on BANKING77: what each costs in right answers and gains in caught wrong answers on test.csv.

    .venv/bin/python benchmarks/fallback.py [--data ../shared/data/banking77] [--seeds 0 1 2]

For each seed: train with `chatbot train`'s defaults on train.csv (BANKING77 is large enough that the pipeline does
not refit, so its 10 % validation split stays unseen by the final weights), rebuild that exact validation split, and
choose every rule's threshold on it, never on the test set. A rule is a score per message, higher = surer; the bot
falls back below the threshold, and always on a message with no known feature (as the product does).

Rules: the pipeline's, the top probability times the share of the message's words the model knows (both after the
pipeline's own temperature); the top probability alone; the margin top1 - top2; the top probability after a second
temperature (T fitted on the validation split by log-loss); the negative entropy. Each threshold keeps 90 / 95 / 98 %
of the right validation answers (`training.fallback.choose_threshold`). The AUROC of right vs wrong answers on test
measures how well each score ranks, whatever the threshold.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
from sklearn.metrics import roc_auc_score  # noqa: E402

from training.classifier import IntentClassifier  # noqa: E402
from training.csv_import import build_intents, read_rows  # noqa: E402
from training.fallback import choose_threshold  # noqa: E402
from training.intents_reader import parse_intents  # noqa: E402
from training.loop import TrainConfig  # noqa: E402
from training.pipeline import split_examples, train_model  # noqa: E402

DEFAULT_DATA = ROOT.parent / "shared" / "data" / "banking77"
KEEPS = (0.90, 0.95, 0.98)
PIPELINE = "top probability x known-word share (pipeline)"
TEMPERATURES = np.exp(np.linspace(np.log(0.2), np.log(5.0), 161))


def scores(probs: np.ndarray, temperature: float, shares: np.ndarray) -> dict[str, np.ndarray]:
    """Each rule's confidence score per message, from (messages, intents) probabilities and known-word shares."""
    top2 = np.sort(probs, axis=1)[:, -2:]
    scaled = softmax(np.log(np.clip(probs, 1e-12, None)) / temperature)
    entropy = -(probs * np.log(np.clip(probs, 1e-12, None))).sum(axis=1)
    return {
        PIPELINE: top2[:, 1] * shares,
        "top probability": top2[:, 1],
        "margin top1 - top2": top2[:, 1] - top2[:, 0],
        "top probability after temperature": scaled.max(axis=1),
        "negative entropy": -entropy,
    }


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
    return shifted / shifted.sum(axis=1, keepdims=True)


def fit_temperature(probs: np.ndarray, gold: np.ndarray) -> float:
    """The temperature, applied to the log of the averaged probabilities, with the lowest validation log-loss."""
    log_probs = np.log(np.clip(probs, 1e-12, None))

    def nll(t: float) -> float:
        return float(-np.log(np.clip(softmax(log_probs / t)[np.arange(len(gold)), gold], 1e-12, None)).mean())

    return float(min(TEMPERATURES, key=nll))


def calibration_error(confidence: np.ndarray, right: np.ndarray, bins: int = 15) -> float:
    """Expected calibration error: the gap between confidence and accuracy, averaged over equal-width bins."""
    which = np.minimum((confidence * bins).astype(int), bins - 1)
    return float(
        sum(
            abs(confidence[which == b].mean() - right[which == b].mean()) * (which == b).mean()
            for b in np.unique(which)
        )
    )


def caught_at_cost(right_scores: np.ndarray, wrong_scores: np.ndarray, lost: int) -> int:
    """Wrong answers below the threshold that loses exactly `lost` right answers: a comparison of rankings made on
    the test set, for the report only (no rule may choose its threshold this way)."""
    if lost == 0:
        return int((wrong_scores < right_scores.min()).sum())
    threshold = np.sort(right_scores)[lost - 1]  # everything up to and including the lost-th right answer falls back
    return int((wrong_scores <= threshold).sum())


def run_seed(train_csv: Path, test_texts: list[str], test_labels: list[str], seed: int) -> list[dict]:
    imported = build_intents(read_rows(train_csv, "text", "category"), train_csv)
    intents = parse_intents(imported.document, source=str(train_csv))
    config = TrainConfig(seed=seed)
    result = train_model(intents, config)
    assert not result.checkpoint["refit_on_all_data"], "the validation split must stay unseen by the final model"
    classifier = IntentClassifier(result.checkpoint)
    texts, labels = intents.examples()
    split = split_examples(labels, config.val_fraction, config.seed)
    val_texts, val_labels = [texts[i] for i in split.val], [labels[i] for i in split.val]
    tag_index = {t: i for i, t in enumerate(classifier.tags)}

    def predict(messages: list[str], gold: list[str]):
        probs = classifier.probabilities(messages).numpy().astype(np.float64)
        encoded = [classifier.encoder(m) for m in messages]
        known = np.array([bool(ids) for ids, _ in encoded])
        shares = np.array([share for _, share in encoded])
        right = probs.argmax(axis=1) == np.array([tag_index[g] for g in gold])
        return probs, known, right, shares

    val_probs, _, val_right, val_shares = predict(val_texts, val_labels)
    test_probs, test_known, test_right, test_shares = predict(test_texts, test_labels)
    stored = classifier.threshold
    check = choose_threshold(val_probs.max(axis=1) * val_shares, val_right)
    assert abs(check - stored) < 1e-6, f"rebuilt validation split differs: threshold {check} != stored {stored}"
    temperature = fit_temperature(val_probs, np.array([tag_index[g] for g in val_labels]))
    val_scores, test_scores = scores(val_probs, temperature, val_shares), scores(test_probs, temperature, test_shares)
    pipeline = PIPELINE
    pipeline_lost = {  # right test answers the pipeline's rule loses, per keep: the cost the others are held to
        keep: int(
            (test_right & (test_scores[pipeline] < choose_threshold(val_scores[pipeline], val_right, keep))).sum()
        )
        for keep in KEEPS
    }
    rows = []
    for rule, val_score in val_scores.items():
        test_score = test_scores[rule]
        auroc = roc_auc_score(test_right, test_score)
        right_scores, wrong_scores = test_score[test_right], test_score[~test_right]
        for keep in KEEPS:
            threshold = choose_threshold(val_score, val_right, keep)
            fallback = (test_score < threshold) | ~test_known
            rows.append(
                {
                    "seed": seed,
                    "rule": rule,
                    "temperature": temperature,
                    "keep": keep,
                    "threshold": threshold,
                    "test_accuracy": float(test_right.mean()),
                    "right": int(test_right.sum()),
                    "wrong": int((~test_right).sum()),
                    "right_lost": int((test_right & fallback).sum()),
                    "wrong_caught": int((~test_right & fallback).sum()),
                    "auroc": float(auroc),
                    "caught_at_pipeline_cost": caught_at_cost(right_scores, wrong_scores, pipeline_lost[keep]),
                    "no_known_feature": int((~test_known).sum()),
                    "val_wrong": int((~val_right).sum()),
                    "ece_raw": calibration_error(test_scores["top probability"], test_right),
                    "ece_temperature": calibration_error(test_scores["top probability after temperature"], test_right),
                    "seconds": result.seconds,
                }
            )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="folder with train.csv and test.csv")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="training seeds")
    args = parser.parse_args()
    test_rows = read_rows(args.data / "test.csv", "text", "category")
    test_texts, test_labels = [r.text for r in test_rows], [r.label for r in test_rows]
    rows = []
    for seed in args.seeds:
        seed_rows = run_seed(args.data / "train.csv", test_texts, test_labels, seed)
        first = seed_rows[0]
        print(
            f"seed {seed}: test accuracy {100 * first['test_accuracy']:.2f}% ({first['wrong']} wrong of "
            f"{first['right'] + first['wrong']}), {first['val_wrong']} wrong on the validation split, "
            f"trained in {first['seconds']:.1f}s; fitted temperature {first['temperature']:.2f}; test calibration "
            f"error {first['ece_raw']:.3f} raw, {first['ece_temperature']:.3f} after temperature",
            flush=True,
        )
        rows += seed_rows
    print(f"test messages with no known feature (always fall back): {rows[0]['no_known_feature']}")
    print(
        "\n| seed | rule | keep (val) | threshold | right lost (test) | wrong caught (test) "
        "| wrong caught at the pipeline's right lost (test) | AUROC right vs wrong |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['seed']} | {r['rule']} | {r['keep']:.0%} | {r['threshold']:.3f} | "
            f"{r['right_lost']} of {r['right']} ({r['right_lost'] / r['right']:.1%}) | "
            f"{r['wrong_caught']} of {r['wrong']} ({r['wrong_caught'] / r['wrong']:.1%}) | "
            f"{r['caught_at_pipeline_cost']} | {r['auroc']:.3f} |"
        )
    print(f"\nMean over seeds {args.seeds}:\n")
    print("| rule | keep (val) | right lost (test) | wrong caught (test) | caught at the pipeline's cost | AUROC |")
    print("|---|---|---|---|---|---|")
    for rule in dict.fromkeys(r["rule"] for r in rows):
        for keep in KEEPS:
            group = [r for r in rows if r["rule"] == rule and r["keep"] == keep]
            lost = np.mean([r["right_lost"] / r["right"] for r in group])
            caught = np.mean([r["wrong_caught"] / r["wrong"] for r in group])
            print(
                f"| {rule} | {keep:.0%} | {lost:.1%} ({np.mean([r['right_lost'] for r in group]):.1f}) | "
                f"{caught:.1%} ({np.mean([r['wrong_caught'] for r in group]):.1f}) | "
                f"{np.mean([r['caught_at_pipeline_cost'] for r in group]):.1f} | "
                f"{np.mean([r['auroc'] for r in group]):.3f} |"
            )


if __name__ == "__main__":
    main()
