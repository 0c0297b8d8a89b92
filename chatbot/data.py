"""`chatbot validate` and `chatbot import-csv`: checking an intents.json, and making one from labelled messages.

`validate` exits 0 when the file trains; 1 when it cannot be used, or, under `--strict`, when anything needed a
repair: the check a CI job runs on a team's knowledge file.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from chatbot.options import DEFAULT_INTENTS


@click.command()
@click.argument("file", default=DEFAULT_INTENTS, type=click.Path())
@click.option("--strict", is_flag=True, help="Fail (exit 1) when anything needed a repair; notes never fail.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document instead of lines.")
def validate(file: str, strict: bool, as_json: bool) -> None:
    """Check FILE (default: intents.json) the way `chatbot train` reads it, and list every finding."""
    from training.intents import IntentsError
    from training.intents_reader import load_intents

    try:
        intents = load_intents(file)
    except IntentsError as exc:
        if as_json:
            click.echo(json.dumps({"file": file, "trains": False, "ok": False, "error": str(exc)}, ensure_ascii=False))
            sys.exit(1)
        raise
    repairs = intents.repairs
    ok = not (strict and repairs)
    if as_json:
        document = {
            "file": file,
            "trains": True,
            "strict": strict,
            "ok": ok,
            "error": None,
            "intents": len(intents.intents),
            "trainable_intents": len(intents.trainable),
            "response_only_intents": [intent.tag for intent in intents.response_only],
            "patterns": intents.n_patterns,
            "counts": intents.finding_counts(),
            "findings": [f.to_dict() | {"repair": f.is_repair} for f in intents.findings],
        }
        click.echo(json.dumps(document, ensure_ascii=False, indent=2))
    else:
        click.echo(intents.summary())
        for finding in intents.findings:
            click.echo(f"{finding.label}: {finding}  [{finding.kind}]")
        notes = len(intents.findings) - len(repairs)
        verdict = "refused under --strict" if not ok else "the file trains"
        click.echo(f"{len(repairs)} repair(s), {notes} note(s): {verdict}.")
    if not ok:
        sys.exit(1)


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
    from training.csv_import import build_intents, load_responses, read_rows, write_intents_file

    target = Path(out)
    if target.exists() and not force:
        raise click.ClickException(f"{target} exists; pass --force to replace it")
    answers = load_responses(responses) if responses else None
    result = build_intents(read_rows(file, text_column, label_column), file, answers, drop_conflicts)
    write_intents_file(result.document, target)
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
