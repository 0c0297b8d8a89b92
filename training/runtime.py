"""The one place that chooses the device, seeds the random generators and sets torch's thread count."""

from __future__ import annotations

import os
import random

import numpy as np
import torch


def pick_device() -> torch.device:
    """A GPU when there is one; the bag-of-words network is small enough that the CPU is the common case."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def seed_everything(seed: int) -> None:
    """Same seed, same data, same settings: same weights, on the CPU at least."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def configure_threads() -> None:
    """One torch thread unless the user set OMP_NUM_THREADS: on a small shared machine it is the faster choice."""
    if "OMP_NUM_THREADS" not in os.environ:
        torch.set_num_threads(1)
