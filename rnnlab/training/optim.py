"""SGD and Adam for the CPU, elementwise, with torch.optim's arithmetic to the bit.

Why not torch.optim there: `Optimizer.step` (and add_param_group, zero_grad, ...) import
torch._dynamo on first use, which cost 1.0 s of every run here (a third of a 2-epoch run) for
nothing rnnlab uses. These two reproduce torch's single-tensor CPU code paths (`_single_tensor_sgd`
without momentum, `_single_tensor_adam` without amsgrad or weight decay) operation by operation,
so the numbers are identical (tested against torch.optim). On CUDA the trainer keeps
torch.optim.Adam(capturable=True), which its CUDA graph needs.
"""

from __future__ import annotations

from typing import Any

import torch


class ElementwiseSGD:
    """p <- p - lr * grad (torch.optim.SGD with its defaults: no momentum, no weight decay)."""

    def __init__(self, params: list[torch.Tensor], lr: float) -> None:
        self.params, self.lr = list(params), float(lr)

    def zero_grad(self, set_to_none: bool = True) -> None:
        for p in self.params:
            p.grad = None

    @torch.no_grad()
    def step(self) -> None:
        for p in self.params:
            if p.grad is not None:
                p.add_(p.grad, alpha=-self.lr)

    def state_dict(self) -> dict[str, Any]:
        return {"kind": "sgd", "lr": self.lr}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.lr = float(state["lr"])


class ElementwiseAdam:
    """torch.optim.Adam(lr, betas=(0.9, 0.999), eps=1e-8), its single-tensor path."""

    def __init__(
        self,
        params: list[torch.Tensor],
        lr: float,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
    ) -> None:
        self.params, self.lr = list(params), float(lr)
        self.beta1, self.beta2 = (float(b) for b in betas)
        self.eps = float(eps)
        self.steps = [torch.tensor(0.0) for _ in self.params]  # float32, as torch keeps them
        self.exp_avg = [torch.zeros_like(p, memory_format=torch.preserve_format)
                        for p in self.params]  # fmt: skip
        self.exp_avg_sq = [torch.zeros_like(p, memory_format=torch.preserve_format)
                           for p in self.params]  # fmt: skip

    def zero_grad(self, set_to_none: bool = True) -> None:
        for p in self.params:
            p.grad = None

    @torch.no_grad()
    def step(self) -> None:
        beta1, beta2 = self.beta1, self.beta2
        for i, param in enumerate(self.params):
            grad = param.grad
            if grad is None:
                continue
            exp_avg, exp_avg_sq, step_t = self.exp_avg[i], self.exp_avg_sq[i], self.steps[i]
            step_t += 1
            exp_avg.lerp_(grad, 1 - beta1)
            exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
            step = step_t.item()
            bias_correction1 = 1 - beta1**step
            bias_correction2 = 1 - beta2**step
            step_size = self.lr / bias_correction1
            bias_correction2_sqrt = bias_correction2**0.5
            denom = (exp_avg_sq.sqrt() / bias_correction2_sqrt).add_(self.eps)
            param.addcdiv_(exp_avg, denom, value=-step_size)

    def state_dict(self) -> dict[str, Any]:
        """Moments and step counts (tensors: checkpoints load with weights_only=True)."""
        return {
            "kind": "adam",
            "lr": self.lr,
            "steps": [s.clone() for s in self.steps],
            "exp_avg": [t.clone() for t in self.exp_avg],
            "exp_avg_sq": [t.clone() for t in self.exp_avg_sq],
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.lr = float(state["lr"])
        for mine, theirs in (
            (self.steps, state["steps"]),
            (self.exp_avg, state["exp_avg"]),
            (self.exp_avg_sq, state["exp_avg_sq"]),
        ):
            for target, value in zip(mine, theirs, strict=True):
                target.copy_(value)
