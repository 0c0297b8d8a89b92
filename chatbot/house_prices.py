"""`chatbot house-prices`: one-feature linear regression, the training loop at its simplest."""

from __future__ import annotations

import math

import click


@click.command("house-prices")
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
        from training.plots import plot_losses

        saved = plot_losses(result.losses, plot, "House prices: MSE loss per epoch")
        click.echo(f"Loss curve saved to {saved}")
