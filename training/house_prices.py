"""The training loop at its simplest: fit a line to three house prices with one `nn.Linear(1, 1)`."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import nn

SIZES = [1.5, 2.0, 2.5]  # thousand square feet
PRICES = [300.0, 400.0, 500.0]  # thousand dollars
QUERY_SIZE = 3.0


@dataclass
class HousePriceFit:
    losses: list[float] = field(default_factory=list)
    weight: float = 0.0
    bias: float = 0.0
    prediction: float = 0.0  # for QUERY_SIZE


def fit_house_prices(
    epochs: int = 100,
    lr: float = 0.01,
    seed: int = 0,
    on_epoch: Callable[[int, float], None] | None = None,
) -> tuple[HousePriceFit, nn.Linear]:
    """Forward, loss, zero_grad, backward, step: the loop every model in this project trains with."""
    torch.manual_seed(seed)
    x = torch.tensor(SIZES).unsqueeze(1)
    y = torch.tensor(PRICES).unsqueeze(1)
    model = nn.Linear(1, 1)
    loss_fn = nn.MSELoss()
    optimizer = torch.optim.SGD(model.parameters(), lr=lr)
    result = HousePriceFit()
    model.train()
    for epoch in range(1, epochs + 1):
        loss = loss_fn(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        result.losses.append(loss.item())
        if on_epoch is not None:
            on_epoch(epoch, loss.item())
    with torch.inference_mode():
        result.prediction = model(torch.tensor([[QUERY_SIZE]])).item()
    result.weight, result.bias = model.weight.item(), model.bias.item()
    return result, model


def exact_prediction() -> float:
    """What the least-squares line predicts for QUERY_SIZE: where gradient descent is heading."""
    x = torch.tensor([[s, 1.0] for s in SIZES], dtype=torch.float64)
    y = torch.tensor(PRICES, dtype=torch.float64).unsqueeze(1)
    coef = torch.linalg.lstsq(x, y).solution.squeeze(1)
    return float(coef[0] * QUERY_SIZE + coef[1])


def epochs_to_converge(
    model: nn.Linear, lr: float, done: int, tolerance: float = 1.0, limit: int = 20_000
) -> int | None:
    """Keep training a copy of `model` until its prediction is within `tolerance` of the exact one; total epochs.

    None when it diverges or needs more than `limit` further epochs (a few seconds at most).
    """
    target = exact_prediction()
    copy = nn.Linear(1, 1)
    copy.load_state_dict(model.state_dict())
    x, y = torch.tensor(SIZES).unsqueeze(1), torch.tensor(PRICES).unsqueeze(1)
    optimizer = torch.optim.SGD(copy.parameters(), lr=lr)
    query = torch.tensor([[QUERY_SIZE]])
    for extra in range(limit + 1):
        with torch.no_grad():
            prediction = copy(query).item()
        if not math.isfinite(prediction):
            return None
        if abs(prediction - target) <= tolerance:
            return done + extra
        loss = nn.functional.mse_loss(copy(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return None
