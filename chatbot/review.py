"""`chatbot review`: read the message log, decide what each misunderstood message meant, write it into intents.json.

One key per decision in a terminal: Enter or `a` accepts the bot's best guess, 1-3 pick another of its guesses, `t`
types any tag (a new one too), `o` marks the message out of scope, `s` skips it, `q` stops. Decisions are written
when the review ends (a backup of the old file beside it); then `chatbot train` as usual.
"""

from __future__ import annotations

import sys

import click

from chatbot.answer import shown
from chatbot.options import DEFAULT_INTENTS

KEYS = "Enter/a: accept · 1-3: pick · t: type a tag · o: out of scope · s: skip · q: quit"


@click.command("review")
@click.argument("logs", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option(
    "--intents", "intents_path", default=DEFAULT_INTENTS, show_default=True, help="The file decisions go into."
)
@click.option("--export", "export_path", type=click.Path(dir_okay=False), help="Write the queue as CSV and stop.")
@click.option("--stats", is_flag=True, help="Print messages, fallback and ambiguous rates per day, and stop.")
@click.option("--plot", type=click.Path(dir_okay=False), help="With --stats: the rates per day as a PNG.")
@click.option("--limit", type=click.IntRange(min=1), help="Review at most this many messages.")
def review(
    logs: tuple[str, ...],
    intents_path: str,
    export_path: str | None,
    stats: bool,
    plot: str | None,
    limit: int | None,
) -> None:
    """Review the messages the bot was unsure about in LOGS (`chatbot serve --message-log`; rotated files are read
    too), and add each to the intent it meant.

    Messages that are already patterns are left out; repeats and near-duplicates are shown once, with a count;
    thumbs-downs come first, then fallbacks, then the closest calls, then the most frequent.
    """
    from training.messages import read_logs
    from training.review import check_writable_back, known_patterns, review_queue

    lines = read_logs(logs)
    if lines.unreadable:
        click.echo(f"warning: {lines.unreadable} line(s) of the log are not records; skipped", err=True)
    if stats:
        print_stats(lines.records, plot)
        return
    from training.intents_reader import load_intents

    queue = review_queue(lines.records, known_patterns(load_intents(intents_path)))[:limit]
    if export_path:
        from training.review import export_csv

        export_csv(queue, export_path)
        click.echo(f"Wrote {len(queue)} message(s) to {export_path} (label = the bot's best guess)")
        return
    if not queue:
        click.echo(f"Nothing to review: every message the bot was unsure about is already in {intents_path}.")
        return
    check_writable_back(intents_path)  # before anyone spends time deciding
    decisions = ask(queue)
    apply(intents_path, decisions)


def ask(queue) -> list[tuple[str, str]]:
    """Ask about each candidate in turn; the (message, tag) decisions made before the end or `q`."""
    decisions: list[tuple[str, str]] = []
    click.echo(f"{len(queue)} message(s) to review. {KEYS}")
    for number, candidate in enumerate(queue, 1):
        times = f" ×{candidate.count}" if candidate.count > 1 else ""
        why = ", ".join(reason for reason, _ in candidate.reasons.most_common())
        click.echo(f"\n[{number}/{len(queue)}] {shown(candidate.text)!r}{times}  ({why})")
        others = [v for v in candidate.variants if v != candidate.text]
        if others:
            click.echo(f"   also: {', '.join(repr(shown(v)) for v in others[:3])}")
        for rank, (tag, confidence) in enumerate(candidate.guesses[:3], 1):
            click.echo(f"   {rank}) {shown(tag)}" + ("" if confidence is None else f"  {confidence:.2f}"))
        decision = decide(candidate)
        if decision is None:
            break
        if decision:
            decisions.append((candidate.text, decision))
            click.echo(f"   -> {shown(decision)}")
    return decisions


def decide(candidate) -> str | None:
    """The tag for this message, "" to skip it, None to stop reviewing."""
    from training.intents import OUT_OF_SCOPE_TAG

    while True:
        click.echo("   > ", nl=False)
        try:
            key = read_key()
        except (KeyboardInterrupt, EOFError, click.Abort):  # Ctrl-C, Ctrl-D: stop, keeping what was decided
            click.echo()
            return None
        click.echo(key if key.isprintable() else "")
        guesses = [tag for tag, _ in candidate.guesses[:3] if tag]
        if key in ("\r", "\n", "a") and guesses:
            return guesses[0]
        if key.isdigit() and 1 <= int(key) <= len(guesses):
            return guesses[int(key) - 1]
        if key == "t":
            try:
                tag = click.prompt("   tag", default="", show_default=False).strip()
            except (KeyboardInterrupt, EOFError, click.Abort):
                click.echo()
                return None
            if tag:
                return tag
            continue
        if key == "o":
            return OUT_OF_SCOPE_TAG
        if key == "s":
            return ""
        if key in ("q", "\x03", "\x04"):
            return None
        click.echo(f"   {KEYS}")


def read_key() -> str:
    """One key press in a terminal; from a pipe or a script, the next character ("q" at its end)."""
    if sys.stdin.isatty():
        return click.getchar()
    return sys.stdin.read(1) or "q"


def apply(intents_path: str, decisions: list[tuple[str, str]]) -> None:
    from training.review import apply_decisions

    if not decisions:
        click.echo(f"\nNo decision made; {intents_path} was not changed.")
        return
    applied = apply_decisions(intents_path, decisions)
    if not applied.added:
        click.echo(f"\nEvery decided message was already a pattern; {intents_path} was not changed.")
        return
    total = sum(len(patterns) for patterns in applied.added.values())
    per_tag = ", ".join(f"{shown(tag)} +{len(patterns)}" for tag, patterns in applied.added.items())
    click.echo(f"\nAdded {total} pattern(s) to {intents_path}: {per_tag}")
    if applied.new_tags:
        click.echo(f"New intent(s) without responses yet (edit them): {', '.join(map(shown, applied.new_tags))}")
    click.echo(f"The old file is kept as {applied.backup}. Next: chatbot train --intents {intents_path}")


def print_stats(records: list[dict], plot: str | None) -> None:
    from training.review import daily_stats, most_misunderstood, plot_fallback_rate

    days = daily_stats(records)
    click.echo(f"{'day':<12}{'messages':>9}{'fallback':>10}{'ambiguous':>11}{'thumbs-down':>13}")
    for day in days:
        click.echo(
            f"{day.day:<12}{day.messages:>9}{100 * day.fallback_rate:>9.1f}%{100 * day.ambiguous_rate:>10.1f}%"
            f"{day.feedback:>13}"
        )
    top = most_misunderstood(records)
    if top:
        click.echo("\nMost often misunderstood:")
        for text, count in top:
            click.echo(f"  {count:>5}  {shown(text)}")
    if plot:
        click.echo(f"\nPlot saved to {plot_fallback_rate(days, plot)}")
