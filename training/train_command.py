"""What `chatbot train` does around `train_model`: validation messages, progress, saving, the summary."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from training.checkpoint import FORMAT_VERSION, CheckpointError, load_checkpoint, save_checkpoint
from training.classifier import IntentClassifier
from training.intents import NOTES, IntentsError, IntentsFile, group_findings, load_intents, strict_error
from training.loop import EpochStats, TrainConfig, TrainingError
from training.pipeline import train_model
from training.text import DEFAULT_STEMMER, StemmerError, stemmer_name


def format_epoch(phase: str, stats: EpochStats) -> str:
    line = f"{phase:5} epoch {stats.epoch:3d}/{stats.total}  loss {stats.train_loss:.4f}"
    if stats.val_loss is not None:
        line += f"  val_loss {stats.val_loss:.4f}  val_acc {100 * stats.val_accuracy:5.1f}%"
    return line + f"  ({stats.seconds:.2f}s)"


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
        result = train_model(intents, config, model_options, on_epoch=progress.update, stemmer=stemmer)
        IntentClassifier(result.checkpoint, source="the new model")  # refuse to save what could not be loaded
        save_checkpoint(result.checkpoint, target)
    except KeyboardInterrupt:
        raise click.ClickException(f"interrupted; {target} was not changed") from None
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


class _Progress:
    """Per-epoch lines (always, flushed, so a piped or killed run shows how far it got) and a tqdm bar on a TTY."""

    def __init__(self) -> None:
        self.bar = None
        self.phase = None

    def update(self, phase: str, stats: EpochStats) -> None:
        if phase != self.phase:
            self.close()
            self.phase = phase
            if sys.stderr.isatty():
                from tqdm import tqdm

                self.bar = tqdm(desc=phase, unit="epoch", leave=False)
        line = format_epoch(phase, stats)
        if self.bar is not None:
            self.bar.update(1)
            self.bar.write(line)
        else:
            click.echo(line)
            sys.stdout.flush()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


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
    else:
        click.echo(f"Fallback threshold {fallback['threshold']:.3f} (not calibrated: no validation split)")
    if ckpt["refit_on_all_data"]:
        click.echo(f"Retrained on all {ckpt['patterns']} patterns for {result.history.best_epoch} epochs")
    size_mb = target.stat().st_size / 1e6
    click.echo(
        f"Saved {target} ({size_mb:.1f} MB: {len(ckpt['tags'])} intents, "
        f"{len(ckpt['features']['vocabulary'])} features) in {result.seconds:.1f}s"
    )
