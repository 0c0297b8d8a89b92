"""`chatbot evaluate` and `chatbot cross-validate`: how good the bot is, on labelled messages or on its own file."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from chatbot.options import DEFAULT_INTENTS, DEFAULT_MODEL, stemmer_option

BATCH = 1000  # messages per forward pass
PROGRESS_FROM = 5000  # messages; below this a progress bar would only flicker


@click.command("evaluate")
@click.argument("data", type=click.Path(dir_okay=False))
@click.option("--model", default=DEFAULT_MODEL, show_default=True, help="Checkpoint to evaluate.")
@click.option("--text-column", default="text", show_default=True, help="Column holding the messages (CSV DATA).")
@click.option("--label-column", default="label", show_default=True, help="Column holding the gold intent (CSV DATA).")
@click.option("--report-dir", type=click.Path(file_okay=False), help="Write report.json, plots and errors.csv here.")
@click.option("--threshold", type=click.FloatRange(0, 1), help="Fallback below this confidence  [default: stored].")
def evaluate_command(
    data: str,
    model: str,
    text_column: str,
    label_column: str,
    report_dir: str | None,
    threshold: float | None,
) -> None:
    """Score the model on labelled messages: DATA is an intents.json or a CSV file with a header line.

    Rows labelled oos, out_of_scope or nothing are out-of-scope messages: the bot should fall back on them. They
    are scored apart and left out of accuracy.
    """
    from chatbot.answer import load_classifier
    from training.evaluation import error_rows, evaluate_predictions, format_per_intent, format_summary
    from training.report import write_report

    texts, gold, sha256 = _labelled_messages(data, text_column, label_column)
    classifier = load_classifier(model)
    if sha256 and sha256 == classifier.metadata.get("intents_sha256"):
        click.echo(
            f"note: {model} was trained on {data}: these figures show what it memorised, not how it does on new "
            "messages (see chatbot cross-validate)",
            err=True,
        )
    answers = _predict(classifier, texts, threshold)
    predicted = [a.intent for a in answers]
    confidence = [a.confidence for a in answers]
    fallback = [a.fallback for a in answers]
    used = classifier.threshold if threshold is None else threshold
    report = evaluate_predictions(gold, predicted, confidence, fallback, classifier.tags, used)
    report = {"model": model, "data": data} | report
    written = []
    if report_dir:  # before the long table, so that `| head` cannot stop the command before the files exist
        errors = error_rows(texts, gold, predicted, confidence, fallback)
        written = write_report(Path(report_dir), report, errors, gold, predicted, confidence)
    click.echo(f"Evaluated {model} on {data}")
    for line in format_summary(report):
        click.echo(line)
    if report["per_intent"]:
        click.echo("\nPer intent (top intent, fallbacks ignored), worst F1 first:")
        for line in format_per_intent(report):
            click.echo(line)
    if written:
        click.echo(f"\nReport written to {report_dir}: {', '.join(p.name for p in written)}")


def _labelled_messages(data: str, text_column: str, label_column: str) -> tuple[list[str], list[str], str]:
    """(texts, gold labels, sha256 of an intents file or "") from an intents.json (.json) or a CSV file."""
    if Path(data).suffix.lower() == ".json":
        from training.intents_reader import load_intents

        intents = load_intents(data)
        return *intents.examples(), intents.sha256
    from training.csv_import import CsvImportError, check_rows, read_rows

    rows = read_rows(data, text_column, label_column)
    check_rows(rows, data, require_label=False)
    if not rows:
        raise CsvImportError(f"{data}: no rows under the header")
    return [row.text for row in rows], [row.label for row in rows], ""


def _predict(classifier, texts: list[str], threshold: float | None) -> list:
    """Answers in batches, with a progress bar when a person is watching a large run."""
    bar = None
    if len(texts) >= PROGRESS_FROM and sys.stderr.isatty():
        from tqdm import tqdm

        bar = tqdm(total=len(texts), unit="msg", desc="predicting", leave=False)
    answers = []
    for start in range(0, len(texts), BATCH):
        batch = texts[start : start + BATCH]
        answers += classifier.predict_batch(batch, threshold=threshold)
        if bar is not None:
            bar.update(len(batch))
    if bar is not None:
        bar.close()
    return answers


@click.command("cross-validate")
@click.option("--intents", "intents_path", default=DEFAULT_INTENTS, show_default=True, help="Knowledge file to test.")
@click.option("--folds", type=click.IntRange(min=2), default=5, show_default=True, help="Number of folds.")
@click.option("--seed", type=int, default=0, show_default=True, help="Shuffles the folds and seeds training.")
@stemmer_option()
def cross_validate_command(intents_path: str, folds: int, seed: int, stemmer: str) -> None:
    """Estimate accuracy on unseen messages: train with `chatbot train`'s defaults on all folds but one, score the
    held-out one, FOLDS times. Writes no model.

    Intents with fewer patterns than folds are trained on in every fold and never scored.
    """
    from training.crossval import FoldResult
    from training.crossval import cross_validate as run_cross_validation
    from training.intents_reader import load_intents

    intents = load_intents(intents_path)
    texts, _ = intents.examples()
    click.echo(f"Cross-validating on {len(texts)} patterns, {len(intents.tags)} intents, {folds} folds")
    rare = [intent.tag for intent in intents.trainable if len(intent.patterns) < folds]
    if rare and len(rare) < len(intents.tags):  # when none can be scored, the error below says so
        click.echo(
            f"warning: {len(rare)} intent(s) have fewer than {folds} patterns; they are trained on in every fold "
            f"and never scored: {', '.join(rare)}",
            err=True,
        )

    def report(fold: FoldResult) -> None:
        click.echo(
            f"fold {fold.fold}/{folds}: accuracy {100 * fold.accuracy:5.1f}%  "
            f"fallbacks counted wrong {100 * fold.accuracy_with_fallback_as_wrong:5.1f}%  "
            f"({fold.test_patterns} scored, trained on {fold.train_patterns} in {fold.seconds:.1f}s)"
        )
        sys.stdout.flush()

    result = run_cross_validation(intents, folds=folds, seed=seed, on_fold=report, stemmer=stemmer)
    click.echo(
        f"Accuracy {100 * result.mean_accuracy:.1f}% ± {100 * result.std_accuracy:.1f}% over {folds} folds; "
        f"mean training time {result.mean_seconds:.1f}s"
    )
