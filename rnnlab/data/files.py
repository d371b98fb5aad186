"""What an archive file is, before it is opened with xarray: a readable NetCDF file, an rnnlab
archive of a schema this version reads, complete or not, with how many records committed. netCDF4
only, so that a command refuses a missing or foreign file in a fraction of a second."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import netCDF4
import numpy as np

from rnnlab.data.schema import READABLE_SCHEMAS, RECORD_DIMS
from rnnlab.errors import ArchiveError, MissingArchive


def archive_paths(paths: str | Path | Iterable[str | Path]) -> list[Path]:
    """Expand files and directories (all *.nc inside, sorted) into a list of archive paths."""
    items = [paths] if isinstance(paths, str | Path) else list(paths)
    out: list[Path] = []
    for item in items:
        item = Path(item)
        if item.is_dir():
            found = sorted(item.glob("*.nc"))
            if not found:
                raise ArchiveError(f"no *.nc archives in directory {item}")
            out.extend(found)
        elif item.exists():
            out.append(item)
        else:
            raise MissingArchive(f"no such archive: {item}")
    if not out:
        raise ArchiveError("no archives given")
    return out


def check_archive(path: Path, allow_incomplete: bool = False) -> dict[str, object]:
    """Raise ArchiveError unless `path` is a readable (complete) rnnlab archive; return its
    attributes, with the committed record counts under the key `committed`."""
    if not path.exists():
        raise MissingArchive(f"no such archive: {path}")
    if path.is_dir():
        raise ArchiveError(f"{path} is a directory; give an archive file (or use open_archive)")
    try:
        with netCDF4.Dataset(path, "r") as nc:
            attrs = {k: nc.getncattr(k) for k in nc.ncattrs()}
            attrs["committed"] = committed_counts(nc)
    except OSError as exc:
        raise ArchiveError(
            f"{path} is not a readable NetCDF file ({exc.strerror or exc})"
        ) from None
    schema = attrs.get("rnnlab_schema")
    if schema is None:
        raise ArchiveError(f"{path} is not an rnnlab archive (no 'rnnlab_schema' attribute)")
    if schema not in READABLE_SCHEMAS:
        raise ArchiveError(
            f"{path} has archive schema {schema!r}; this rnnlab reads {', '.join(READABLE_SCHEMAS)}"
        )
    if not int(attrs.get("complete", 0)) and not allow_incomplete:
        n_epoch = attrs["committed"].get("epoch", 0)
        raise ArchiveError(
            f"{path} is incomplete (run killed or still running; {n_epoch} snapshots committed); "
            "pass --allow-incomplete (Python: allow_incomplete=True) to read its committed records"
        )
    return attrs


def committed_counts(nc: netCDF4.Dataset) -> dict[str, int]:
    """Committed records per record dim: the prefix whose marker (the record's coordinate) is
    set. Schema /1 archives had no markers: every record there counts."""
    out = {}
    for dim in RECORD_DIMS:
        if dim not in nc.dimensions:
            continue
        if dim in nc.variables and not nc.dimensions[dim].isunlimited():
            markers = np.asarray(nc.variables[dim][:])
            bad = np.flatnonzero(markers < 0)
            out[dim] = int(bad[0]) if bad.size else len(markers)
        else:
            out[dim] = nc.dimensions[dim].size
    return out
