"""BPTT training of all seeds at once: seeds are a batch dimension, yet fully independent.

Each seed has its own RNG streams, its loss enters the total as a sum (so its gradient is its own),
Adam/SGD act elementwise, and gradient clipping uses each seed's own norm. A seed whose loss or
parameters become non-finite is frozen (its parameters stay at their last finite values and its
`diverged_epoch` is kept); the others go on exactly as they would alone. Recording goes through a
`recorder` (rnnlab.training.recording.Recorder) so snapshots never wait on disk or
eigendecompositions; the trainer's whole state (parameters, optimizer, RNG streams, tracker) is
checkpointed with each snapshot and when a stop is requested (SIGINT/SIGTERM), so
`rnnlab run --resume` continues exactly.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import torch
from tqdm.auto import tqdm

from rnnlab.bptt.cudagraph import GraphedStep
from rnnlab.bptt.dynamics import Workspace, readout, run_dynamics
from rnnlab.config import Config, Model, Train, snapshot_epochs, washout_steps
from rnnlab.errors import ConfigError
from rnnlab.network.params import init_params
from rnnlab.network.rng import seed_generator
from rnnlab.network.tasks import batch_for_seeds, shuffle_targets
from rnnlab.training.optim import ElementwiseAdam, ElementwiseSGD


class Recorder(Protocol):
    """Where the trainer sends what it records (see rnnlab.training.recording.Recorder)."""

    def curve(self, epoch: int, values: dict[str, np.ndarray]) -> None: ...
    def snapshot(self, epoch: int, values: dict[str, np.ndarray]) -> None: ...
    def trajectories(self, epoch: int, values: dict[str, np.ndarray]) -> None: ...
    def checkpoint(self, state: dict[str, Any]) -> None: ...


class AllSeedsDiverged(FloatingPointError):
    """Every seed of a run became non-finite: nothing is left to train."""


class StopRequested(Exception):  # noqa: N818 (a request, not an error)
    """Training stopped between epochs on request (SIGINT/SIGTERM); state checkpointed."""

    def __init__(self, epoch: int, signum: int) -> None:
        super().__init__(f"stopped at epoch {epoch}")
        self.epoch, self.signum = epoch, signum


def resolve_device(name: str) -> torch.device:
    """'auto' picks CUDA when present; asking for CUDA without one is a config error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("config key 'device' is 'cuda' but no CUDA device is available")
    return torch.device(name)


@dataclass
class Network:
    """Parameters of all seeds: J (S, N, N), B (S, N, n_in), w (S, N, n_out)."""

    J: torch.Tensor
    B: torch.Tensor
    w: torch.Tensor
    J0: torch.Tensor
    trainable: list[str] = field(default_factory=list)
    imposed_u: torch.Tensor | None = None
    imposed_v: torch.Tensor | None = None

    def parameters(self) -> list[torch.Tensor]:
        return [getattr(self, name) for name in self.trainable]


def build_network(cfg: Config, device: torch.device, dtype=torch.float32) -> Network:
    """Initial network of every seed, with requires_grad on the trainable subset."""
    init = init_params(cfg.model, cfg.task, cfg.seeds, device=device, dtype=dtype)
    trainable = [name for name in ("J", "w", "B") if name in cfg.model.train]
    net = Network(
        J=init.J0.clone(),
        B=init.B.clone(),
        w=init.w.clone(),
        J0=init.J0,
        trainable=trainable,
        imposed_u=init.imposed_u,
        imposed_v=init.imposed_v,
    )
    for name in trainable:
        getattr(net, name).requires_grad_(True)
    return net


def regularizer(J: torch.Tensor, lambda_w: float, lambda_bal: float) -> torch.Tensor:
    """Per-seed lambda_W ||J||_F^2 + lambda_bal ||(1/N) 1^T J||^2, shape (S,)."""
    reg = torch.zeros(J.shape[0], dtype=J.dtype, device=J.device)
    if lambda_w:
        reg = reg + lambda_w * J.pow(2).sum(dim=(1, 2))
    if lambda_bal:
        reg = reg + lambda_bal * J.mean(dim=1).pow(2).sum(dim=1)
    return reg


