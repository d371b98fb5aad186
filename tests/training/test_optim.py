"""rnnlab's CPU optimizers against torch.optim, to the bit (they exist to skip its dynamo
import)."""

from __future__ import annotations

import pytest
import torch

from rnnlab.training.optim import ElementwiseAdam, ElementwiseSGD


def run(make, steps: int = 25) -> list[torch.Tensor]:
    gen = torch.Generator().manual_seed(0)
    params = [
        torch.randn(3, 5, 5, generator=gen).requires_grad_(),
        torch.randn(3, 5, 1, generator=gen).requires_grad_(),
    ]
    opt = make(params)
    for _ in range(steps):
        opt.zero_grad(set_to_none=True)
        loss = sum((p.pow(3) * torch.randn(p.shape, generator=gen)).sum() for p in params)
        loss.backward()
        opt.step()
    return [p.detach().clone() for p in params]


@pytest.mark.parametrize("lr", [5e-3, 0.3])
def test_adam_equals_torch_optim_adam_bitwise(lr):
    ours = run(lambda ps: ElementwiseAdam(ps, lr=lr))
    theirs = run(lambda ps: torch.optim.Adam(ps, lr=lr))
    for a, b in zip(ours, theirs, strict=True):
        assert torch.equal(a, b)


def test_sgd_equals_torch_optim_sgd_bitwise():
    ours = run(lambda ps: ElementwiseSGD(ps, lr=0.05))
    theirs = run(lambda ps: torch.optim.SGD(ps, lr=0.05))
    for a, b in zip(ours, theirs, strict=True):
        assert torch.equal(a, b)


def test_adam_state_round_trip_continues_identically():
    gen = torch.Generator().manual_seed(1)
    p = torch.randn(4, 4, generator=gen).requires_grad_()
    opt = ElementwiseAdam([p], lr=0.01)
    for _ in range(3):
        p.grad = torch.randn(4, 4, generator=gen)
        opt.step()
    state = opt.state_dict()
    q = p.detach().clone().requires_grad_()
    other = ElementwiseAdam([q], lr=0.5)
    other.load_state_dict(state)
    grad = torch.randn(4, 4, generator=gen)
    p.grad, q.grad = grad.clone(), grad.clone()
    opt.step()
    other.step()
    assert torch.equal(p, q)


def test_a_run_never_imports_dynamo(tmp_path):
    import subprocess
    import sys

    args = ["run", "--set", "train.epochs=2", "--set", "model.N=8", "-o", str(tmp_path / "a.nc")]
    code = (
        "import sys\n"
        "from rnnlab.cli import main\n"
        f"main({[*args, '--quiet']!r})\n"
        "print('torch._dynamo' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "False"
