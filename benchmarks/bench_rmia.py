"""RMIA scores for 50,000 audit x 50,000 population points: sorted counting vs the N x M matrix.

The N x M approach (Privacy Meter's) is timed and its memory measured on a slice of the audit
points (the full matrix of 2.5e9 comparisons would need ~2.5 GB as booleans, 20 GB as float64
ratios) and extrapolated linearly; the output says so.

    python benchmarks/bench_rmia.py [--n 50000] [--m 50000] [--slice 2000]
"""

from __future__ import annotations

import argparse
import tracemalloc

import numpy as np
from _common import header, timed

from fairleak.attacks import rmia_scores, rmia_scores_direct


def peak_bytes(fn) -> tuple[float, object]:
    tracemalloc.start()
    out = fn()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak, out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=50_000)
    ap.add_argument("--m", type=int, default=50_000)
    ap.add_argument("--slice", type=int, default=2_000)
    args = ap.parse_args()
    header("RMIA: sorted counting vs N x M")
    rng = np.random.default_rng(0)
    lr_x, lr_z = rng.lognormal(size=args.n), rng.lognormal(size=args.m)
    t_sorted, s = timed(lambda: rmia_scores(lr_x, lr_z, 1.0), 3)
    mem_sorted, _ = peak_bytes(lambda: rmia_scores(lr_x, lr_z, 1.0))
    k = args.slice
    t_slice, d = timed(lambda: rmia_scores_direct(lr_x[:k], lr_z, 1.0), 3)
    mem_slice, _ = peak_bytes(lambda: rmia_scores_direct(lr_x[:k], lr_z, 1.0))
    assert np.array_equal(s[:k], d), "sorted counting must equal the matrix"
    t_direct = t_slice * args.n / k
    mem_direct = mem_slice * args.n / k
    print(
        f"{args.n} audit x {args.m} population points; N x M measured on {k} audit points and "
        "extrapolated linearly (time and memory grow with N at fixed M)"
    )
    print(f"time: N x M / sorted = {t_direct / t_sorted:.0f}x")
    print(
        f"peak memory: N x M / sorted = {mem_direct / mem_sorted:.0f}x "
        f"(sorted: {mem_sorted / 2**20:.1f} MiB; N x M: ~{mem_direct / 2**30:.1f} GiB)"
    )
    print("scores identical on the measured slice: yes")


if __name__ == "__main__":
    main()