@dataclass
class Forward:
    """Per-seed loss and MSE (S,), outputs (S, n, T, o), rates and states (S, n, T, N)."""

    loss: torch.Tensor
    mse: torch.Tensor
    outputs: torch.Tensor
    rates: torch.Tensor
    states: torch.Tensor


def forward(
    net: Network,
    inputs: torch.Tensor,
    targets: torch.Tensor,
    model: Model,
    train: Train,
    washout: int,
    noise: torch.Tensor | None = None,
    workspace: Workspace | None = None,
) -> Forward:
    """Simulate the trials of every seed and score them (MSE after the washout + regularisers).

    With a `workspace` the fused kernel reuses its buffers across calls (the returned rates and
    states are then overwritten by the next call that uses the same workspace).
    """
    alpha = model.alpha
    s, b, _, _ = inputs.shape
    # B u is formed inside the kernel's step loop; only process noise is an (S, Bt, T, N) drive.
    drive = None if noise is None else noise * (model.noise / math.sqrt(alpha))
    h0 = torch.zeros(s, b, net.J.shape[1], dtype=net.J.dtype, device=net.J.device)
    rates, states = run_dynamics(
        net.J, drive, h0, alpha, model.phi, inputs=inputs, B=net.B,
        fused=train.fused, workspace=workspace,
    )  # fmt: skip
    outputs = readout(rates, net.w, workspace=workspace)
    mse = (outputs[:, :, washout:] - targets[:, :, washout:]).pow(2).mean(dim=(1, 2, 3))
    task_loss = mse if train.task_weight == 1.0 else train.task_weight * mse
    loss = task_loss + regularizer(net.J, train.lambda_w, train.lambda_bal)
    return Forward(loss=loss, mse=mse, outputs=outputs, rates=rates, states=states)


def clip_per_seed(params: list[torch.Tensor], max_norm: float) -> torch.Tensor:
    """Scale each seed's gradients so that their joint norm is at most max_norm; return norms."""
    grads = [p.grad for p in params if p.grad is not None]
    sq = sum(g.pow(2).flatten(1).sum(dim=1) for g in grads)
    norms = torch.sqrt(sq)
    if max_norm > 0:
        scale = torch.clamp(max_norm / (norms + 1e-12), max=1.0)
        for g in grads:
            g.mul_(scale.view(-1, *([1] * (g.dim() - 1))))
    return norms


def make_optimizer(train: Train, params: list[torch.Tensor], capturable: bool = False) -> Any:
    """SGD or Adam over the trainable tensors (elementwise, hence independent across seeds).

    On the CPU rnnlab's own (rnnlab.training.optim: torch.optim's arithmetic to the bit, without
    the 1 s import of torch._dynamo that torch.optim's step costs); on CUDA torch.optim, whose
    capturable Adam the CUDA graph needs."""
    if not capturable:
        if train.optimizer == "sgd":
            return ElementwiseSGD(params, lr=train.lr)
        return ElementwiseAdam(params, lr=train.lr)
    if train.optimizer == "sgd":
        return torch.optim.SGD(params, lr=train.lr)
    return torch.optim.Adam(params, lr=train.lr, capturable=capturable)


