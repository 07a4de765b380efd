"""Shared helpers of the benchmark scripts: Adult features and a timer.

Benchmarks print ratios against the conventional way, measured in one process on the same data;
absolute seconds on shared machines are noise.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np
import torch


def adult_features() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Adult (45,222 rows) one-hot + standardised, labels, and sex codes (1 = Male)."""
    from fairleak.data import TabularPreprocessor, load_dataset

    ds = load_dataset("adult")
    X = TabularPreprocessor().fit_transform(ds.features)
    sex = (ds.sensitive["sex"].to_numpy() == "Male").astype(np.int64)
    return X, ds.y.copy(), sex


def timed(fn: Callable[[], object], repeats: int = 1) -> tuple[float, object]:
    """Best wall time of ``repeats`` runs and the last result."""
    best, out = float("inf"), None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def matmul_gflops(n: int = 2048, repeats: int = 5) -> float:
    """GFLOP/s of a large fp32 matmul on this machine, as the roofline to compare with."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b
    t, _ = timed(lambda: a @ b, repeats)
    return 2 * n**3 / t / 1e9


def header(title: str) -> None:
    print(f"== {title} (torch {torch.__version__}, {torch.get_num_threads()} threads)")
