"""The three-layer dropout network, and a few copies of it trained side by side.

One member is the design's network: Linear(n_features -> 128), ReLU, Dropout(0.5), Linear(128 -> 64), ReLU,
Dropout(0.5), Linear(64 -> n_intents). Two things differ from the textbook code, neither in what it computes:
- The first layer reads the ids of the features present in a message instead of a dense 0/1 vector. An
  `EmbeddingBag` in "sum" mode plus a bias is exactly `Linear` applied to that 0/1 vector, at the cost of the message
  length rather than the vocabulary size, and its gradient is sparse.
- `members` independent copies are stored stacked and run as one batched computation; their averaged softmax is the
  prediction: averaging smooths out one network's unlucky initialisation, for a small cost per answer (the figures
  behind the default of three: docs/design.md).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
from torch import nn
from torch.nn import functional as F


@dataclass(frozen=True)
class ModelConfig:
    """Shape of the network; stored in the checkpoint so the model can be rebuilt without the training code's flags."""

    n_features: int
    n_intents: int
    hidden1: int = 128
    hidden2: int = 64
    dropout: float = 0.5
    members: int = 3

    def to_dict(self) -> dict:
        return asdict(self)


def _uniform(shape: tuple[int, ...], fan_in: int) -> nn.Parameter:
    """nn.Linear's default initialisation, so each member starts as the textbook network does."""
    bound = 1.0 / math.sqrt(max(fan_in, 1))
    return nn.Parameter(torch.empty(shape).uniform_(-bound, bound))


class Dropout(nn.Dropout):
    """nn.Dropout, computed from a uniform draw: the same function, faster on the CPU (torch's draws a Bernoulli
    variable per element; docs/design.md)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0:
            return x
        keep = torch.rand_like(x) >= self.p
        return x * keep / (1 - self.p)


class IntentNet(nn.Module):
    """`members` three-layer dropout networks over a bag of features; forward returns (members, batch, intents)."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        m, h1, h2 = config.members, config.hidden1, config.hidden2
        self.fc1 = nn.EmbeddingBag(config.n_features, m * h1, mode="sum", sparse=True)
        self.fc1.weight = _uniform((config.n_features, m * h1), config.n_features)
        self.fc1_bias = _uniform((m * h1,), config.n_features)
        self.fc2_weight = _uniform((m, h1, h2), h1)
        self.fc2_bias = _uniform((m, 1, h2), h1)
        self.fc3_weight = _uniform((m, h2, config.n_intents), h2)
        self.fc3_bias = _uniform((m, 1, config.n_intents), h2)
        self.dropout = Dropout(config.dropout)

    def forward(self, ids: torch.Tensor, offsets: torch.Tensor) -> torch.Tensor:
        """Logits of each member; `ids` and `offsets` describe the batch as `nn.EmbeddingBag` expects."""
        m, h1 = self.config.members, self.config.hidden1
        x = self.fc1(ids, offsets) + self.fc1_bias  # (batch, members * hidden1)
        x = self.dropout(F.relu(x))
        x = x.view(-1, m, h1).transpose(0, 1)  # (members, batch, hidden1)
        x = self.dropout(F.relu(torch.baddbmm(self.fc2_bias, x, self.fc2_weight)))
        return torch.baddbmm(self.fc3_bias, x, self.fc3_weight)  # (members, batch, intents)

    def probabilities(self, ids: torch.Tensor, offsets: torch.Tensor) -> torch.Tensor:
        """Average of the members' softmax, (batch, intents), columns in the order of the checkpoint's tags."""
        return F.softmax(self(ids, offsets), dim=-1).mean(dim=0)
