"""`chatbot import-csv`, `chatbot evaluate` and `chatbot cross-validate`: knowing how good the bot is.

The commands only read options, call `csv_import`, `evaluation`, `report_plots` and `crossval`, and print; every
expected failure becomes one `click.ClickException` line. `training.cli` registers them on the `chatbot` group, so
they import their modules when they run: `chatbot --help` must not pay a second for nltk, scikit-learn and torch.
"""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

import click

from training.options import DEFAULT_INTENTS, DEFAULT_MODEL, stemmer_option

BATCH = 1000  # messages per forward pass
PROGRESS_FROM = 5000  # messages; below this a progress bar would only flicker


@click.command("import-csv")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="The intents.json file to write.")
@click.option("--text-column", default="text", show_default=True, help="Column holding the messages.")
@click.option("--label-column", default="label", show_default=True, help="Column holding the intent of each message.")
@click.option(
    "--responses", type=click.Path(dir_okay=False), help='JSON {"tag": ["answer", ...]}; others: a placeholder.'
)
@click.option("--drop-conflicts", is_flag=True, help="Drop texts found under two labels instead of stopping.")
@click.option("--force", is_flag=True, help="Replace --out when it already exists.")
def import_csv(
    file: str,
    out: str,
    text_column: str,
    label_column: str,
    responses: str | None,
    drop_conflicts: bool,
    force: bool,
) -> None:
    """Turn labelled messages in a CSV FILE (with a header line) into an intents.json: one intent per label.

    Intents come in the order their labels first appear; a text repeated under the same label is kept once. The file
    is written only when everything checks out, and atomically, so a failed run changes nothing.
    """
    from training.csv_import import CsvImportError, build_intents, load_responses, read_rows, write_intents_file

    target = Path(out)
    if target.exists() and not force:
        raise click.ClickException(f"{target} exists; pass --force to replace it")
    try:
        answers = load_responses(responses) if responses else None
        result = build_intents(read_rows(file, text_column, label_column), file, answers, drop_conflicts)
        write_intents_file(result.document, target)
    except CsvImportError as exc:
        raise click.ClickException(str(exc)) from None
    for warning in result.warnings:
        click.echo(f"warning: {warning}", err=True)
    dropped = f"; {result.duplicates_dropped} repeated text(s) dropped" if result.duplicates_dropped else ""
    if result.conflicts_dropped:
        dropped += f"; {result.conflicts_dropped} row(s) with a text under two labels dropped"
    click.echo(f"Wrote {target}: {result.intents} intents, {result.patterns} patterns from {result.rows} rows{dropped}")
    if result.placeholder_tags:
        click.echo(
            f"{len(result.placeholder_tags)} intent(s) have a placeholder response: edit them in {target}"
            + ("" if responses else " or pass --responses")
        )


@click.command()
@click.argument("data", type=click.Path(dir_okay=False))
@click.option("--model", default=DEFAULT_MODEL, show_default=True, help="Checkpoint to evaluate.")
@click.option("--text-column", default="text", show_default=True, help="Column holding the messages (CSV DATA).")
@click.option("--label-column", default="label", show_default=True, help="Column holding the gold intent (CSV DATA).")
@click.option("--report-dir", type=click.Path(file_okay=False), help="Write report.json, plots and errors.csv here.")
@click.option("--threshold", type=click.FloatRange(0, 1), help="Fallback below this confidence  [default: stored].")
def evaluate(
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
    from training.cli import load_classifier
    from training.evaluation import error_rows, evaluate_predictions, format_per_intent, format_summary

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
        written = _write_report(Path(report_dir), report, errors, gold, predicted, confidence)
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
        from training.intents import IntentsError, load_intents

        try:
            intents = load_intents(data)
        except IntentsError as exc:
            raise click.ClickException(str(exc)) from None
        return *intents.examples(), intents.sha256
    from training.csv_import import CsvImportError, check_rows, read_rows

    try:
        rows = read_rows(data, text_column, label_column)
        check_rows(rows, data, require_label=False)
    except CsvImportError as exc:
        raise click.ClickException(str(exc)) from None
    if not rows:
        raise click.ClickException(f"{data}: no rows under the header")
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


def _write_report(
    folder: Path,
    report: dict,
    errors: list[dict],
    gold: list[str],
    predicted: list[str],
    confidence: list[float],
) -> list[Path]:
    from training.evaluation import is_out_of_scope
    from training.plots import PlotError
    from training.report_plots import plot_confidence_histogram, plot_confusion

    try:
        folder.mkdir(parents=True, exist_ok=True)
        report_path = folder / "report.json"
        report_path.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        errors_path = folder / "errors.csv"
        with errors_path.open("w", encoding="utf-8", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=["text", "gold", "predicted", "confidence", "fallback"])
            writer.writeheader()
            writer.writerows({**row, "confidence": f"{row['confidence']:.6f}"} for row in errors)
        inside = [i for i, g in enumerate(gold) if not is_out_of_scope(g)]
        outside = [confidence[i] for i, g in enumerate(gold) if is_out_of_scope(g)]
        confusion = plot_confusion(
            [gold[i] for i in inside], [predicted[i] for i in inside], folder / "confusion_matrix.png"
        )
        histogram = plot_confidence_histogram(
            [confidence[i] for i in inside],
            [gold[i] == predicted[i] for i in inside],
            report["threshold"],
            folder / "confidence_histogram.png",
            outside,
        )
    except OSError as exc:
        raise click.ClickException(f"cannot write the report to {folder}: {exc.strerror or exc}") from None
    except PlotError as exc:
        raise click.ClickException(str(exc)) from None
    return [report_path, confusion, histogram, errors_path]


@click.command("cross-validate")
@click.option("--intents", "intents_path", default=DEFAULT_INTENTS, show_default=True, help="Knowledge file to test.")
@click.option("--folds", type=click.IntRange(min=2), default=5, show_default=True, help="Number of folds.")
@click.option("--seed", type=int, default=0, show_default=True, help="Shuffles the folds and seeds training.")
@stemmer_option()
def cross_validate(intents_path: str, folds: int, seed: int, stemmer: str) -> None:
    """Estimate accuracy on unseen messages: train with `chatbot train`'s defaults on all folds but one, score the
    held-out one, FOLDS times. Writes no model.

    Intents with fewer patterns than folds are trained on in every fold and never scored.
    """
    from training.crossval import CrossValidationError, FoldResult
    from training.crossval import cross_validate as run_cross_validation
    from training.intents import IntentsError, load_intents

    try:
        intents = load_intents(intents_path)
    except IntentsError as exc:
        raise click.ClickException(str(exc)) from None
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

    try:
        result = run_cross_validation(intents, folds=folds, seed=seed, on_fold=report, stemmer=stemmer)
    except CrossValidationError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(
        f"Accuracy {100 * result.mean_accuracy:.1f}% ± {100 * result.std_accuracy:.1f}% over {folds} folds; "
        f"mean training time {result.mean_seconds:.1f}s"
    )
