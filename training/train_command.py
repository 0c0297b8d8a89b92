"""What `chatbot train` does around `train_model`: validation messages, progress, saving, the summary."""

from __future__ import annotations

import os
import signal
import stat
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import click

from training.checkpoint import (
    FORMAT_VERSION,
    CheckpointError,
    is_chatbot_checkpoint,
    load_checkpoint,
    remove_stale_temp_files,
    save_checkpoint,
)
from training.classifier import IntentClassifier
from training.files import NotAFileError, refuse_special
from training.intents import NOTES, IntentsError, IntentsFile, group_findings, load_intents, strict_error
from training.loop import BatchProgress, EpochStats, TrainConfig, TrainingError
from training.pipeline import train_model
from training.text import DEFAULT_STEMMER, StemmerError, stemmer_name

PROGRESS_EVERY = 10.0  # seconds: without a progress bar, a long epoch reports how far it got this often
STOP_SIGNALS = (signal.SIGTERM, signal.SIGHUP)


def format_epoch(phase: str, stats: EpochStats) -> str:
    line = f"{phase:5} epoch {stats.epoch:3d}/{stats.total}  loss {stats.train_loss:.4f}"
    if stats.val_loss is not None:
        line += f"  val_loss {stats.val_loss:.4f}  val_acc {100 * stats.val_accuracy:5.1f}%"
    return line + f"  ({stats.seconds:.2f}s)"


def target_refusal(target: Path, intents_path: str | Path, force: bool) -> str | None:
    """Why `chatbot train` must not replace what is at `target`, or None when it may.

    Saving renames a new file over the path, destroying whatever was there: without --force only a chatbot
    checkpoint (a damaged one included) is replaced. A device, named pipe, socket or folder is never replaced, nor is
    the intents file being trained on, --force or not; --force on a symbolic link replaces the link, not its target.
    """
    try:
        mode = os.lstat(target).st_mode
    except FileNotFoundError:
        return None
    except OSError:
        return None  # an unreadable folder: the write says so, with the old file untouched
    if _same_file(target, intents_path):
        return f"{target} is the intents file being trained on; choose another --model path"
    try:
        refuse_special(target)
    except NotAFileError as exc:
        return f"{exc}; choose another --model path"
    if force:
        return None
    if stat.S_ISLNK(mode):
        return (
            f"{target} is a symbolic link (to {os.readlink(target)}); choose another --model path, "
            "or --force to replace the link itself (the file it points to is left alone)"
        )
    if not is_chatbot_checkpoint(target):
        return f"{target} exists and is not a chatbot checkpoint; choose another --model path, or --force to replace it"
    return None


def _same_file(first: str | Path, second: str | Path) -> bool:
    try:
        return os.path.samefile(first, second)
    except OSError:
        return False


def existing_checkpoint(model_path: Path) -> dict | None:
    """The checkpoint already at `model_path`, or None when there is none or it cannot be used."""
    try:
        return load_checkpoint(model_path)
    except CheckpointError:
        return None


def stemmer_of(checkpoint: dict | None) -> str | None:
    """The stemmer a loaded checkpoint was trained with (`load_checkpoint` checked that it has features)."""
    try:
        return stemmer_name(checkpoint["features"].get("stemmer")) if checkpoint else None
    except StemmerError:
        return None


def retrain_reason(checkpoint: dict | None, intents_sha256: str, stemmer: str | None) -> str | None:
    """Why the checkpoint must be retrained for this intents file and stemmer (None: any), or None if it is current.

    The intents file is compared by the SHA-256 of its bytes, so an edited file is never silently ignored.
    """
    if checkpoint is None:
        return "there is no usable checkpoint"
    if checkpoint.get("format_version") != FORMAT_VERSION:
        return f"it was made by an older version (checkpoint format {checkpoint.get('format_version')})"
    if checkpoint.get("intents_sha256") != intents_sha256:
        return "the intents file has changed since it was trained"
    made_with = stemmer_of(checkpoint)
    if stemmer is not None and made_with != stemmer:
        return f"it was trained with the {made_with} stemmer, not {stemmer}"
    return None


def report_findings(intents: IntentsFile) -> None:
    """The data's summary line, then one stderr line per kind of repair: a 150-intent file never prints 150 lines."""
    click.echo(f"Data: {intents.summary()}")
    for kind, line in group_findings(intents.findings).items():
        click.echo(f"{'note' if kind in NOTES else 'warning'}: {line}", err=True)
    if intents.findings:
        click.echo(f"(`chatbot validate {intents.source}` lists each one with its place)", err=True)


