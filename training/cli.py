"""The `chatbot` command: train, predict, chat, and the house-price demo (serve and evaluation live beside it)."""

from __future__ import annotations

import json
import math
import sys

import click

from training.options import DEFAULT_INTENTS, DEFAULT_MODEL, stemmer_option

QUIT_WORDS = {"quit", "exit", "bye!", ":q"}


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="chatbot", prog_name="chatbot")
def main() -> None:
    """Intent-classification chatbot: train it from intents.json, then ask it things."""


def load_classifier(model: str):
    """The classifier, or one readable error line: what every answering command starts with."""
    from training.checkpoint import CheckpointError
    from training.classifier import IntentClassifier

    try:
        return IntentClassifier.from_checkpoint(model)
    except CheckpointError as exc:
        raise click.ClickException(str(exc)) from None


@main.command()
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
    strict,
    force,
    if_needed,
) -> None:
    """Train on intents.json and write one self-contained checkpoint.

    The file is read leniently: what has one clear meaning is repaired and reported (`--strict` refuses instead).
    A failed or interrupted run leaves the previous checkpoint exactly as it was.
    """
    from training.train_command import run_train

    run_train(
        intents_path=intents_path,
        model_path=model_path,
        config_options={
            "epochs": epochs,
            "batch_size": batch_size,
            "lr": lr,
            "seed": seed,
            "val_fraction": val_fraction,
        },
        model_options={"members": members},
        plot=plot,
        if_needed=if_needed,
        stemmer=stemmer,
        strict=strict,
        force=force,
    )


@main.command()
@click.option("--model", default=DEFAULT_MODEL, show_default=True, help="Checkpoint to answer from.")
@click.option("--threshold", type=click.FloatRange(0, 1), help="Fallback below this confidence  [default: stored].")
@click.argument("texts", nargs=-1)
def predict(model: str, threshold: float | None, texts: tuple[str, ...]) -> None:
    """Print one JSON answer per message: the TEXT arguments, or one message per line of standard input."""
    classifier = load_classifier(model)
    batches = [list(texts)] if texts else _line_batches(sys.stdin, 1000)
    for batch in batches:
        for prediction in classifier.predict_batch(batch, threshold=threshold):
            click.echo(json.dumps(prediction.to_dict(), ensure_ascii=False))


def _line_batches(stream, size: int):
    batch: list[str] = []
    for line in stream:
        line = line.rstrip("\r\n")
        if line.strip():
            batch.append(line)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


# Characters a terminal acts on instead of showing: C0 and C1 controls (escape sequences can recolour, move the
# cursor, clear the screen, set the window title) and the bidirectional overrides and isolates that reorder a line.
# Newline and tab stay: an answer may have several lines.
_TERMINAL_CONTROLS = (
    range(0x00, 0x09),
    range(0x0B, 0x20),
    range(0x7F, 0xA0),
    range(0x202A, 0x202F),
    range(0x2066, 0x206A),
)
_ESCAPED_CONTROLS = {c: chr(c).encode("unicode_escape").decode("ascii") for span in _TERMINAL_CONTROLS for c in span}


def shown(text: str) -> str:
    """`text` as a terminal may print it: an intents file's tags and responses are data, never terminal commands."""
    return text.translate(_ESCAPED_CONTROLS)


def enable_line_editing(stdin) -> bool:
    """Arrow keys, history and Ctrl-R for `input()`: importing readline gives them, where Python has it (not on
    Windows) and the input is a terminal (elsewhere some readline builds write a terminal set-up code on import)."""
    if not stdin.isatty():
        return False
    try:
        import readline  # noqa: F401
    except ImportError:
        return False
    return True


@main.command()
@click.option("--model", default=DEFAULT_MODEL, show_default=True, help="Checkpoint to answer from.")
@click.option("--threshold", type=click.FloatRange(0, 1), help="Fallback below this confidence  [default: stored].")
@click.option("--verbose", "-v", is_flag=True, help="Show the intent and confidence under each answer.")
def chat(model: str, threshold: float | None, verbose: bool) -> None:
    """Talk to the bot in the terminal; `quit`, Ctrl-D or Ctrl-C ends the conversation."""
    classifier = load_classifier(model)
    enable_line_editing(sys.stdin)
    click.echo(f"Chatbot ready ({len(classifier.tags)} intents). Type 'quit' to leave.")
    while True:
        try:
            message = input("you> ")
        except (EOFError, KeyboardInterrupt):
            click.echo()
            break
        if message.strip().lower() in QUIT_WORDS:
            break
        if not message.strip():
            continue
        answer = classifier.predict(message, threshold=threshold)
        click.echo(f"bot> {shown(answer.response)}")
        if verbose:
            note = " (fallback)" if answer.fallback else ""
            click.echo(f"     [{shown(answer.intent)} {answer.confidence:.2f}{note}]")
    click.echo("Bye!")


@main.command("house-prices")
@click.option("--epochs", type=click.IntRange(min=1), default=100, show_default=True, help="Gradient steps.")
@click.option("--lr", type=click.FloatRange(min=0, min_open=True), default=0.01, show_default=True, help="SGD lr.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed for the initial weights.")
@click.option("--plot", type=click.Path(dir_okay=False), help="Save the loss curve as a PNG.")
def house_prices(epochs: int, lr: float, seed: int, plot: str | None) -> None:
    """Fit price = w * size + b to three houses with nn.Linear(1, 1): the training loop at its simplest."""
    from training.house_prices import QUERY_SIZE, epochs_to_converge, exact_prediction, fit_house_prices

    every = max(1, epochs // 10)

    def report(epoch: int, loss: float) -> None:
        if epoch % every == 0 or epoch == epochs:
            click.echo(f"Epoch [{epoch}/{epochs}], Loss: {loss:.4f}")

    result, model = fit_house_prices(epochs=epochs, lr=lr, seed=seed, on_epoch=report)
    if not math.isfinite(result.prediction):
        raise click.ClickException(f"training diverged (loss {result.losses[-1]}): lr {lr} is too large")
    exact = exact_prediction()
    click.echo(f"Learned: price = {result.weight:.2f} * size + {result.bias:.2f}")
    click.echo(f"Predicted price for a {QUERY_SIZE * 1000:,.0f} sqft house: ${result.prediction:,.2f}k")
    gap = abs(result.prediction - exact)
    if gap <= 1.0:
        click.echo(f"Converged: the least-squares line says ${exact:,.2f}k.")
    else:
        needed = epochs_to_converge(model, lr, epochs)
        more = (
            f"about {needed:,} epochs at lr {lr} get within $1k of it (try --epochs {needed})"
            if needed is not None
            else f"at lr {lr} it takes more than {epochs + 20_000:,} epochs or never settles"
        )
        click.echo(f"Not converged yet: the least-squares line says ${exact:,.2f}k ({gap:,.2f}k away); {more}.")
    if plot:
        from training.plots import PlotError, plot_losses

        try:
            saved = plot_losses(result.losses, plot, "House prices: MSE loss per epoch")
        except PlotError as exc:
            raise click.ClickException(str(exc)) from None
        click.echo(f"Loss curve saved to {saved}")


from training.eval_commands import cross_validate, evaluate, import_csv  # noqa: E402  (commands live beside)
from training.validate_command import validate  # noqa: E402

for _command in (validate, import_csv, evaluate, cross_validate):
    main.add_command(_command)
