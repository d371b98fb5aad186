"""Capture a whole training step (forward, backward, optimizer step) in one CUDA graph.

A BPTT step over T time steps launches thousands of small kernels; replaying them as one graph
removes the CPU launch overhead. Follows PyTorch's whole-network capture recipe: warm-up steps on
a side stream, capture with `torch.cuda.graph`, then copy fresh inputs into the static input
tensors and replay. Requirements on `step_fn`: static shapes, no CPU synchronisation (no
`.item()`, no data-dependent Python branching), gradients zeroed with `set_to_none=True` inside
the step, and optimizers built with `capturable=True`.

On the CPU, or when capture fails, the step runs eagerly (a plain call; a failed capture warns
once), so callers never need a separate code path.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import Tensor


class GraphedStep:
    """`step(*inputs)` runs `step_fn(*inputs)`, replayed from a CUDA graph once captured.

    Every call is exactly one training step: the first `warmup` calls run eagerly on a side
    stream (as the capture recipe asks), the next call captures the graph and replays it, later
    calls copy their inputs into `static_inputs` and replay. A graphed step returns the same
    static output tensors every time: copy or `.item()` them before the next call.
    """

    def __init__(
        self, step_fn: Callable[..., Any], static_inputs: Sequence[Tensor], warmup: int = 3
    ) -> None:
        if warmup < 1:
            raise ValueError(f"warmup must be >= 1 (the capture recipe needs it), got {warmup}")
        if not all(isinstance(t, Tensor) for t in static_inputs):
            raise ValueError("static_inputs must be a list of tensors")
        self.step_fn = step_fn
        self.static_inputs = list(static_inputs)
        self.warmup = warmup
        self._calls = 0
        self._graph: torch.cuda.CUDAGraph | None = None
        self._static_out: Any = None
        self._failed = False
        on_cuda = bool(self.static_inputs) and all(t.is_cuda for t in self.static_inputs)
        self._eligible = on_cuda and torch.cuda.is_available()
        self._stream = torch.cuda.Stream() if self._eligible else None

    @property
    def graphed(self) -> bool:
        """True once the step replays from a captured CUDA graph."""
        return self._graph is not None

    def __call__(self, *inputs: Tensor) -> Any:
        if len(inputs) != len(self.static_inputs):
            raise ValueError(
                f"GraphedStep expects {len(self.static_inputs)} inputs, got {len(inputs)}"
            )
        for i, (new, static) in enumerate(zip(inputs, self.static_inputs, strict=True)):
            if new.shape != static.shape or new.dtype != static.dtype:
                raise ValueError(
                    f"input {i} is {new.dtype}{tuple(new.shape)} but the graph was built for "
                    f"{static.dtype}{tuple(static.shape)} (CUDA graphs need static shapes)"
                )
        self._calls += 1
        if not self._eligible or self._failed:
            return self.step_fn(*inputs)
        if self._graph is None and self._calls <= self.warmup:
            return self._eager_on_side_stream(inputs)
        self._copy_in(inputs)
        if self._graph is None:
            try:
                self._capture()
            except Exception as err:  # any capture failure means: run eagerly
                self._graph, self._failed = None, True
                warnings.warn(
                    f"CUDA graph capture failed, running the step eagerly: {err}",
                    RuntimeWarning,
                    stacklevel=2,
                )
                return self.step_fn(*inputs)
        self._graph.replay()
        return self._static_out

    def _copy_in(self, inputs: Sequence[Tensor]) -> None:
        for new, static in zip(inputs, self.static_inputs, strict=True):
            if new.data_ptr() != static.data_ptr():
                static.copy_(new, non_blocking=True)

    def _eager_on_side_stream(self, inputs: Sequence[Tensor]) -> Any:
        assert self._stream is not None
        self._stream.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(self._stream):
            out = self.step_fn(*inputs)
        torch.cuda.current_stream().wait_stream(self._stream)
        return out

    def _capture(self) -> None:
        torch.cuda.synchronize()
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            self._static_out = self.step_fn(*self.static_inputs)
        self._graph = graph
