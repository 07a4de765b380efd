"""Run every benchmark, one after another (each prints its own ratios)."""

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).parent
SCRIPTS = [
    "bench_train.py",
    "bench_dpsgd.py",
    "bench_lira.py",
    "bench_rmia.py",
    "bench_group_risk.py",
    "bench_audit.py",
    "bench_contention.py",
    "bench_sweep.py",
]

if __name__ == "__main__":
    for script in SCRIPTS:
        print(f"### {script}", flush=True)
        subprocess.run([sys.executable, str(HERE / script), *sys.argv[1:]], cwd=HERE, check=False)
