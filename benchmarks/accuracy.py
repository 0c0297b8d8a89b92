"""What `chatbot train` gives on BANKING77, next to the TF-IDF + LinearSVC reference, trained in the same run.

    .venv/bin/python benchmarks/accuracy.py [--data ../shared/data/banking77] [--seed 0]

Our model: train.csv imported as intents exactly as `chatbot import-csv --label-column category` does, trained with
`chatbot train`'s defaults (`train_model` with a default `TrainConfig`), scored on test.csv through
`IntentClassifier.predict_batch`. Reference: TF-IDF of word 1-2 grams (sublinear tf, token pattern \\b\\w+\\b) and
LinearSVC(C=1) on the same rows. Training times are wall-clock fits; ours includes featurizing and choosing the
fallback threshold, the reference includes TF-IDF. A benchmark: it prints, it asserts nothing.
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from sklearn.feature_extraction.text import TfidfVectorizer  # noqa: E402
from sklearn.svm import LinearSVC  # noqa: E402

from training.classifier import IntentClassifier  # noqa: E402
from training.csv_import import build_intents, check_rows, read_rows  # noqa: E402
from training.intents_reader import parse_intents  # noqa: E402
from training.loop import TrainConfig  # noqa: E402
from training.pipeline import train_model  # noqa: E402

DEFAULT_DATA = ROOT.parent / "shared" / "data" / "banking77"


def ours(train_csv: Path, test_texts: list[str], test_labels: list[str], seed: int) -> tuple[float, float, dict]:
    """(test accuracy, training seconds, checkpoint) of the chatbot's own pipeline."""
    imported = build_intents(read_rows(train_csv, "text", "category"), train_csv)
    intents = parse_intents(imported.document, source=str(train_csv))
    result = train_model(intents, TrainConfig(seed=seed))
    answers = IntentClassifier(result.checkpoint).predict_batch(test_texts)
    accuracy = float(np.mean([a.intent == gold for a, gold in zip(answers, test_labels)]))
    return accuracy, result.seconds, result.checkpoint


def linear_svc(train_texts: list[str], train_labels: list[str], test_texts: list[str], test_labels: list[str]):
    """(test accuracy, training seconds) of the reference."""
    started = time.perf_counter()
    vectorizer = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, token_pattern=r"\b\w+\b")
    svc = LinearSVC(C=1.0).fit(vectorizer.fit_transform(train_texts), train_labels)
    seconds = time.perf_counter() - started
    accuracy = float(np.mean(svc.predict(vectorizer.transform(test_texts)) == np.asarray(test_labels)))
    return accuracy, seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="folder with train.csv and test.csv")
    parser.add_argument("--seed", type=int, default=0, help="training seed of our model")
    args = parser.parse_args()
    train_csv, test_csv = args.data / "train.csv", args.data / "test.csv"
    train_rows, test_rows = read_rows(train_csv, "text", "category"), read_rows(test_csv, "text", "category")
    check_rows(test_rows, test_csv)
    test_texts, test_labels = [r.text for r in test_rows], [r.label for r in test_rows]
    print(f"BANKING77: {len(train_rows)} training rows, {len(test_rows)} test rows", flush=True)
    print(f"python {platform.python_version()}, torch {torch.__version__}, {torch.get_num_threads()} torch thread(s)")

    accuracy, seconds, checkpoint = ours(train_csv, test_texts, test_labels, args.seed)
    config = checkpoint["train_config"]
    print(
        f"chatbot train (defaults):  test accuracy {100 * accuracy:.2f}%  training {seconds:.2f}s  "
        f"({checkpoint['model_config']['members']} members, {config['epochs_run']} epochs run, "
        f"best {config['best_epoch']}, "
        f"{len(checkpoint['features']['vocabulary'])} features)",
        flush=True,
    )
    svc_accuracy, svc_seconds = linear_svc(
        [r.text for r in train_rows], [r.label for r in train_rows], test_texts, test_labels
    )
    print(f"TF-IDF 1-2 grams + LinearSVC C=1:  test accuracy {100 * svc_accuracy:.2f}%  training {svc_seconds:.2f}s")
    print(
        f"difference: {100 * (accuracy - svc_accuracy):+.2f} points, {seconds / svc_seconds:.1f}x the reference's "
        "training time"
    )


if __name__ == "__main__":
    main()
