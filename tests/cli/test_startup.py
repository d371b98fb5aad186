"""Small jobs stay small: help and refusals import neither torch nor xarray (they decide before)."""

from __future__ import annotations

import subprocess
import sys

import pytest

PROBE = """
import sys
from rnnlab.cli import main
try:
    status = main({args!r})
except SystemExit as exc:
    status = exc.code
heavy = sorted(m for m in ("torch", "xarray", "holoviews", "dask") if m in sys.modules)
print("STATUS", status, "HEAVY", ",".join(heavy) or "-")
"""


def probe(args: list[str], cwd) -> tuple[int, str, str]:
    out = subprocess.run(
        [sys.executable, "-c", PROBE.format(args=args)], capture_output=True, text=True, cwd=cwd
    )
    line = [ln for ln in out.stdout.splitlines() if ln.startswith("STATUS")][-1].split()
    return int(line[1]), line[3], out.stderr


@pytest.mark.parametrize(
    "args",
    [
        ["run", "--help"],
        ["sweep", "--help"],
        ["analyze", "--help"],
        ["run", "--set", "model.gg=1"],
        ["run", "--set", "model.g=inf"],
        ["run", "--set", "model.N=100000000"],
        ["run", "-o", "/proc/nope/x.nc"],
        ["run", "missing.toml"],
        ["analyze", "missing.nc"],
        ["analyze", "foreign.nc"],
        ["info", "missing.nc"],
        ["info", "foreign.nc"],
        ["run", "--resume", "missing.nc"],
    ],
)
def test_help_and_refusals_import_neither_torch_nor_xarray(tmp_path, args):
    (tmp_path / "foreign.nc").write_bytes(b"not netcdf at all")
    status, heavy, err = probe(args, tmp_path)
    assert heavy == "-", f"{args} imported {heavy}"
    if "--help" in args:
        assert status == 0
    else:
        assert status == 2 and err.strip().startswith("rnnlab: error:"), err
        assert len(err.strip().splitlines()) == 1


def test_python_dash_m_rnnlab_is_the_rnnlab_command(tmp_path):
    """`python -m rnnlab` (what a user without the script on PATH types) runs the same CLI: help
    exits 0, a refusal is the one-line error with exit status 2."""
    ok = subprocess.run([sys.executable, "-X", "importtime", "-m", "rnnlab", "run", "--help"],
                        capture_output=True, text=True, cwd=tmp_path)  # fmt: skip
    assert ok.returncode == 0 and "usage:" in ok.stdout and "rnnlab run" in ok.stdout, ok.stderr
    imported = {line.rsplit("|", 1)[-1].strip() for line in ok.stderr.splitlines()}
    assert "rnnlab.cli" in imported and not {"torch", "xarray"} & imported  # light, as the script
    bad = subprocess.run([sys.executable, "-m", "rnnlab", "analyze", "missing.nc"],
                         capture_output=True, text=True, cwd=tmp_path)  # fmt: skip
    assert bad.returncode == 2, bad.stderr
    lines = bad.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("rnnlab: error:") and "missing.nc" in lines[0]
