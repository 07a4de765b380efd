"""What the dp_audit stage adds to an audit: its own time as a share of the rest of the same
audit (one process, same data, no cache), and the bounds it finds per model.

    python benchmarks/bench_dp_audit.py [--fast] [--runs K] [--canaries M]

The stage is enabled by default only if this share stays under ~15% of the default audit.
"""

from __future__ import annotations

import argparse
import time

from fairleak.audit import default_config, run_audit
from fairleak.audit.stages import STAGES


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--fast", action="store_true")
    ap.add_argument("--runs", type=int, default=None)
    ap.add_argument("--canaries", type=int, default=None)
    ap.add_argument("--multi-run-models", type=int, default=0)
    args = ap.parse_args()
    cfg = default_config(fast=args.fast)
    cfg.dp_audit.enabled = True
    if args.runs:
        cfg.dp_audit.runs = args.runs
    if args.canaries:
        cfg.dp_audit.canaries = args.canaries
    cfg.dp_audit.multi_run_models = args.multi_run_models

    stage = STAGES["dp_audit"]
    spent: dict[str, float] = {}
    inner = stage.run

    def timed_run(ctx, section):  # the stage's own time inside the audit
        t0 = time.perf_counter()
        out = inner(ctx, section)
        spent["dp_audit"] = time.perf_counter() - t0
        return out

    stage.run = timed_run  # type: ignore[method-assign]
    t0 = time.perf_counter()
    res = run_audit(cfg, use_cache=False)
    total = time.perf_counter() - t0
    own = spent["dp_audit"]
    d = cfg.dp_audit
    kind = "--fast" if args.fast else "default"
    print(f"audit ({kind}) with dp_audit (runs {d.runs} x {d.canaries} canaries, multi-run models "
          f"{d.multi_run_models}): {total:.0f} s, of which dp_audit {own:.0f} s = "
          f"{own / (total - own):.0%} of the rest of the audit")  # fmt: skip
    for name, m in res.results["models"].items():
        r = m.get("dp_audit", {})
        if "one_run" in r:
            acc = r["accountant_epsilon"]
            print(f"  {name:14s} accountant eps {acc if acc is not None else '-':>8} | one-run bound "
                  f"{r['one_run']['value']:.2f} (ceiling {r['one_run']['ceiling']:.2f}, "
                  f"{r['one_run']['v']}/{r['one_run']['r']} right)")  # fmt: skip


if __name__ == "__main__":
    main()
