"""Optional compiled kernels: the first layer of K models on sparse inputs (one-hot tabular data).

Why by hand: one-hot encoded tables are mostly zeros (Adult: 10 non-zeros in 80 columns per
row), yet the ensemble trainer's two largest GEMMs - the first layer's forward and its weight
gradient, about 60% of a step - multiply by every zero. Here each row is a list of its
``J`` non-zero (column, value) pairs and the two products become J row-axpys per sample into a
model's own [D, H] weight block, which stays in L1 cache. Forward could be had from
``torch.nn.functional.embedding_bag`` (measured 2.3x faster than gather + GEMM), but no torch op
does the weight gradient fast: ``index_add_``, sparse CSR ``mm`` of the transpose and
``embedding_bag``'s own backward all measured 1.5-8x *slower* than the dense GEMM. So both
products are ~40 lines of C, compiled at first use with the system compiler (``cc -O3
-march=native -fopenmp``, about a second) and called through ctypes on the tensors' memory:
no torch headers, no build step at install time, cached per machine under
``$FAIRLEAK_CACHE_DIR`` (default ``~/.cache/fairleak``).

This path is optional. Without a C compiler, on a platform where loading fails, or with
``FAIRLEAK_NATIVE=0``, the trainer uses its dense eager kernels; the two agree to float32
rounding (the sums run in another order), tested both ways where a compiler exists.
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

__all__ = ["FUSED_ACTIVATIONS", "SparseRows", "available", "sparse_rows", "status"]

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

/* exp(x) for float32 without libm, so that the loops around it vectorise (Cody-Waite range
   reduction and a degree-6 polynomial, as in Cephes' expf; relative error ~2e-7). The argument
   is clamped to [-80, 80]: the sigmoid and tanh built on it are then exactly 0 / +-1 in float32
   where they saturate, and no result or intermediate is subnormal (subnormals cost a microcode
   assist each: saturated tanh units of an SGD-trained MLP made a step 15x slower). */
static inline float fl_exp(float x) {
    x = x > 80.0f ? 80.0f : (x < -80.0f ? -80.0f : x);
    float n = __builtin_floorf(x * 1.44269504088896341f + 0.5f);
    float r = x - n * 0.693359375f + n * 2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * r * r + r + 1.0f;
    union { float f; int32_t i; } u;
    u.i = ((int32_t)n + 127) << 23;
    return p * u.f;
}

/* One hidden layer on sparse rows, forward: h = act(x W + b) [K, M, H] and the margin
   h . wd + bd [K, M] (the 2-logit output's z1 - z0); act 0 relu, 1 tanh, 2 sigmoid.
   h_sq (not NULL): ||h||^2 per sample, for DP's ghost norms. */
void mlp1_forward(int64_t K, int64_t M, int64_t J, int64_t D, int64_t H,
                  const int32_t *cols, const float *vals, const float *W, const float *b,
                  const float *wd, const float *bd, int act, float *h_out, float *margin,
                  float *h_sq, int threads) {
    #pragma omp parallel for num_threads(threads) schedule(static) collapse(2)
    for (int64_t k = 0; k < K; k++) {
        for (int64_t m = 0; m < M; m++) {
            const float *Wk = W + k * D * H;
            const int32_t *c = cols + (k * M + m) * J;
            const float *v = vals + (k * M + m) * J;
            float *o = h_out + (k * M + m) * H;
            const float *wdk = wd + k * H;
            memcpy(o, b + k * H, H * sizeof(float));
            for (int64_t j = 0; j < J; j++) {
                const float vj = v[j];
                if (vj == 0.0f) continue;
                const float *w = Wk + (int64_t)c[j] * H;
                #pragma omp simd
                for (int64_t h = 0; h < H; h++) o[h] += vj * w[h];
            }
            float mg = 0.0f, sq = 0.0f;
            if (act == 0) {
                #pragma omp simd reduction(+:mg, sq)
                for (int64_t h = 0; h < H; h++) {
                    float a = o[h] > 0.0f ? o[h] : 0.0f;
                    o[h] = a; mg += a * wdk[h]; sq += a * a;
                }
            } else if (act == 1) {  /* tanh(z) = 2 sigmoid(2z) - 1 */
                #pragma omp simd reduction(+:mg, sq)
                for (int64_t h = 0; h < H; h++) {
                    float a = 2.0f / (1.0f + fl_exp(-2.0f * o[h])) - 1.0f;
                    o[h] = a; mg += a * wdk[h]; sq += a * a;
                }
            } else {
                #pragma omp simd reduction(+:mg, sq)
                for (int64_t h = 0; h < H; h++) {
                    float a = 1.0f / (1.0f + fl_exp(-o[h]));
                    o[h] = a; mg += a * wdk[h]; sq += a * a;
                }
            }
            margin[k * M + m] = mg + bd[k];
            if (h_sq) h_sq[k * M + m] = sq;
        }
    }
}

/* Backward to the hidden pre-activation: dz = d * wd * act'(h) [K, M, H] from the margin's
   gradient d [K, M]; dz_sq (not NULL): ||dz||^2 per sample. */
void mlp1_backward(int64_t K, int64_t M, int64_t H, const float *d, const float *wd,
                   const float *h_in, int act, float *dz, float *dz_sq, int threads) {
    #pragma omp parallel for num_threads(threads) schedule(static) collapse(2)
    for (int64_t k = 0; k < K; k++) {
        for (int64_t m = 0; m < M; m++) {
            const float dm = d[k * M + m];
            const float *wdk = wd + k * H;
            const float *a = h_in + (k * M + m) * H;
            float *g = dz + (k * M + m) * H;
            float sq = 0.0f;
            if (act == 0) {
                #pragma omp simd reduction(+:sq)
                for (int64_t h = 0; h < H; h++) {
                    float t = a[h] > 0.0f ? dm * wdk[h] : 0.0f; g[h] = t; sq += t * t;
                }
            } else if (act == 1) {
                #pragma omp simd reduction(+:sq)
                for (int64_t h = 0; h < H; h++) {
                    float t = dm * wdk[h] * (1.0f - a[h] * a[h]); g[h] = t; sq += t * t;
                }
            } else {
                #pragma omp simd reduction(+:sq)
                for (int64_t h = 0; h < H; h++) {
                    float t = dm * wdk[h] * a[h] * (1.0f - a[h]); g[h] = t; sq += t * t;
                }
            }
            if (dz_sq) dz_sq[k * M + m] = sq;
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
    # -march=native where the compiler knows it (AVX-512 / AVX2 for the row loops), else portable
    for flags in (["-O3", "-march=native"], ["-O3"]):
        flags = [*flags, "-fopenmp", "-fPIC", "-shared", "-std=c99"]
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
        lib.mlp1_forward.argtypes = [i64] * 5 + [ptr] * 6 + [c_int, ptr, ptr, ptr, c_int]
        lib.mlp1_backward.argtypes = [i64] * 3 + [ptr] * 3 + [c_int, ptr, ptr, c_int]
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


def available() -> bool:
    """Whether the compiled kernels can be used here (builds them on the first call).

    ``FAIRLEAK_NATIVE=0`` turns them off. Without a C compiler the dense eager kernels are used
    quietly (:func:`status` says why); a compiler that fails warns once. Either way results are
    the same up to float32 rounding, only slower on one-hot data."""
    global _lib, _tried, _reason
    if os.environ.get("FAIRLEAK_NATIVE", "1").strip().lower() in ("0", "false", "no", "off"):
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
    if os.environ.get("FAIRLEAK_NATIVE", "1").strip().lower() in ("0", "false", "no", "off"):
        return "dense eager kernels (FAIRLEAK_NATIVE=0)"
    if available():
        return "compiled sparse kernels (one-hot inputs, one hidden layer fused)"
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

    def mlp1_forward(
        self,
        rows: tuple[torch.Tensor, torch.Tensor],
        W: torch.Tensor,
        b: torch.Tensor,
        wd: torch.Tensor,
        bd: torch.Tensor,
        act: str,
        h_out: torch.Tensor,
        margin_out: torch.Tensor,
        h_sq: torch.Tensor | None = None,
    ) -> None:
        """One hidden layer, fused: h = act(x W + b) into ``h_out`` [k, M, H], the margin
        h . wd + bd into ``margin_out`` [k, M], and ||h||^2 per sample into ``h_sq``."""
        cols, vals = rows
        k, M, J = cols.shape
        for t in (W, b, wd, bd, h_out, margin_out):
            assert t.is_contiguous()
        _lib.mlp1_forward(k, M, J, self.D, W.shape[2], _ptr(cols), _ptr(vals), _ptr(W), _ptr(b),
                          _ptr(wd), _ptr(bd), FUSED_ACTIVATIONS[act], _ptr(h_out), _ptr(margin_out),
                          None if h_sq is None else _ptr(h_sq), torch.get_num_threads())  # fmt: skip

    @staticmethod
    def mlp1_backward(
        d: torch.Tensor,
        wd: torch.Tensor,
        h: torch.Tensor,
        act: str,
        dz_out: torch.Tensor,
        dz_sq: torch.Tensor | None = None,
    ) -> None:
        """dz = d wd act'(h) into ``dz_out`` [k, M, H]; ||dz||^2 per sample into ``dz_sq``."""
        k, M, H = h.shape
        d = d.contiguous()
        for t in (wd, h, dz_out):
            assert t.is_contiguous()
        _lib.mlp1_backward(k, M, H, _ptr(d), _ptr(wd), _ptr(h), FUSED_ACTIVATIONS[act],
                           _ptr(dz_out), None if dz_sq is None else _ptr(dz_sq),
                           torch.get_num_threads())  # fmt: skip


#: Activations the fused one-hidden-layer kernels implement (their code in the C source).
FUSED_ACTIVATIONS = {"relu": 0, "tanh": 1, "sigmoid": 2}


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
