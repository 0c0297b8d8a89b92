"""`chatbot validate`: every repair and note the loader makes in an intents.json, with its place.

Exit status 0 when the file trains; 1 when it cannot be used, or, under `--strict`, when anything needed a repair:
the check a CI job runs on a team's knowledge file.
"""

from __future__ import annotations

import json
import sys

import click

from training.options import DEFAULT_INTENTS


@click.command()
@click.argument("file", default=DEFAULT_INTENTS, type=click.Path())
@click.option("--strict", is_flag=True, help="Fail (exit 1) when anything needed a repair; notes never fail.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document instead of lines.")
def validate(file: str, strict: bool, as_json: bool) -> None:
    """Check FILE (default: intents.json) the way `chatbot train` reads it, and list every finding."""
    from training.intents import IntentsError, load_intents

    try:
        intents = load_intents(file)
    except IntentsError as exc:
        if as_json:
            click.echo(json.dumps({"file": file, "trains": False, "ok": False, "error": str(exc)}, ensure_ascii=False))
            sys.exit(1)
        raise click.ClickException(str(exc)) from None
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
            click.echo(f"{'repair' if finding.is_repair else 'note'}: {finding}  [{finding.kind}]")
        notes = len(intents.findings) - len(repairs)
        verdict = "refused under --strict" if not ok else "the file trains"
        click.echo(f"{len(repairs)} repair(s), {notes} note(s): {verdict}.")
    if not ok:
        sys.exit(1)
