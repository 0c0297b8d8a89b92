"""`chatbot train`: read and report the intents file, train with progress, save, and say what came out.

The work is `training.train_file`; this module decides what to print, and turns Ctrl-C, SIGTERM and SIGHUP into an
orderly stop that leaves the previous checkpoint as it was.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import click

from chatbot.options import DEFAULT_INTENTS, DEFAULT_MODEL, stemmer_option
from chatbot.progress import TrainingProgress
from training.context import MAX_LIFESPAN
from training.defaults import DEFAULT_STEMMER

STOP_SIGNALS = (signal.SIGTERM, signal.SIGHUP)


@click.command()
@click.option("--intents", "intents_path", default=DEFAULT_INTENTS, show_default=True, help="Knowledge file to learn.")
@click.option("--model", "model_path", default=DEFAULT_MODEL, show_default=True, help="Where to write the checkpoint.")
@click.option("--epochs", type=click.IntRange(min=1), help="Most epochs to train  [default: from the data size].")
@click.option("--batch-size", type=click.IntRange(min=1), default=256, show_default=True, help="Examples per step.")
@click.option("--lr", type=click.FloatRange(min=0, min_open=True), default=6e-3, show_default=True, help="Adam lr.")
@click.option("--seed", type=int, default=0, show_default=True, help="Same seed, data and settings: same model.")
@click.option(
    "--val-fraction",
    type=click.FloatRange(0, 0.5),
    default=0.1,
    show_default=True,
    help="Share of patterns held out to stop early and choose the fallback threshold (0: none).",
)
@click.option("--members", type=click.IntRange(1, 16), default=3, show_default=True, help="Networks averaged.")
@click.option("--plot", type=click.Path(dir_okay=False), help="Save loss and validation accuracy per epoch as a PNG.")
@stemmer_option(keep_existing=True)
@click.option(
    "--context-lifespan",
    type=click.IntRange(1, MAX_LIFESPAN),
    help="User turns that the context names an intent sets stay active, for intents without a context_lifespan of "
    "their own  [default: until replaced].",
)
@click.option("--strict", is_flag=True, help="Refuse a file that needs any repair (see `chatbot validate`).")
@click.option(
    "--force",
    is_flag=True,
    help="Replace whatever file or symbolic link is at --model, even one that is not a chatbot checkpoint.",
)
@click.option(
    "--if-needed",
    is_flag=True,
    help="Skip training when the checkpoint was made by this version from exactly this intents.json (the same "
    "bytes) and, if --stemmer is given, with that stemmer.",
)
@click.option(
    "--publish",
    "store",
    type=click.Path(file_okay=False),
    help="Then publish the checkpoint to this model store, as `chatbot publish` does (with --if-needed, also when "
    "it was up to date).",
)
def train(
    intents_path,
    model_path,
    epochs,
    batch_size,
    lr,
    seed,
    val_fraction,
    members,
    plot,
    stemmer,
    context_lifespan,
    strict,
    force,
    if_needed,
    store,
) -> None:
    """Train on intents.json and write one self-contained checkpoint.

    The file is read leniently: what has one clear meaning is repaired and reported (`--strict` refuses instead).
    A failed or interrupted run leaves the previous checkpoint exactly as it was.
    """
    from training.intents import strict_error
    from training.intents_reader import load_intents
    from training.loop import TrainConfig
    from training.train_file import existing_checkpoint, retrain_reason, stemmer_of, target_refusal

    intents = load_intents(intents_path)
    report_findings(intents)
    if strict and (refusal := strict_error(intents)):
        raise click.ClickException(refusal)
    if context_lifespan is not None:
        intents = intents.with_context_lifespan(context_lifespan)
    target = Path(model_path)
    if refusal := target_refusal(target, intents_path, force):
        raise click.ClickException(f"{refusal}; nothing was trained")
    report_stale_temp_files(target)
    existing = existing_checkpoint(target)
    if if_needed:
        records = [i.record() for i in intents.intents] if context_lifespan is not None else None
        reason = retrain_reason(existing, intents.sha256, stemmer, records)
        if reason is None:
            click.echo(f"{target} is up to date with {intents_path}; not retraining.")
            publish_to(store, target)
            return
        if target.exists():
            click.echo(f"Retraining {target}: {reason}.")
    if stemmer is None:  # retraining never drops a chosen language
        stemmer = stemmer_of(existing) or DEFAULT_STEMMER
        if stemmer != DEFAULT_STEMMER:
            click.echo(f"Stemmer: {stemmer}, as in {target} (--stemmer changes it)")
    options = {"epochs": epochs, "batch_size": batch_size, "lr": lr, "seed": seed, "val_fraction": val_fraction}
    config = TrainConfig(**{k: v for k, v in options.items() if v is not None})
    click.echo(f"Training on {intents.n_patterns} patterns, {len(intents.tags)} intents from {intents_path}")
    trained = train_with_progress(intents, target, config, {"members": members}, stemmer, force)
    print_summary(trained)
    if plot:
        from training.plots import PlotError, plot_training

        try:
            saved = plot_training(trained.result.history, plot, f"Training on {intents_path}")
        except PlotError as exc:
            raise PlotError(f"{exc} (the model was saved)") from None
        click.echo(f"Training curve saved to {saved}")
    publish_to(store, target)


def publish_to(store: str | None, model: Path) -> None:
    """`--publish STORE`: publish the saved checkpoint, saying what `chatbot publish` says."""
    if store is None:
        return
    from chatbot.models import print_published
    from training.registry import default_publisher, publish

    print_published(publish(model, store, default_publisher()), store)


def train_with_progress(intents, target: Path, config, model_options: dict, stemmer: str, force: bool):
    """`train_file` with progress lines, and Ctrl-C, SIGTERM or SIGHUP leaving the old checkpoint as it was."""
    from training.train_file import train_file

    progress = TrainingProgress()
    try:
        with stop_signals_raise():
            return train_file(
                intents,
                target,
                config,
                model_options,
                stemmer=stemmer,
                force=force,
                on_epoch=progress.update,
                on_batch=progress.batch,
            )
    except KeyboardInterrupt:
        raise click.ClickException(f"interrupted; {target} was not changed") from None
    except Stopped as exc:
        raise SignalExit(f"stopped by {exc.name}; {target} was not changed", exc.signum) from None
    finally:
        progress.close()


def report_findings(intents) -> None:
    """The data's summary line, then one stderr line per kind of repair: a 150-intent file never prints 150 lines."""
    from training.intents import NOTES, group_findings

    click.echo(f"Data: {intents.summary()}")
    for kind, line in group_findings(intents.findings).items():
        click.echo(f"{'note' if kind in NOTES else 'warning'}: {line}", err=True)
    if intents.findings:
        click.echo(f"(`chatbot validate {intents.source}` lists each one with its place)", err=True)


