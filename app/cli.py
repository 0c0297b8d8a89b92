"""The `chatbot` console script: the training commands plus `serve`, which needs the web app.

It lives in `app` so that `training` never imports Flask: the command group is built there, and this module adds
the one command that serves HTTP. Flask and gunicorn are imported only when `serve` runs.
"""

from __future__ import annotations

import click

from training.cli import main
from training.options import DEFAULT_MODEL

__all__ = ["main"]


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
@click.option("--workers", type=click.IntRange(1, 64), default=2, show_default=True, help="Worker processes.")
@click.option("--threads", type=click.IntRange(1, 64), default=4, show_default=True, help="Threads per worker.")
def serve(model: str, host: str, port: int, workers: int, threads: int) -> None:
    """Serve the chat page and the JSON API on gunicorn until Ctrl-C or SIGTERM.

    The checkpoint and the port are checked before gunicorn starts: a bad checkpoint or a port in use stops here with
    one line and exit code 1.
    Settings come from CHATBOT_* environment variables (admin token, CORS origins, rate limit, limits).
    """
    from app.server import ListenError, run_server
    from training.checkpoint import CheckpointError

    try:
        run_server(model, host=host, port=port, workers=workers, threads=threads)
    except (CheckpointError, ValueError, ListenError) as exc:
        raise click.ClickException(str(exc)) from None


main.add_command(serve)

if __name__ == "__main__":
    main()
