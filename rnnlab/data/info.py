"""`rnnlab info`: a human summary of one archive (dims, variables, config, final losses)."""

from __future__ import annotations

import tomllib
from pathlib import Path

import numpy as np
import xarray as xr

from rnnlab.data.reader import check_archive


def describe(path: Path) -> str:
    """Dims, variables, a config summary and final losses of an archive (complete or not)."""
    attrs = check_archive(path, allow_incomplete=True)
    cfg = tomllib.loads(str(attrs["config"]))
    with xr.open_dataset(path, engine="netcdf4") as ds:
        lines = [
            f"{path}  ({attrs['rnnlab_schema']}, "
            f"{'complete' if int(attrs.get('complete', 0)) else 'INCOMPLETE: killed or running'})"
        ]
        lines.append(f"created {attrs.get('created')} by: {attrs.get('command')}")
        lines.append(
            "versions: "
            + ", ".join(
                f"{k.removesuffix('_version')} {attrs[k]}" for k in attrs if k.endswith("_version")
            )
        )
        lines.append("dims: " + ", ".join(f"{d}={n}" for d, n in ds.sizes.items()))
        lines.append("variables:")
        for name, var in ds.data_vars.items():
            lines.append(f"  {name:14s} ({', '.join(var.dims)})  {var.attrs.get('long_name', '')}")
        m, t, tr = cfg["model"], cfg["task"], cfg["train"]
        lines.append(
            f"config: name={cfg['name']} seeds={cfg['seeds']} N={m['N']} phi={m['phi']} g={m['g']} "
            f"b={m['b']} m={m['lowrank']['m']} task={t['kind']} epochs={tr['epochs']} "
            f"optimizer={tr['optimizer']} lr={tr['lr']}"
        )
        if ds.sizes.get("epoch", 0):
            last = int(ds["epoch"].values[-1])
            optimum = float(ds["mse_optimal"].values)
            lines.append(f"final (epoch {last}) on evaluation trials; optimal mse = {optimum:.4g}")
            first_loss = ds["loss"].isel(epoch=0).values
            for i, seed in enumerate(ds["seed"].values):
                loss = ds["loss"].isel(epoch=-1).values[i]
                mse = ds["mse"].isel(epoch=-1).values[i]
                lines.append(
                    f"  seed {int(seed):4d}: loss {loss:.4g} (start {first_loss[i]:.4g}),"
                    f" mse {mse:.4g}"
                )
            if "crossing_epoch" in ds:
                crossing = ds["crossing_epoch"].values
                shown = ", ".join("never" if np.isnan(c) else f"{c:.1f}" for c in crossing)
                lines.append(f"crossing epoch of max Re lambda (Jacobian at origin): {shown}")
        else:
            lines.append("no snapshot written yet")
    return "\n".join(lines)
