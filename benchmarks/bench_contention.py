"""`fairleak audit --fast` alone and beside two busy single-thread processes (the machine's two
cores taken): the ratio of the wall times (goal: at most 2.5x; a fair share of two cores
between three processes would give about 1.5-2x). Each run is a fresh process with no cache and
the default thread count (fairleak.threads: the cores this process may use, at most
OMP_NUM_THREADS), so it measures what a user gets from `fairleak audit --fast` on a busy machine.

    python benchmarks/bench_contention.py [--repeats 1] [--busy 2]
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def _spin(stop: mp.Event) -> None:  # a busy single-thread process
    x = 0
    while not stop.is_set():
        for _ in range(100_000):
            x += 1


def run_fast(out: Path, extra: list[str]) -> float:
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "MKL_NUM_THREADS")}
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "fairleak.cli", "audit", "--fast", "--no-cache",
                           "--out", str(out), *extra], capture_output=True, text=True, env=env)  # fmt: skip
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(proc.stderr[-3000:])
    return wall


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--busy", type=int, default=2, help="busy single-thread processes beside it")
    ap.add_argument("--threads", type=int, default=None, help="pass --threads N (default: fairleak's own choice)")
    ap.add_argument("--skip-alone", action="store_true", help="only the run beside the busy processes")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        alone, loaded = [], []
        for r in range(args.repeats):
            extra = [] if args.threads is None else ["--threads", str(args.threads)]
            if not args.skip_alone:
                alone.append(run_fast(Path(tmp) / f"a{r}", extra))
                print(f"alone: {alone[-1]:.1f} s", flush=True)
            stop = mp.Event()
            procs = [mp.Process(target=_spin, args=(stop,), daemon=True) for _ in range(args.busy)]
            for p in procs:
                p.start()
            try:
                loaded.append(run_fast(Path(tmp) / f"b{r}", extra))
                print(f"beside {args.busy} busy: {loaded[-1]:.1f} s", flush=True)
            finally:
                stop.set()
                for p in procs:
                    p.join(5)
    b = min(loaded)
    if not alone:
        return
    a = min(alone)
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    print(f"fairleak audit --fast (Adult): alone {a:.1f} s, beside {args.busy} busy single-thread "
          f"process(es) {b:.1f} s: {b / a:.2f}x (goal <= 2.5x; {cores} core(s) available, "
          f"best of {args.repeats})")  # fmt: skip


if __name__ == "__main__":
    main()
