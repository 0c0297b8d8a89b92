"""`chatbot serve`: the chat page and the JSON API on gunicorn. Flask and gunicorn load only when it runs."""

from __future__ import annotations

import click
from click.core import ParameterSource

from app.settings import DEFAULT_THREADS, DEFAULT_WORKERS, DEFAULTS
from chatbot.options import DEFAULT_MODEL


@click.command()
@click.option(
    "--model",
    envvar="CHATBOT_MODEL",
    default=DEFAULT_MODEL,
    show_default=True,
    help="Checkpoint to serve ($CHATBOT_MODEL).",
)
@click.option(
    "--host", default="127.0.0.1", show_default=True, help="Address to listen on; 0.0.0.0 opens it to the network."
)
@click.option(
    "--port", type=click.IntRange(0, 65535), default=5000, show_default=True, help="Port; 0 picks a free one."
)
@click.option(
    "--workers", type=click.IntRange(1, 64), default=DEFAULT_WORKERS, show_default=True, help="Worker processes."
)
@click.option(
    "--threads", type=click.IntRange(1, 64), default=DEFAULT_THREADS, show_default=True, help="Threads per worker."
)
@click.option(
    "--store",
    envvar="CHATBOT_STORE",
    help="Serve the current model of this model store (a folder or an http(s):// URL) and follow it, instead of "
    "--model ($CHATBOT_STORE).",
)
@click.option(
    "--poll",
    type=click.FloatRange(min=0.5),
    default=DEFAULTS["POLL"],
    show_default=True,
    envvar="CHATBOT_POLL",
    help="With --store: seconds between two looks at its manifest ($CHATBOT_POLL).",
)
@click.option(
    "--message-log",
    type=click.Path(dir_okay=False),
    help="Append one JSON line per answer and per thumbs-down here, for `chatbot review` ($CHATBOT_MESSAGE_LOG).",
)
@click.option(
    "--log-raw", is_flag=True, help="Keep digits and e-mail addresses in the message log (masked by default)."
)
@click.pass_context
def serve(
    ctx: click.Context,
    model: str,
    host: str,
    port: int,
    workers: int,
    threads: int,
    store: str | None,
    poll: float,
    message_log: str | None,
    log_raw: bool,
) -> None:
    """Serve the chat page and the JSON API on gunicorn until Ctrl-C or SIGTERM.

    The checkpoint, the settings and the port are checked before gunicorn starts: a bad checkpoint, a malformed
    CHATBOT_* variable or a port in use stops here with one line and exit code 1.
    Settings come from CHATBOT_* environment variables (admin token, CORS origins, rate limit, limits).
    """
    from app.server import run_server

    if store and ctx.get_parameter_source("model") is ParameterSource.COMMANDLINE:
        if ctx.get_parameter_source("store") is ParameterSource.COMMANDLINE:
            raise click.UsageError("give --model or --store, not both")
        store = None  # --model on the command line wins over $CHATBOT_STORE (a container's default)
    overrides: dict = {"MESSAGE_LOG": message_log} if message_log else {}
    if store:
        overrides |= {"STORE": store, "POLL": poll}
    if log_raw:
        overrides["MESSAGE_LOG_RAW"] = True
    run_server(model, host=host, port=port, workers=workers, threads=threads, overrides=overrides)
