"""analyze() of an archive three times larger than a memory cap stays under the cap."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

from rnnlab.analysis.synthetic import Planted, planted, write_archive

# Peak RSS during the analysis, above the RSS of the warmed-up process (imports, OpenBLAS
# buffers, HDF5 caches and a first small analysis already paid for), must stay below
# file size / CAP_FRACTION.
CAP_FRACTION = 3

CHILD = textwrap.dedent(
    """
    import json, sys
    import rnnlab
    import rnnlab.analysis as ra

    def hwm_mb():
        # peak RSS of this process image (VmHWM). getrusage's ru_maxrss would also count the
        # parent's RSS at fork (Linux keeps it across exec), hiding the child's own peak.
        with open("/proc/self/status") as fh:
            kb = next(line.split()[1] for line in fh if line.startswith("VmHWM"))
        return int(kb) / 1024

    ds = rnnlab.open_archive(sys.argv[1])
    ra.compute(ra.analyze(ds.isel(epoch=slice(0, 3))), progress=False)  # warm-up
    base = hwm_mb()
    with open("/proc/self/clear_refs", "w") as fh:
        fh.write("5")  # reset VmHWM to the current RSS
    res = ra.compute(ra.analyze(ds, rank=2, k=2), scheduler="threads", progress=False)
    m = res.m.isel(epoch=-1).values
    print(json.dumps({"base": base, "peak": hwm_mb(), "m": m.tolist(),
                      "kappa": res.kappa.isel(epoch=-1).values.tolist()}))
    """
)


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/status")
def test_analyze_big_archive_within_memory_cap(tmp_path):
    p = Planted(n=384, m=(3.0, 2.0), noise=0.5, kappa=0.1, n_input=3, n_output=2)
    path = write_archive(
        planted(p, n_seed=4, epochs=tuple(range(80)), spectra=False), tmp_path / "big.nc"
    )
    size_mb = path.stat().st_size / 2**20
    assert size_mb > 180
    out = subprocess.run(
        [sys.executable, "-c", CHILD, str(path)], capture_output=True, text=True, timeout=300
    )
    assert out.returncode == 0, out.stderr[-2000:]
    res = json.loads(out.stdout.strip().splitlines()[-1])
    cap = size_mb / CAP_FRACTION
    print(
        f"archive {size_mb:.0f} MB, cap {cap:.0f} MB, peak above warm-up "
        f"{res['peak'] - res['base']:.0f} MB (warm-up {res['base']:.0f} MB)"
    )
    assert res["peak"] - res["base"] < cap, (res, size_mb)
    # it really analysed the data: planted m (noise shifts singular values by O(noise^2/m))
    assert all(abs(a - 3.0) < 0.2 and abs(b - 2.0) < 0.2 for a, b in res["m"])
    assert all(abs(k - 0.1) < 0.02 for k in res["kappa"])
