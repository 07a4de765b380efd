"""Optional compiled kernels: the first layer of K models on sparse inputs (one-hot tabular data).

Why by hand: one-hot encoded tables are mostly zeros (Adult: 10 non-zeros in 80 columns per
row), yet the ensemble trainer's two largest GEMMs - the first layer's forward and its weight
gradient, about half of a step - multiply by every zero. Here each row is a list of its ``J``
non-zero (column, value) pairs and the two products become J row-axpys per sample into a
model's own [D, H] weight block, which stays in L1 cache. Forward could be had from
``torch.nn.functional.embedding_bag`` (measured 2.3x faster than gather + GEMM), but no torch op
does the weight gradient fast: ``index_add_``, sparse CSR ``mm`` of the transpose and
``embedding_bag``'s own backward all measured 1.5-8x *slower* than the dense GEMM. So both
products are a few dozen lines of C, compiled at first use with the system compiler (``cc -O3
-march=native -fopenmp``, ~0.3 s) and called through ctypes on the tensors' memory: no torch
headers, no build step at install time, cached per machine under ``$FAIRLEAK_CACHE_DIR``
(default ``~/.cache/fairleak``). The weight-gradient kernel also applies DP's per-sample
clipping factors and sums the bias gradient in the same pass.

Tried and not kept: fusing a one-hidden-layer MLP's activation, margin and per-sample norms
into the same kernels measured no faster for relu (plain and DP) and 3x slower for tanh (a
hand-written vectorised exp) than these kernels plus torch's element-wise ops.

This path is optional. Without a C compiler, with ``FAIRLEAK_NATIVE=0``, or when the build
fails (a warning), the trainer uses its dense eager kernels; the two agree to float32 rounding
(the sums run in another order), tested both ways where a compiler exists.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import platform
import shutil
import subprocess
import tempfile
import threading
import warnings
from pathlib import Path

import numpy as np
import torch

__all__ = ["SparseRows", "available", "sparse_rows", "status"]

_SOURCE = r"""
#include <stdint.h>
#include <string.h>

/* out[k, m, :] = b[k, :] + sum_j vals[k, m, j] * W[k, cols[k, m, j], :] */
void sparse_forward(int64_t K, int64_t M, int64_t J, int64_t D, int64_t H,
                    const int32_t *cols, const float *vals, const float *W, const float *b,
                    float *out, int threads) {
    #pragma omp parallel for num_threads(threads) schedule(static) collapse(2)
    for (int64_t k = 0; k < K; k++) {
        for (int64_t m = 0; m < M; m++) {
            const float *Wk = W + k * D * H;
            const int32_t *c = cols + (k * M + m) * J;
            const float *v = vals + (k * M + m) * J;
            float *o = out + (k * M + m) * H;
            memcpy(o, b + k * H, H * sizeof(float));
            for (int64_t j = 0; j < J; j++) {
                const float vj = v[j];
                if (vj == 0.0f) continue;
                const float *w = Wk + (int64_t)c[j] * H;
                #pragma omp simd
                for (int64_t h = 0; h < H; h++) o[h] += vj * w[h];
            }
        }
    }
}

/* gW[k] = sum_m s_{k,m} x_{k,m}^T dz[k, m, :] with x_{k,m} the sparse row (cols, vals) and
   s the per-sample scale (DP clipping factors; NULL: 1); gb[k] = sum_m s_{k,m} dz[k, m, :]
   when gb is not NULL */