def run_train(
    intents_path: str,
    model_path: str,
    config_options: dict,
    model_options: dict,
    plot: str | None = None,
    if_needed: bool = False,
    stemmer: str | None = None,
    strict: bool = False,
    force: bool = False,
) -> None:
    """`stemmer` None keeps the existing checkpoint's stemmer (so retraining never drops a chosen language)."""
    try:
        intents = load_intents(intents_path)
    except IntentsError as exc:
        raise click.ClickException(str(exc)) from None
    report_findings(intents)
    if strict and (refusal := strict_error(intents)):
        raise click.ClickException(refusal)
    target = Path(model_path)
    if refusal := target_refusal(target, intents_path, force):
        raise click.ClickException(f"{refusal}; nothing was trained")
    report_stale_temp_files(target)
    existing = existing_checkpoint(target)
    if if_needed:
        reason = retrain_reason(existing, intents.sha256, stemmer)
        if reason is None:
            click.echo(f"{target} is up to date with {intents_path}; not retraining.")
            return
        if target.exists():
            click.echo(f"Retraining {target}: {reason}.")
    if stemmer is None:
        stemmer = stemmer_of(existing) or DEFAULT_STEMMER
        if stemmer != DEFAULT_STEMMER:
            click.echo(f"Stemmer: {stemmer}, as in {target} (--stemmer changes it)")
    config = TrainConfig(**{k: v for k, v in config_options.items() if v is not None})
    texts, _ = intents.examples()
    click.echo(f"Training on {len(texts)} patterns, {len(intents.tags)} intents from {intents_path}")
    progress = _Progress()
    try:
        with stop_signals_raise():
            result = train_model(
                intents, config, model_options, on_epoch=progress.update, stemmer=stemmer, on_batch=progress.batch
            )
            IntentClassifier(result.checkpoint, source="the new model")  # refuse to save what could not be loaded
            if refusal := target_refusal(target, intents_path, force):  # something appeared there meanwhile
                raise CheckpointError(refusal)
            save_checkpoint(result.checkpoint, target)
    except KeyboardInterrupt:
        raise click.ClickException(f"interrupted; {target} was not changed") from None
    except Stopped as exc:
        raise SignalExit(f"stopped by {exc.name}; {target} was not changed", exc.signum) from None
    except (TrainingError, CheckpointError) as exc:
        raise click.ClickException(f"{exc}; {target} was not changed") from None
    finally:
        progress.close()
    _summary(result, target)
    if plot:
        from training.plots import PlotError, plot_training

        try:
            saved = plot_training(result.history, plot, f"Training on {intents_path}")
        except PlotError as exc:
            raise click.ClickException(f"{exc} (the model was saved)") from None
        click.echo(f"Training curve saved to {saved}")


def report_stale_temp_files(target: Path) -> None:
    """Remove, and name, the temporary files of trainings killed while saving (SIGKILL leaves no chance to clean)."""
    removed = remove_stale_temp_files(target)
    if removed:
        names = ", ".join(p.name for p in removed)
        click.echo(
            f"Removed {len(removed)} temporary file(s) left by a training killed while saving: {names}", err=True
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


class _Progress:
    """Per-epoch lines (always, flushed, so a piped or killed run shows how far it got) and a tqdm bar on a TTY.

    Inside an epoch the bar advances batch by batch; without a bar, a line says how far a long epoch has got every
    `every` seconds.
    """

    def __init__(self, tty: bool | None = None, every: float = PROGRESS_EVERY) -> None:
        self.tty = sys.stderr.isatty() if tty is None else tty
        self.every = every
        self.bar = None
        self.phase = None
        self.last_line = time.monotonic()

    def batch(self, phase: str, progress: BatchProgress) -> None:
        self._enter(phase)
        if self.tty:
            if self.bar is None:
                self.bar = self._bar(phase, progress.epochs * progress.batches, "batch")
            if self.bar.unit == "batch":
                self.bar.update(1)
        elif progress.batch < progress.batches and time.monotonic() - self.last_line >= self.every:
            self._echo(
                f"{phase:5} epoch {progress.epoch:3d}/{progress.epochs}  batch {progress.batch}/{progress.batches}"
            )

    def update(self, phase: str, stats: EpochStats) -> None:
        self._enter(phase)
        line = format_epoch(phase, stats)
        if self.tty:
            if self.bar is None:
                self.bar = self._bar(phase, stats.total, "epoch")
            if self.bar.unit == "epoch":
                self.bar.update(1)
            self.bar.write(line)
        else:
            self._echo(line)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None

    def _enter(self, phase: str) -> None:
        if phase != self.phase:
            self.close()
            self.phase = phase

    def _bar(self, phase: str, total: int, unit: str):
        from tqdm import tqdm

        return tqdm(desc=phase, total=total, unit=unit, leave=False)

    def _echo(self, line: str) -> None:
        click.echo(line)
        sys.stdout.flush()
        self.last_line = time.monotonic()


def _summary(result, target: Path) -> None:
    ckpt = result.checkpoint
    metrics = ckpt["metrics"]
    fallback = ckpt["fallback"]
    click.echo(f"Validation: {result.validation_note}")
    if "val_accuracy" in metrics:
        which = "Best epoch" if ckpt["train_config"].get("early_stopping") else "After epoch"
        click.echo(
            f"{which} {result.history.best_epoch}: validation accuracy {100 * metrics['val_accuracy']:.1f}%, "
            f"fallback threshold {fallback['threshold']:.3f} "
            f"(answers {100 * (1 - metrics['val_fallback_rate']):.1f}% of held-out messages)"
        )
    elif "cv_accuracy" in metrics:
        click.echo(
            f"Cross-validated accuracy {100 * metrics['cv_accuracy']:.1f}%, fallback threshold "
            f"{fallback['threshold']:.3f} (answers {100 * (1 - metrics['cv_fallback_rate']):.1f}% of held-out patterns)"
        )
    else:
        click.echo(f"Fallback threshold {fallback['threshold']:.3f} (not calibrated: too few patterns held out)")
    if ckpt["refit_on_all_data"]:
        click.echo(f"Retrained on all {ckpt['patterns']} patterns for {result.history.best_epoch} epochs")
    size_mb = target.stat().st_size / 1e6
    click.echo(
        f"Saved {target} ({size_mb:.1f} MB: {len(ckpt['tags'])} intents, "
        f"{len(ckpt['features']['vocabulary'])} features) in {result.seconds:.1f}s"
    )
