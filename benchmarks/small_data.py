"""Small, real-world-shaped intents files: training time and how many of its own patterns the bot answers right.

    .venv/bin/python benchmarks/small_data.py [--seeds 3]

The file is tests/small_intents.py's: 150 intents of 1-3 patterns (130 English ones sharing words, 10 Bengali,
10 Vietnamese), shuffled by the seed. Trained with `chatbot train`'s defaults. "Self accuracy" counts the top intent,
fallback or not; "fallbacks" are own patterns answered with the fallback response. Also the cost of the Unicode
tokenizer path: one message answered, ASCII against Bengali and Vietnamese. A benchmark: it prints, asserts nothing.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from small_intents import small_intents_document  # noqa: E402

from training.classifier import IntentClassifier  # noqa: E402
from training.intents_reader import parse_intents  # noqa: E402
from training.pipeline import train_model  # noqa: E402

SAMPLES = {
    "ascii": "when is the library open",
    "bengali": "লাইব্রেরি কখন খোলে",
    "vietnamese": "thư viện mở cửa lúc mấy giờ",
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3, help="Files (and training seeds) 0..N-1.")
    args = parser.parse_args()
    classifier = None
    for seed in range(args.seeds):
        intents = parse_intents(small_intents_document(seed), source=f"small-{seed}.json")
        texts, labels = intents.examples()
        started = time.perf_counter()
        result = train_model(intents)
        seconds = time.perf_counter() - started
        classifier = IntentClassifier(result.checkpoint)
        answers = classifier.predict_batch(texts)
        right = sum(a.intent == label for a, label in zip(answers, labels))
        fallbacks = sum(a.fallback for a in answers)
        metrics = result.checkpoint["metrics"]  # cross-validated below 1,000 patterns, else the validation split
        held_out = metrics.get("cv_accuracy", metrics.get("val_accuracy", float("nan")))
        print(
            f"seed {seed}: {len(intents.tags)} intents, {len(texts)} patterns | trained in {seconds:.2f}s "
            f"({len(result.history.epochs)} epochs, best {result.history.best_epoch}) "
            f"| self accuracy {right}/{len(texts)} = {100 * right / len(texts):.1f}% | fallbacks {fallbacks} "
            f"| threshold {classifier.threshold:.3f} | held-out patterns right {100 * held_out:.1f}%"
        )
    for name, message in SAMPLES.items():
        times = []
        for _ in range(5):
            started = time.perf_counter()
            for _ in range(2000):
                classifier.predict(message)
            times.append((time.perf_counter() - started) / 2000 * 1000)
        print(f"single answer, {name:10} message: {statistics.median(times):.3f} ms (median of 5 × 2,000)")


if __name__ == "__main__":
    main()
