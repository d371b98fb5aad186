"""BLAS/LAPACK for numba kernels: the Fortran GEMM and eigensolver that torch's CPU library exports.

torch's x86-64 wheels link MKL and export its Fortran symbols (`sgemm_`, `dgemm_`, `dgeev_`).
Loaded into LLVM's symbol table once, compiled code calls them by name, also when loaded from
numba's on-disk cache. Called sequentially from each thread, MKL's GEMM ran the (32, 256) x
(256, 256) step shape at 150-190 GFLOP/s per core, against 87 for the OpenBLAS behind numba's
`np.dot`. `available()` is False where torch exports no such symbols (callers then fall back).
All arguments are passed by reference, as Fortran expects; row-major matrices are handed over as
their column-major transposes.
"""

from __future__ import annotations

import ctypes
import importlib.util
import os

import llvmlite.binding
import numba
import numpy as np
from numba.core import types
from numba.extending import overload

_SYMBOLS = ("sgemm_", "dgemm_", "dgeev_")


def torch_blas_library() -> str | None:
    """Path of torch's CPU library if it exports the Fortran GEMMs and dgeev_, else None.
    Found without importing torch (the spectra layer uses these kernels and stays torch-free)."""
    spec = importlib.util.find_spec("torch")
    if spec is None or not spec.submodule_search_locations:
        return None
    lib_dir = os.path.join(spec.submodule_search_locations[0], "lib")
    for name in ("libtorch_cpu.so", "libtorch_cpu.dylib"):
        path = os.path.join(lib_dir, name)
        if os.path.exists(path):
            try:
                lib = ctypes.CDLL(path)
            except OSError:
                return None
            return path if all(hasattr(lib, sym) for sym in _SYMBOLS) else None
    return None


_BLAS_PATH = torch_blas_library()
if _BLAS_PATH is not None:  # compiled code then finds the symbols by name, also from the cache
    llvmlite.binding.load_library_permanently(_BLAS_PATH)
_GEMM_TYPE = types.void(*([types.voidptr] * 13))
_sgemm = types.ExternalFunction("sgemm_", _GEMM_TYPE)
_dgemm = types.ExternalFunction("dgemm_", _GEMM_TYPE)


def available() -> bool:
    """Whether kernels using these routines can run here (torch exports them)."""
    return _BLAS_PATH is not None


def gemm_call(*args):  # pragma: no cover (typed by the overload below)
    raise NotImplementedError


@overload(gemm_call)
def _gemm_call_overload(kind, *args):
    if isinstance(kind, types.Float) and kind.bitwidth == 32:
        return lambda kind, *args: _sgemm(*args)
    return lambda kind, *args: _dgemm(*args)


@numba.njit(error_model="numpy")
def gemm_scratch(dtype_of, m, k, n):  # pragma: no cover (jit)
    """The by-reference arguments of `matmul` for out (m, n) = a (m, k) @ b: ints (n, m, k),
    scalars (1, 0) in dtype_of's dtype, ops ('N', 'T')."""
    ints = np.empty(3, np.int32)
    ints[0], ints[1], ints[2] = n, m, k
    scal = np.empty(2, dtype_of.dtype)
    scal[0], scal[1] = 1, 0
    ops = np.empty(2, np.uint8)
    ops[0], ops[1] = 78, 84  # 'N', 'T'
    return ints, scal, ops


@numba.njit(error_model="numpy")
def matmul(a, b, out, scratch, trans_b):  # pragma: no cover (jit)
    """out = a @ b (trans_b False: b is (k, n)) or a @ b^T (trans_b True: b is (n, k)), all
    C-contiguous, computed as the column-major out^T = op(b)^T a^T; scratch from gemm_scratch."""
    ints, scal, ops = scratch
    op_b = ops[1:] if trans_b else ops[0:1]
    ld_b = ints[2:] if trans_b else ints[0:]
    gemm_call(
        scal[0], op_b.ctypes, ops.ctypes, ints[0:].ctypes, ints[1:].ctypes, ints[2:].ctypes,
        scal[0:].ctypes, b.ctypes, ld_b.ctypes, a.ctypes, ints[2:].ctypes,
        scal[1:].ctypes, out.ctypes, ints[0:].ctypes,
    )  # fmt: skip


_GEEV_TYPE = types.void(*([types.voidptr] * 14))
_dgeev = types.ExternalFunction("dgeev_", _GEEV_TYPE)


@numba.njit(error_model="numpy")
def eigvals_real(a, wr, wi, work, ints):  # pragma: no cover (jit)
    """Eigenvalues (wr + i wi) of the float64 C-contiguous square matrix a (overwritten; those
    of a^T, which are the same). work: float64 of >= 4 n; ints: int32 of >= 4. Returns LAPACK's
    info (0 = success). Conjugate pairs come out exactly conjugate, +imag first."""
    n = a.shape[0]
    ints[0], ints[1], ints[2], ints[3] = n, 1, work.size, 0  # n, ld of the unused vectors, lwork
    op = np.empty(1, np.uint8)
    op[0] = 78  # 'N': no eigenvectors
    _dgeev(
        op.ctypes, op.ctypes, ints[0:].ctypes, a.ctypes, ints[0:].ctypes, wr.ctypes, wi.ctypes,
        work.ctypes, ints[1:].ctypes, work.ctypes, ints[1:].ctypes, work.ctypes, ints[2:].ctypes,
        ints[3:].ctypes,
    )  # fmt: skip
    return ints[3]