def report_stale_temp_files(target: Path) -> None:
    """Remove, and name, the temporary files of trainings killed while saving (SIGKILL leaves no chance to clean)."""
    from training.files import remove_stale_temp_files

    removed = remove_stale_temp_files(target)
    if removed:
        names = ", ".join(p.name for p in removed)
        click.echo(
            f"Removed {len(removed)} temporary file(s) left by a training killed while saving: {names}", err=True
        )


def print_summary(trained) -> None:
    result, made = trained.result, trained.classifier.summary
    metrics, threshold = made.metrics, trained.classifier.threshold
    click.echo(f"Validation: {result.validation_note}")
    if "val_accuracy" in metrics:
        which = "Best epoch" if made.early_stopping else "After epoch"
        click.echo(
            f"{which} {result.history.best_epoch}: validation accuracy {100 * metrics['val_accuracy']:.1f}%, "
            f"fallback threshold {threshold:.3f} "
            f"(answers {100 * (1 - metrics['val_fallback_rate']):.1f}% of held-out messages)"
        )
    elif "cv_accuracy" in metrics:
        click.echo(
            f"Cross-validated accuracy {100 * metrics['cv_accuracy']:.1f}%, fallback threshold "
            f"{threshold:.3f} (answers {100 * (1 - metrics['cv_fallback_rate']):.1f}% of held-out patterns)"
        )
    else:
        click.echo(f"Fallback threshold {threshold:.3f} (not calibrated: too few patterns held out)")
    if made.refit_on_all_data:
        click.echo(f"Retrained on all {made.patterns} patterns for {result.history.best_epoch} epochs")
    classifier = trained.classifier
    click.echo(
        f"Saved {trained.path} ({trained.size_bytes / 1e6:.1f} MB: {len(classifier.tags)} intents, "
        f"{len(classifier.vocabulary)} features) in {result.seconds:.1f}s"
    )


class Stopped(BaseException):
    """SIGTERM or SIGHUP, raised where the main thread is, so that cleanup runs as it does for Ctrl-C."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum
        self.name = signal.Signals(signum).name


class SignalExit(click.ClickException):
    """One error line, and the exit status a shell expects of a process stopped by a signal (128 + its number)."""

    def __init__(self, message: str, signum: int) -> None:
        super().__init__(message)
        self.exit_code = 128 + signum


@contextmanager
def stop_signals_raise() -> Iterator[None]:
    """Turn SIGTERM and SIGHUP into `Stopped` while training and saving: the temporary file is then removed.

    A signal that was ignored (`nohup` ignores SIGHUP) stays ignored; only the default, dying on the spot, changes.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(signum: int, frame: object) -> None:
        raise Stopped(signum)

    previous = {s: signal.getsignal(s) for s in STOP_SIGNALS}
    for signum, handler in previous.items():
        if handler == signal.SIG_DFL:
            signal.signal(signum, stop)
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
