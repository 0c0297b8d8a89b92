"""`chatbot publish`, `chatbot rollback` and `chatbot models`: the model store (training/registry.py) from a shell.

The store comes from `--store` or `$CHATBOT_STORE`. Errors are the library's `UserError`s, printed by `chatbot.cli`.
"""

from __future__ import annotations

import click

from training.defaults import DEFAULT_KEEP

STORE_VARIABLE = "CHATBOT_STORE"


def store_option(help: str = "The model store: a folder, shared or mounted.  [default: $CHATBOT_STORE]"):
    return click.option("--store", envvar=STORE_VARIABLE, required=True, type=click.Path(file_okay=False), help=help)


def by_option(who: str):
    return click.option("--by", help=f"Who {who}, as the history records it.  [default: $USER@hostname]")


@click.command("publish")
@click.argument("model", type=click.Path(dir_okay=False))
@store_option("The model store to publish to; created when missing.  [default: $CHATBOT_STORE]")
@by_option("publishes")
@click.option(
    "--keep",
    type=click.IntRange(min=0),
    default=DEFAULT_KEEP,
    show_default=True,
    help="How many of the most recently published checkpoints stay in the store, besides the current and the "
    "previous one (the history keeps every entry).",
)
def publish_command(model: str, store: str, by: str | None, keep: int) -> None:
    """Make MODEL the store's current model, once it loads and passes its self-test.

    The checkpoint is stored under the SHA-256 of its bytes and named by a new current.json; the history keeps every
    earlier one. Publishing the current model again changes nothing.
    """
    from training.registry import default_publisher, publish

    print_published(publish(model, store, by or default_publisher(), keep), store)


def print_published(result, store: str) -> None:
    """What `chatbot publish` and `chatbot train --publish` print."""
    manifest = result.manifest
    if not result.changed:
        click.echo(f"{manifest.digest} ({manifest.intents} intents) is already current in {store}; nothing changed")
        return
    was = f" (was {result.previous.short})" if result.previous else ""
    click.echo(f"Published {manifest.digest} ({manifest.intents} intents) to {store}: now current{was}")
    if result.pruned:
        names = ", ".join(digest[:12] for digest in result.pruned)
        click.echo(f"Pruned {len(result.pruned)} old checkpoint(s) from the store: {names}")


@click.command("rollback")
@store_option()
@click.option("--to", "to", metavar="DIGEST", help="Roll back to this model (8 or more hex characters of its digest).")
@by_option("rolls back")
def rollback_command(store: str, to: str | None, by: str | None) -> None:
    """Make the previous model current again, or the one given by --to.

    Rolling back again steps further back. Each rollback is a new history entry; to undo one, roll back --to the
    digest it replaced.
    """
    from training.registry import default_publisher, rollback

    manifest = rollback(store, to, by or default_publisher())
    click.echo(
        f"Rolled back {store} to {manifest.digest} ({manifest.intents} intents, published from {manifest.source}); "
        f"{manifest.rollback_of[:12]} is no longer current"
    )


@click.command("models")
@store_option()
def models_command(store: str) -> None:
    """List the store's history, newest first; * marks the current model."""
    from training.registry import list_models

    rows = [("", "DIGEST", "PUBLISHED (UTC)", "BY", "INTENTS", "SOURCE")]
    for listed in list_models(store):
        manifest = listed.manifest
        notes = [f"rollback from {manifest.rollback_of[:12]}"] if manifest.rollback_of else []
        if not listed.stored:
            notes.append("pruned")
        source = manifest.source + (f"  ({'; '.join(notes)})" if notes else "")
        when = manifest.published_at.removesuffix("+00:00").replace("T", " ")
        row = ("*" if listed.current else "", manifest.short, when, manifest.published_by, str(manifest.intents))
        rows.append((*row, source))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    for row in rows:
        cells = [cell.rjust(width) if i == 4 else cell.ljust(width) for i, (cell, width) in enumerate(zip(row, widths))]
        click.echo("  ".join([*cells, row[-1]]).rstrip())
