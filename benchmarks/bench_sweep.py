"""A 50-candidate sweep on Adult (MLP fairness weights x DP epsilons): the sweep as
``fairleak sweep`` runs it (candidates that differ only in the penalty weight trained as one
ensemble, then fairness, threshold attacks, the front and its bootstrap) vs the same candidates
trained one by one (each its own ``train_ensemble`` call, as an audit trains its models without
grouping), in one process on the same data and split.

    python benchmarks/bench_sweep.py [--weights 10] [--epsilons none,1,2,4,8] [--epochs 10]
                                     [--sample 0] [--max-audit N]

``--sample k`` times only k candidates of each kind (private / not) one by one and extrapolates
(say so when quoting); 0 times all of them.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from _common import header

from fairleak.audit.config import default_config
from fairleak.audit.data import prepare_data
from fairleak.audit.pipeline import build_targets
from fairleak.audit.recipes import batches
from fairleak.audit.seeds import named_seed
from fairleak.audit.sweep import SweepGrid, run_sweep, sweep_config
from fairleak.train import model_seeds

WEIGHTS = [0.0, 0.25, 0.5, 1.0, 1.5, 2.0, 3.0, 5.0, 7.0, 10.0]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--weights", type=int, default=10, help="how many fairness weights (of a fixed list)")
    ap.add_argument("--epsilons", default="none,1,2,4,8")
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--sample", type=int, default=0)
    ap.add_argument("--max-audit", type=int, default=None)
    args = ap.parse_args()
    header("Sweep: 50 candidates in a few ensembles vs one by one")
    eps = [None if e.strip().lower() == "none" else float(e) for e in args.epsilons.split(",")]
    grid = SweepGrid(fairness_weights=WEIGHTS[: args.weights], epsilons=eps)
    cfg = default_config().model_copy(update={"models": []})
    cfg.train = cfg.train.model_copy(update={"epochs": args.epochs})
    cfg.split.max_audit = args.max_audit
    cfg.fairness.n_bootstrap = 200
    scfg = sweep_config(cfg, grid, front={"n_bootstrap": 200})
    n = len(scfg.models)

    t0 = time.perf_counter()
    res = run_sweep(cfg, grid, front={"n_bootstrap": 200}, use_cache=False)
    t_sweep = time.perf_counter() - t0

    # The candidates' training alone, grouped (as the sweep does) and one by one.
    data = prepare_data(scfg)
    _ = data.inputs.matrix  # encode once, outside the timings
    targets = build_targets(scfg, data)
    recipes = [t.recipe for t in targets.values()]
    rows = data.members
    seed = model_seeds(named_seed(scfg.seed, "target"), 1)
    groups = batches(recipes)
    ones = np.ones((1, len(rows)), dtype=bool)
    t0 = time.perf_counter()
    together = {}
    for g in groups:
        fitted = type(recipes[g[0]]).fit_batch([recipes[i] for i in g], data.inputs, rows, ones, seed)
        together.update(zip(g, fitted, strict=True))
    t_together = time.perf_counter() - t0

    private = [i for i, r in enumerate(recipes) if r.private]
    public = [i for i in range(n) if i not in private]
    timed_idx = (
        [*public[: args.sample], *private[: args.sample]] if args.sample else list(range(n))
    )
    per: dict[int, float] = {}
    max_diff = 0.0
    for i in timed_idx:
        t0 = time.perf_counter()
        alone = recipes[i].fit(data.inputs, rows, ones, seed)
        per[i] = time.perf_counter() - t0
        a = alone.outputs(data.inputs, data.nonmembers).proba
        b = together[i].outputs(data.inputs, data.nonmembers).proba
        max_diff = max(max_diff, float(np.abs(a - b).max()))
    mean = {
        kind: np.mean([per[i] for i in idx if i in per]) if any(i in per for i in idx) else 0.0
        for kind, idx in (("public", public), ("private", private))
    }
    t_alone = len(public) * mean["public"] + len(private) * mean["private"]
    t_rest = t_sweep - t_together  # data, fairness, attacks, front: the same either way

    d = res.results["split"]
    print(f"{n} candidates: MLP 64 hidden, {args.epochs} epochs, weights {grid.fairness_weights} x "
          f"epsilons {eps}; Adult, {d['members']} members, {d['nonmembers']} non-members")  # fmt: skip
    print(f"groups trained together: {[len(g) for g in groups]} ({len(groups)} ensemble calls)")
    how = "all timed" if not args.sample else f"{len(timed_idx)} timed, extrapolated by kind"
    print(f"one by one ({how}): {t_alone:.1f} s; together: {t_together:.1f} s "
          f"-> training {t_alone / t_together:.1f}x faster; same models (max |p diff| {max_diff:.1e})")  # fmt: skip
    print(f"whole sweep (train + fairness + threshold attacks + front with 200 resamples): {t_sweep:.1f} s "
          f"(of which measuring {t_rest:.1f} s); with one-by-one training it would be "
          f"{t_rest + t_alone:.1f} s -> {(t_rest + t_alone) / t_sweep:.1f}x")  # fmt: skip
    front = res.results["front"]
    print(f"front: {len(front['front'])} of {n} candidates; chosen (knee): {front['selected']}")


if __name__ == "__main__":
    main()
