"""Adam for a network whose first layer has sparse gradients, without torch.optim.

Two reasons not to use torch.optim here (measured: docs/design.md):
- torch.optim.SparseAdam goes through sparse-tensor operations, much slower per step than the row update below;
- the first `torch.optim.Optimizer` built in a process imports torch._dynamo, a large share of a whole training run.
The arithmetic is Adam's (Kingma & Ba), with the "lazy" rule for sparse gradients that SparseAdam also uses: rows
a batch did not touch keep their moments and weights.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import torch


class Adam:
    """Adam over dense and sparse-gradient parameters; `zero_grad()` then `step()`, as with torch.optim."""

    def __init__(
        self, params: Iterable[torch.nn.Parameter], lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8
    ) -> None:
        self.params = list(params)
        self.lr, self.betas, self.eps = lr, betas, eps
        self.steps = 0
        self.exp_avg = [torch.zeros_like(p) for p in self.params]
        self.exp_avg_sq = [torch.zeros_like(p) for p in self.params]

    def zero_grad(self) -> None:
        for param in self.params:
            param.grad = None

    @torch.no_grad()
    def step(self) -> None:
        self.steps += 1
        beta1, beta2 = self.betas
        step_size = self.lr / (1 - beta1**self.steps)
        bias2_sqrt = math.sqrt(1 - beta2**self.steps)
        for param, exp_avg, exp_avg_sq in zip(self.params, self.exp_avg, self.exp_avg_sq):
            grad = param.grad
            if grad is None:
                continue
            if grad.is_sparse:
                self._sparse_step(param, grad, exp_avg, exp_avg_sq, step_size, bias2_sqrt)
                continue
            exp_avg.mul_(beta1).add_(grad, alpha=1 - beta1)
            exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
            denom = exp_avg_sq.sqrt().div_(bias2_sqrt).add_(self.eps)
            param.addcdiv_(exp_avg, denom, value=-step_size)

    def _sparse_step(self, param, grad, exp_avg, exp_avg_sq, step_size: float, bias2_sqrt: float) -> None:
        """Gather the touched rows' moments, update them densely, scatter them back."""
        beta1, beta2 = self.betas
        grad = grad.coalesce()
        rows, values = grad.indices()[0], grad.values()
        row_avg = exp_avg.index_select(0, rows).mul_(beta1).add_(values, alpha=1 - beta1)
        row_avg_sq = exp_avg_sq.index_select(0, rows).mul_(beta2).addcmul_(values, values, value=1 - beta2)
        exp_avg[rows] = row_avg
        exp_avg_sq[rows] = row_avg_sq
        denom = row_avg_sq.sqrt_().div_(bias2_sqrt).add_(self.eps)
        param.index_add_(0, rows, row_avg.div_(denom), alpha=-step_size)