void sparse_weight_grad(int64_t K, int64_t M, int64_t J, int64_t D, int64_t H,
                        const int32_t *cols, const float *vals, const float *dz,
                        float *gW, int threads, const float *scale, float *gb) {
    #pragma omp parallel for num_threads(threads) schedule(static)
    for (int64_t k = 0; k < K; k++) {
        float *g = gW + k * D * H;
        float *gbk = gb ? gb + k * H : 0;
        memset(g, 0, D * H * sizeof(float));
        if (gbk) memset(gbk, 0, H * sizeof(float));
        for (int64_t m = 0; m < M; m++) {
            const int32_t *c = cols + (k * M + m) * J;
            const float *v = vals + (k * M + m) * J;
            const float *d = dz + (k * M + m) * H;
            const float s = scale ? scale[k * M + m] : 1.0f;
            if (s == 0.0f) continue;  /* padding, or a zero clipping factor */
            if (gbk) {
                #pragma omp simd
                for (int64_t h = 0; h < H; h++) gbk[h] += s * d[h];
            }
            for (int64_t j = 0; j < J; j++) {
                const float vj = v[j] * s;
                if (vj == 0.0f) continue;
                float *gr = g + (int64_t)c[j] * H;
                #pragma omp simd
                for (int64_t h = 0; h < H; h++) gr[h] += vj * d[h];
            }
        }
    }
}
"""

_lock = threading.Lock()
_lib: ctypes.CDLL | None = None
_tried = False
_reason = ""


def _cache_dir() -> Path:
    root = os.environ.get("FAIRLEAK_CACHE_DIR") or Path.home() / ".cache" / "fairleak"
    return Path(root) / "native"


class _NoCompiler(RuntimeError):
    pass


def _build() -> ctypes.CDLL:
    cc = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")
    if cc is None or shutil.which(cc) is None:
        raise _NoCompiler(f"no C compiler found ({cc or 'cc, gcc or clang'} not on PATH)")
    errors = []
    # -march=native where the compiler knows it (AVX-512 / AVX2 for the row loops), else portable;
    # without OpenMP (e.g. a clang without libomp) the pragmas are ignored: one thread, same sums
    for flags in (["-O3", "-march=native", "-fopenmp"], ["-O3", "-fopenmp"], ["-O3"]):
        flags = [*flags, "-fPIC", "-shared", "-std=c99"]
        # the library depends on the source, the flags, the compiler and this machine's CPU
        key = hashlib.sha256(
            "\0".join([_SOURCE, *flags, cc, platform.machine(), _cpu_signature()]).encode()
        ).hexdigest()[:16]
        path = _cache_dir() / f"fairleak_native_{key}.so"
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            with tempfile.TemporaryDirectory(dir=path.parent) as tmp:
                src, lib = Path(tmp) / "k.c", Path(tmp) / "k.so"
                src.write_text(_SOURCE)
                proc = subprocess.run([cc, *flags, str(src), "-o", str(lib)], capture_output=True, text=True)
                if proc.returncode != 0:
                    errors.append(f"{cc} {' '.join(flags)}: {proc.stderr.strip()[:300]}")
                    continue
                os.replace(lib, path)  # atomic: concurrent processes see a whole file or none
        lib = ctypes.CDLL(str(path))
        i64, ptr, c_int = ctypes.c_int64, ctypes.c_void_p, ctypes.c_int
        lib.sparse_forward.argtypes = [i64] * 5 + [ptr] * 5 + [c_int]
        lib.sparse_weight_grad.argtypes = [i64] * 5 + [ptr] * 4 + [c_int, ptr, ptr]
        return lib
    raise RuntimeError("; ".join(errors))


def _cpu_signature() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith(("flags", "Features")):
                return line
    except OSError:
        pass
    return platform.processor()


def _disabled() -> bool:
    return os.environ.get("FAIRLEAK_NATIVE", "1").strip().lower() in ("0", "false", "no", "off")


def available() -> bool:
    """Whether the compiled kernels can be used here (builds them on the first call).

    ``FAIRLEAK_NATIVE=0`` turns them off. Without a C compiler the dense eager kernels are used
    quietly (:func:`status` says why); a compiler that fails warns once. Either way results are
    the same up to float32 rounding, only slower on one-hot data."""
    global _lib, _tried, _reason
    if _disabled():
        return False
    with _lock:
        if not _tried:
            _tried = True
            try:
                _lib = _build()
                _reason = ""
            except _NoCompiler as exc:
                _reason = str(exc)
            except Exception as exc:  # any failure means: use the eager path
                _reason = str(exc)
                warnings.warn(
                    f"fairleak's compiled sparse kernels are unavailable ({_reason}); using the "
                    "dense eager kernels (same results up to float32 rounding, slower on one-hot data).",
                    RuntimeWarning,
                    stacklevel=2,
                )
    return _lib is not None


def status() -> str:
    """Which first-layer kernels training uses here, and why."""
    if _disabled():
        return "dense eager kernels (FAIRLEAK_NATIVE=0)"
    if available():
        return "compiled sparse first-layer kernels (one-hot inputs)"
    return f"dense eager kernels ({_reason})"


def _ptr(t: torch.Tensor) -> int:
    return t.data_ptr()


class SparseRows:
    """Rows of X as J (column, value) pairs each (zero-padded): ``cols`` int32 [N, J], ``vals``
    float32 [N, J]; gathered per batch and fed to the compiled first-layer kernels."""

    def __init__(self, X: torch.Tensor, J: int) -> None:
        Xn = X.numpy()
        nz = Xn != 0
        # the non-zero columns of each row first, in column order (a stable sort of the mask)
        order = np.argsort(~nz, axis=1, kind="stable")[:, :J]
        self.cols = torch.from_numpy(order.astype(np.int32))
        self.vals = torch.from_numpy(np.take_along_axis(Xn, order, axis=1).astype(np.float32))
        self.J = J
        self.D = X.shape[1]

    def gather(self, idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(cols, vals) of the rows ``idx`` [k, M]: [k, M, J] each, contiguous."""
        k, M = idx.shape
        flat = idx.reshape(-1)
        cols = torch.index_select(self.cols, 0, flat).view(k, M, self.J)
        vals = torch.index_select(self.vals, 0, flat).view(k, M, self.J)
        return cols, vals

    def forward(
        self,
        rows: tuple[torch.Tensor, torch.Tensor],
        W: torch.Tensor,
        b: torch.Tensor,
        out: torch.Tensor,
    ) -> torch.Tensor:
        """out = x W + b for every model's sparse batch ([k, M, H])."""
        cols, vals = rows
        k, M, J = cols.shape
        H = W.shape[2]
        assert W.is_contiguous() and b.is_contiguous() and out.is_contiguous() and _lib is not None
        _lib.sparse_forward(k, M, J, self.D, H, _ptr(cols), _ptr(vals), _ptr(W), _ptr(b),
                            _ptr(out), torch.get_num_threads())  # fmt: skip
        return out

    def weight_grad_into(
        self,
        rows: tuple[torch.Tensor, torch.Tensor],
        dz: torch.Tensor,
        out: torch.Tensor,
        *,
        scale: torch.Tensor | None = None,
        bias_out: torch.Tensor | None = None,
    ) -> None:
        """out[k] = sum_m scale[k, m] x_km^T dz_km, [k, D, H] (overwritten); with ``bias_out``
        [k, H], also the bias gradient sum_m scale[k, m] dz_km. ``scale``: per-sample factors
        (DP clipping; default 1)."""
        cols, vals = rows
        k, M, J = cols.shape
        dz = dz.contiguous()
        assert out.is_contiguous() and _lib is not None
        sc = None if scale is None else scale.contiguous()
        assert bias_out is None or bias_out.is_contiguous()
        _lib.sparse_weight_grad(k, M, J, self.D, out.shape[2], _ptr(cols), _ptr(vals), _ptr(dz),
                                _ptr(out), torch.get_num_threads(),
                                None if sc is None else _ptr(sc),
                                None if bias_out is None else _ptr(bias_out))  # fmt: skip


def sparse_rows(X: torch.Tensor, hidden: int, *, max_density: float = 0.25) -> SparseRows | None:
    """A :class:`SparseRows` of X when the compiled kernels apply and pay: X has at most
    ``max_density`` of its columns non-zero in every row, a hidden first layer, and the kernels
    build here. None otherwise (the dense path)."""
    if hidden <= 0 or X.ndim != 2 or X.shape[0] == 0 or X.dtype != torch.float32:
        return None
    global _last
    last = _last
    if last is not None and last[0].shape == X.shape and torch.equal(last[0], X):
        return last[1] if available() else None  # an audit trains many sets on the same rows
    J = int((X != 0).sum(1).max())
    if J > max_density * X.shape[1] or not available():
        return None
    rows = SparseRows(X, max(J, 1))
    _last = (X.clone(), rows)  # a copy: the caller's array may change in place
    return rows


_last: tuple[torch.Tensor, SparseRows] | None = None
