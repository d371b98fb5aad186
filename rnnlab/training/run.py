"""One run end to end: check, lock, train all seeds, stream the archive to disk, finish atomically;
and `resume`, which continues an unfinished run from its last checkpoint.

Nothing is created until every check has passed (config, output path, disk space). One run holds
the output's lock from creating its `.partial` to renaming it into place. SIGINT and SIGTERM stop
training after the current epoch, commit, checkpoint and close (StopRequested -> RunStopped).
"""

from __future__ import annotations

import contextlib
import signal
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from rnnlab.config import Config
from rnnlab.data.paths import (
    OutputLock,
    check_output_path,
    checkpoint_path,
    partial_path,
)
from rnnlab.data.schema import SWEEP_ATTRS
from rnnlab.data.writer import ArchiveWriter
from rnnlab.errors import RunStopped
from rnnlab.network.tasks import kalman_optimal_mse
from rnnlab.training.monitor import OutlierRecorder
from rnnlab.training.preflight import preflight, preflight_resume, trial_times
from rnnlab.training.recording import Recorder
from rnnlab.training.trainer import StopRequested, Trainer


def run(
    cfg: Config,
    output: str | Path | None = None,
    *,
    overwrite: bool = False,
    progress: bool = True,
    command: str | None = None,
    attrs: dict[str, str] | None = None,
) -> Path:
    """Train `cfg` and write its archive; nothing is created until every check has passed.

    `attrs`: more global attributes of the archive (a sweep point's: rnnlab.data.grid)."""
    path = preflight(cfg, output, overwrite)
    path.parent.mkdir(parents=True, exist_ok=True)
    with OutputLock(path):
        check_output_path(path, overwrite, locked=True)  # again: no other run can change it now
        if overwrite:
            partial_path(path).unlink(missing_ok=True)
            checkpoint_path(path).unlink(missing_ok=True)
        trainer = Trainer(cfg, progress=progress, tracker_factory=OutlierRecorder.for_trainer)
        writer = ArchiveWriter(path, cfg, command=command, run_id=uuid.uuid4().hex, attrs=attrs)
        recorder = Recorder(writer)
        recorder.open(_static(cfg, trainer))
        return _train(trainer, recorder)


def resume(path: str | Path, *, progress: bool = True) -> Path:
    """Continue the unfinished run of `path` (the archive or its .partial) from its checkpoint,
    with the config stored in the .partial; the result equals an uninterrupted run's."""
    import torch

    final, partial, attrs, cfg = preflight_resume(path)
    with OutputLock(final):
        trainer = Trainer(cfg, progress=progress, tracker_factory=OutlierRecorder.for_trainer)
        writer = ArchiveWriter(
            final,
            cfg,
            command=str(attrs.get("command", "")),
            run_id=str(attrs.get("run_id", "")),
            attrs={k: str(attrs[k]) for k in SWEEP_ATTRS if k in attrs},  # kept if started over
        )
        recorder = Recorder(writer)
        static = _static(cfg, trainer)
        state = None
        ckpt = checkpoint_path(final)
        if ckpt.exists():
            state = torch.load(ckpt, weights_only=True)
            if state.get("run_id") != writer.run_id:
                state = None  # a stale checkpoint of another run: start over
        if state is None:  # killed before its first checkpoint: start over, same run id
            partial.unlink()
            recorder.open(static)
        else:
            trainer.load_state_dict(state)
            recorder.reopen(static, trainer.start_epoch)
        return _train(trainer, recorder)


_ACTIVE: set[Trainer] = set()  # trainers of this process's runs, for request_stop


def request_stop(signum: int = signal.SIGTERM) -> int:
    """Ask every run of this process to stop after its current epoch, as SIGTERM does in the
    main thread (a sweep's worker trains in other threads); returns how many were asked."""
    trainers = list(_ACTIVE)
    for trainer in trainers:
        trainer.stop_signal = signum
    return len(trainers)


def _train(trainer: Trainer, recorder: Recorder) -> Path:
    """Train with the recorder attached; finish the archive, or keep it resumable on a stop."""
    trainer.recorder = recorder
    epochs = trainer.cfg.train.epochs
    _ACTIVE.add(trainer)
    with contextlib.ExitStack() as stack, stop_on_signals(trainer):
        # through close: a stop asked for while it finishes is moot
        stack.callback(_ACTIVE.discard, trainer)
        try:
            trainer.run()
        except StopRequested as stop:
            recorder.abort()
            raise RunStopped(recorder.writer.partial, stop.epoch, epochs, stop.signum) from None
        except KeyboardInterrupt:
            recorder.abort()
            raise RunStopped(recorder.writer.partial, None, epochs, signal.SIGINT) from None
        except BaseException:
            recorder.abort()
            raise
        return recorder.close()


@contextlib.contextmanager
def stop_on_signals(trainer: Trainer) -> Iterator[None]:
    """SIGINT/SIGTERM ask the trainer to stop after the current epoch; a second one interrupts
    at once. Only in the main thread (signal handlers live there; dask workers train elsewhere)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: Any) -> None:
        if trainer.stop_signal is not None:
            raise KeyboardInterrupt
        trainer.stop_signal = signum

    previous = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for s, h in previous.items():
            signal.signal(s, h)


def _static(cfg: Config, trainer: Trainer) -> dict[str, Any]:
    """What the archive holds from the start: times, labels, J0, the evaluation trials."""
    init = trainer.net
    return {
        "time": trial_times(cfg),
        "input_names": list(cfg.task.inputs),
        "output_names": list(cfg.task.outputs),
        "J0": init.J0.cpu().numpy(),
        "mse_optimal": kalman_optimal_mse(cfg.task, cfg.model.dt),
        "eval_input": trainer.eval_inputs.cpu().numpy(),
        "eval_target": trainer.eval_targets.cpu().numpy(),
        "imposed_u": _numpy(init.imposed_u),
        "imposed_v": _numpy(init.imposed_v),
    }


def _numpy(value: Any) -> np.ndarray | None:
    return None if value is None else value.cpu().numpy()
