"""Wall time and peak memory of the default `fairleak audit` on Adult (goal: under 3 minutes on
2 cores), measured in a fresh process with no cache, plus a rerun that reuses the cache.

    python benchmarks/bench_audit.py [--fast]
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def run(args: list[str]) -> tuple[float, float]:
    t0 = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "fairleak.cli", "audit", *args], capture_output=True, text=True
    )
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(proc.stderr[-3000:])
    peak_mib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return wall, peak_mib


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--fast", action="store_true")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        extra = ["--fast"] if args.fast else []
        wall, peak = run(["--out", str(Path(tmp) / "out"), *extra])
        again, _ = run(["--out", str(Path(tmp) / "out"), *extra])
    kind = "--fast" if args.fast else "default"
    print(
        f"fairleak audit ({kind}, Adult, sex and race): {wall / 60:.2f} min wall, peak RSS {peak:.0f} MiB "
        "(goal: under 3 minutes on 2 cores)"
    )
    print(f"rerun from the cache: {again:.0f} s ({wall / again:.0f}x faster)")


if __name__ == "__main__":
    main()
