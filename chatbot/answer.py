"""`chatbot predict` and `chatbot chat`: answers from a trained checkpoint, as JSON lines or a conversation."""

from __future__ import annotations

import json
import sys

import click

from chatbot.options import model_option, threshold_option

QUIT_WORDS = {"quit", "exit", "bye!", ":q"}
RESET_COMMAND = "/reset"


def load_classifier(model: str):
    """The classifier of the checkpoint at `model` (a CheckpointError is the one line the command prints)."""
    from training.classifier import IntentClassifier

    return IntentClassifier.from_checkpoint(model)


@click.command()
@model_option()
@threshold_option()
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


@click.command()
@model_option()
@threshold_option()
@click.option("--verbose", "-v", is_flag=True, help="Show the intent and confidence under each answer.")
def chat(model: str, threshold: float | None, verbose: bool) -> None:
    """Talk to the bot in the terminal; `quit`, Ctrl-D or Ctrl-C ends the conversation, `/reset` starts a new one.

    Follow-up questions work as in the chat page: the contexts an answer sets steer the next messages.
    """
    classifier = load_classifier(model)
    enable_line_editing(sys.stdin)
    click.echo(f"Chatbot ready ({len(classifier.tags)} intents). Type 'quit' to leave, '/reset' to start over.")
    active: dict[str, int | None] = {}
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
        if message.strip().lower() == RESET_COMMAND:
            active = {}
            click.echo("(new conversation: no context)")
            continue
        turn = classifier.respond(message, active, threshold=threshold)
        answer, active = turn.prediction, turn.active
        click.echo(f"bot> {shown(answer.response)}")
        if verbose:
            note = " (fallback)" if answer.fallback else ""
            if turn.filtered:
                note += f"; not in context: {', '.join(map(shown, turn.filtered))}"
            if active:
                note += f"; context: {', '.join(map(shown, sorted(active)))}"
            click.echo(f"     [{shown(answer.intent)} {answer.confidence:.2f}{note}]")
    click.echo("Bye!")
