"""The one place that chooses the device, the number of torch threads for training, and seeds the random generators.

Threads: torch's threads wait for each other at every step, so on a busy machine more threads than free cores are much
slower than one (docs/design.md). Training therefore takes one thread per CPU that other processes leave free;
OMP_NUM_THREADS, when set, decides instead.
Serving pins one thread per worker (app/server.py), because requests already run in parallel there.
"""

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


def training_threads(cpus: int, busy: float) -> int:
    """Threads worth training on with `cpus` CPUs of which about `busy` run other work.

    A thread whose CPU is taken makes every other one wait for it at each step, so a busy CPU is never counted: too
    few threads cost a little speed, one too many costs most of it.
    """
    return max(1, min(cpus, round(cpus - busy)))


def available_cpus() -> int:
    """The CPUs this process may run on (a container or `taskset` may allow fewer than the machine has)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def busy_cpus(proc: str = "/proc") -> float:
    """About how many CPUs other processes keep busy: their threads that can run right now (Linux), else the
    one-minute load average. A CPU-bound process is always runnable, so one look sees it; the load average lags a
    minute behind a process that has just started and counts this process's own last minute of training. This
    process's own threads are left out: torch's idle workers stay runnable for a moment after each parallel step."""
    try:
        with open(f"{proc}/loadavg", encoding="ascii") as file:
            runnable = int(file.read().split()[3].split("/")[0])
        return max(0, runnable - _runnable_threads(f"{proc}/self/task"))
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.getloadavg()[0]
    except (AttributeError, OSError):  # Windows has no load average
        return 0.0


def _runnable_threads(tasks: str) -> int:
    """Threads of this process in state R (running or ready to run), from /proc/self/task/*/stat."""
    count = 0
    for task in os.listdir(tasks):
        try:
            with open(f"{tasks}/{task}/stat", encoding="ascii", errors="replace") as file:
                count += file.read().rsplit(")", 1)[1].split()[0] == "R"  # the name before ")" may hold spaces
        except (OSError, IndexError):
            continue  # a thread that ended meanwhile
    return count


def use_training_threads() -> int:
    """Set torch's thread count for a training run and return it; OMP_NUM_THREADS, when set, wins."""
    if os.environ.get("OMP_NUM_THREADS"):
        return torch.get_num_threads()
    threads = training_threads(available_cpus(), busy_cpus())
    torch.set_num_threads(threads)
    return threads