class Trainer:
    """Trains every seed of a config together and streams what it records to a recorder."""

    def __init__(
        self,
        cfg: Config,
        recorder: Recorder | None = None,
        *,
        progress: bool = True,
        device: torch.device | None = None,
        tracker_factory: Callable[..., Any] | None = None,
    ) -> None:
        self.cfg = cfg
        self.device = device or resolve_device(cfg.device)
        if self.device.type == "cpu":  # compile (or load) the CPU kernels before any is used
            from rnnlab.training.kernels import prepare  # and before a progress bar starts

            prepare(cfg, announce=progress)
        self.recorder = recorder
        self.progress = progress
        self.net = build_network(cfg, self.device)
        on_cuda = self.device.type == "cuda"
        self.optimizer = make_optimizer(cfg.train, self.net.parameters(), capturable=on_cuda)
        self._graphed: GraphedStep | None = None
        self.workspace = Workspace() if cfg.train.fused else None
        self.washout = washout_steps(cfg)
        self.threads = torch.get_num_threads()
        seeds = cfg.seeds
        self.task_gens = [seed_generator(s, "task") for s in seeds]
        self.shuffle_gens = [seed_generator(s, "shuffle_targets") for s in seeds]
        self.noise_gens = [seed_generator(s, "noise", self.device) for s in seeds]
        eval_gens = [seed_generator(s, "eval") for s in seeds]
        inputs, targets = batch_for_seeds(
            cfg.task, cfg.model.dt, eval_gens, cfg.record.n_eval_trials
        )
        if cfg.task.shuffle_targets:
            targets = shuffle_targets(targets, [seed_generator(s, "shuffle_eval") for s in seeds])
        self.eval_inputs = inputs.to(self.device, torch.float32)
        self.eval_targets = targets.to(self.device, torch.float32)
        self.tracker = tracker_factory(self) if tracker_factory else None
        self.start_epoch = 0  # > 0 after load_state_dict (resume)
        self.diverged_epoch = np.full(len(seeds), np.nan)  # NaN: healthy
        self.stop_signal: int | None = None  # set by a signal handler: stop after this epoch

    def batch(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """A fresh training batch of every seed from its own task (and noise) stream."""
        cfg = self.cfg
        inputs, targets = batch_for_seeds(cfg.task, cfg.model.dt, self.task_gens, cfg.task.batch)
        if cfg.task.shuffle_targets:
            targets = shuffle_targets(targets, self.shuffle_gens)
        inputs = inputs.to(self.device, torch.float32)
        noise = None
        if cfg.model.noise > 0:  # drawn time-major, returned as an (S, Bt, T, N) view
            shape = (inputs.shape[2], inputs.shape[1], cfg.model.N)
            noise = torch.stack(
                [torch.randn(shape, generator=g, device=self.device) for g in self.noise_gens]
            ).transpose(1, 2)
        return inputs, targets.to(self.device, torch.float32), noise

    def _update(
        self, inputs: torch.Tensor, targets: torch.Tensor, noise: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Forward, backward, per-seed clip and optimizer step; per-seed (loss, mse) before it.

        Free of CPU synchronisation, so on CUDA the whole step is captured in one graph.
        """
        self.optimizer.zero_grad(set_to_none=True)
        noise_or_none = noise if noise.numel() else None
        cfg = self.cfg
        out = forward(
            self.net, inputs, targets, cfg.model, cfg.train, self.washout, noise_or_none,
            self.workspace,
        )  # fmt: skip
        out.loss.sum().backward()
        clip_per_seed(self.net.parameters(), cfg.train.clip)
        self.optimizer.step()
        return out.loss.detach(), out.mse.detach()

    def step(self, epoch: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """One optimizer step on a fresh batch; per-seed (loss, mse) before the update.

        A seed whose loss or updated parameters are non-finite is frozen at its parameters
        before this step (and stays frozen: its later updates are undone), its diverged_epoch
        set to `epoch`; the other seeds are untouched by this.
        """
        inputs, targets, noise = self.batch()
        if noise is None:
            noise = torch.empty(0, device=self.device)
        before = [p.detach().clone() for p in self.net.parameters()]
        if self.device.type != "cuda":
            busy = getattr(self.recorder, "busy", None)
            threads = self.threads - 1 if busy is not None and busy() else self.threads
            if threads != torch.get_num_threads():
                torch.set_num_threads(max(1, threads))
            loss, mse = self._update(inputs, targets, noise)
        else:
            if self._graphed is None:
                static = [inputs.clone(), targets.clone(), noise.clone()]
                self._graphed = GraphedStep(self._update, static)
            loss, mse = self._graphed(inputs, targets, noise)
            loss, mse = loss.clone(), mse.clone()
        self._freeze_diverged(epoch, loss, before)
        return loss, mse

    def _freeze_diverged(
        self, epoch: int | None, loss: torch.Tensor, before: list[torch.Tensor]
    ) -> None:
        """Mark seeds that became non-finite and put every frozen seed back where it was."""
        finite = np.isfinite(loss.cpu().numpy())
        for p in self.net.parameters():
            finite &= finite_per_seed(p.detach())
        healthy = np.isnan(self.diverged_epoch)
        new = healthy & ~finite
        self.diverged_epoch[new] = -1 if epoch is None else epoch
        frozen = ~np.isnan(self.diverged_epoch)
        if frozen.any():
            index = torch.as_tensor(np.flatnonzero(frozen), device=self.device)
            with torch.no_grad():
                for p, old in zip(self.net.parameters(), before, strict=True):
                    p.index_copy_(0, index, old.index_select(0, index))
        if frozen.all():
            raise AllSeedsDiverged(
                "training diverged: every seed's loss or parameters became non-finite ("
                + ", ".join(
                    f"seed {s} at epoch {int(e)}"
                    for s, e in zip(self.cfg.seeds, self.diverged_epoch, strict=True)
                )
                + "); lower train.lr, set train.clip, or lower model.g"
            )

    @torch.no_grad()
    def evaluate(self) -> Forward:
        """Score the fixed evaluation trials (no process noise)."""
        cfg = self.cfg
        return forward(
            self.net, self.eval_inputs, self.eval_targets, cfg.model, cfg.train, self.washout
        )

    def run(self) -> dict[str, np.ndarray]:
        """Train cfg.train.epochs steps (from start_epoch), recording on schedule; return the
        final eval losses. Raises StopRequested between epochs once stop_signal is set."""
        cfg = self.cfg
        epochs = cfg.train.epochs
        snaps = set(snapshot_epochs(epochs, cfg.record.every))
        trajs = set(snapshot_epochs(epochs, cfg.record.trajectories_every))
        bar = tqdm(
            total=epochs,
            initial=self.start_epoch,
            disable=not self.progress,
            desc="train",
            unit="epoch",
            dynamic_ncols=True,
            leave=True,
        )
        final: dict[str, np.ndarray] = {}
        try:
            for epoch in range(self.start_epoch, epochs + 1):
                if epoch in snaps or epoch in trajs:
                    final = self._record(epoch, epoch in snaps, epoch in trajs)
                if epoch == epochs:
                    break
                if self.stop_signal is not None:
                    if self.recorder is not None:
                        self.recorder.checkpoint(self.state_dict(epoch))
                    raise StopRequested(epoch, self.stop_signal)
                loss, mse = self.step(epoch)
                self._record_curve(epoch, loss, mse)
                bar.update(1)
                bar.set_postfix(loss=f"{np.nanmean(loss.cpu().numpy()):.4g}")
        finally:
            bar.close()
            if self.device.type == "cpu":
                torch.set_num_threads(self.threads)
        return final

    def _record_curve(self, epoch: int, loss: torch.Tensor, mse: torch.Tensor) -> None:
        values = {"loss_curve": loss.cpu().numpy(), "mse_curve": mse.cpu().numpy()}
        before = self.diverged_epoch < epoch  # frozen before this epoch: no training loss now
        for name in ("loss_curve", "mse_curve"):
            values[name] = np.where(before, np.nan, values[name])
        if self.tracker is not None:
            values.update(self.tracker.update(self.net.J.detach()))
        if self.recorder is not None:
            self.recorder.curve(epoch, values)

    # -- checkpoints ----------------------------------------------------------------------------
    def state_dict(self, epoch: int) -> dict[str, Any]:
        """Everything that determines training from `epoch` on (copies, on the CPU)."""
        return {
            "epoch": epoch,
            "seeds": list(self.cfg.seeds),
            "params": {k: getattr(self.net, k).detach().cpu().clone() for k in ("J", "B", "w")},
            "optimizer": _cpu_copy(self.optimizer.state_dict()),
            "task_rng": [g.get_state() for g in self.task_gens],
            "shuffle_rng": [g.get_state() for g in self.shuffle_gens],
            "noise_rng": [g.get_state().cpu() for g in self.noise_gens],
            "tracker": None if self.tracker is None else self.tracker.state_dict(),
            "diverged_epoch": self.diverged_epoch.tolist(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue from a checkpoint made by state_dict (same config and seeds)."""
        if list(state["seeds"]) != list(self.cfg.seeds):
            raise ValueError(f"checkpoint of seeds {state['seeds']}, not {list(self.cfg.seeds)}")
        with torch.no_grad():
            for name, value in state["params"].items():
                getattr(self.net, name).copy_(value.to(self.device))
        self.optimizer.load_state_dict(state["optimizer"])
        for gen, rng in zip(self.task_gens, state["task_rng"], strict=True):
            gen.set_state(rng)
        for gen, rng in zip(self.shuffle_gens, state["shuffle_rng"], strict=True):
            gen.set_state(rng)
        for gen, rng in zip(self.noise_gens, state["noise_rng"], strict=True):
            gen.set_state(rng.to(gen.device) if gen.device.type != "cpu" else rng)
        if self.tracker is not None and state["tracker"] is not None:
            self.tracker.load_state_dict(state["tracker"])
        self.diverged_epoch = np.asarray(state["diverged_epoch"], dtype=float).copy()
        self.start_epoch = int(state["epoch"])

    def _record(self, epoch: int, snapshot: bool, trajectories: bool) -> dict[str, np.ndarray]:
        ev = self.evaluate()
        loss, mse = ev.loss.cpu().numpy(), ev.mse.cpu().numpy()
        if self.recorder is not None and snapshot:
            start = self.washout
            self.recorder.snapshot(
                epoch,
                {
                    "J": self.net.J.detach().cpu().numpy().copy(),
                    "B": self.net.B.detach().cpu().numpy().copy(),
                    "w": self.net.w.detach().cpu().numpy().copy(),
                    "loss": loss,
                    "mse": mse,
                    "h_mean": ev.states[:, :, start:].mean(dim=(1, 2)).cpu().numpy(),
                    "diverged_epoch": self.diverged_epoch.copy(),
                },
            )
            self.recorder.checkpoint(self.state_dict(epoch))
        if self.recorder is not None and trajectories:
            self.recorder.trajectories(
                epoch,
                {
                    "traj_output": ev.outputs.cpu().numpy(),
                    "traj_rate": ev.rates.cpu().numpy(),  # fresh per evaluation: no copy
                },
            )
        return {"loss": loss, "mse": mse}


def _cpu_copy(obj: Any) -> Any:
    """A deep copy of a (nested) state dict with every tensor cloned to the CPU."""
    if isinstance(obj, torch.Tensor):
        return obj.detach().cpu().clone()
    if isinstance(obj, dict):
        return {k: _cpu_copy(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return type(obj)(_cpu_copy(v) for v in obj)
    return obj


def finite_per_seed(J: torch.Tensor) -> np.ndarray:
    """Whether each seed's J (S, N, N) is all finite, (S,) bool. On the CPU through NumPy: for
    the default run's (4, 128, 128) 10-50 us against 100-170 us for torch.isfinite(J).all()."""
    if J.device.type == "cpu":
        return np.isfinite(J.numpy()).all(axis=(1, 2))
    return torch.isfinite(J).flatten(1).all(dim=1).cpu().numpy()
