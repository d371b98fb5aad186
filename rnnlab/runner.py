"""One run end to end: validate, train all seeds, stream the archive to disk, finish atomically."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from rnnlab.data.writer import ArchiveWriter, BackgroundWriter
from rnnlab.tasks import input_names, kalman_optimal_mse, output_names
from rnnlab.tracking_record import OutlierRecorder
from rnnlab.train import Trainer, trial_times


def default_output(cfg: dict[str, Any]) -> Path:
    """runs/<name>.nc"""
    return Path("runs") / f"{cfg['name']}.nc"


def run(
    cfg: dict[str, Any],
    output: str | Path | None = None,
    *,
    overwrite: bool = False,
    progress: bool = True,
    command: str | None = None,
) -> Path:
    """Train `cfg` and write its archive; nothing is created until every check has passed."""
    path = Path(output) if output is not None else default_output(cfg)
    writer = ArchiveWriter(path, cfg, overwrite=overwrite, command=command)  # checks the path
    trainer = Trainer(cfg, progress=progress, tracker_factory=OutlierRecorder.for_trainer)
    background = BackgroundWriter(writer)
    try:
        background.open(_static(cfg, trainer))
        trainer.recorder = background
        trainer.run()
    except BaseException:
        background.abort()
        raise
    return background.close()


def _static(cfg: dict[str, Any], trainer: Trainer) -> dict[str, Any]:
    """What the archive holds from the start: times, labels, J0, the evaluation trials."""
    init = trainer.net
    return {
        "time": trial_times(cfg),
        "input_names": input_names(cfg["task"]),
        "output_names": output_names(cfg["task"]),
        "J0": init.J0.cpu().numpy(),
        "mse_optimal": kalman_optimal_mse(cfg),
        "eval_input": trainer.eval_inputs.cpu().numpy(),
        "eval_target": trainer.eval_targets.cpu().numpy(),
        "imposed_u": _numpy(init.imposed_u),
        "imposed_v": _numpy(init.imposed_v),
    }


def _numpy(value: Any) -> np.ndarray | None:
    return None if value is None else value.cpu().numpy()
