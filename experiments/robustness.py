"""Robustness disparity (issue 17): who is easiest to push across the decision boundary, and
does a fairness penalty or DP-SGD change who?

Adult (protected sex x age bins) and COMPAS (race x sex); per dataset the baseline MLP, the
demographic-parity-penalised one and DP-SGD at epsilon 8 and 1, trained by the audit on the
same members (the default split: half the rows audited, half of those members); the robustness stage attacks the same audited records of every model (L2 by
DeepFool, L-inf by PGD with a budget bisection; numeric features only, clipped to the
population's range; protected attributes fixed). Figures on correctly classified non-members.

Writes experiments/results/robustness_<dataset>.json (the stage's results per model) and
robustness_tables.md. Every robustness number in docs/EXPERIMENTS.md comes from here.

    python experiments/robustness.py            # recorded settings, seed 0 (2 min on 2 cores)
    python experiments/robustness.py --seed 1   # another seed (robustness_<data>_seed1.json)
    python experiments/robustness.py --seeds-table   # robustness_seeds.md from the seeds run
    python experiments/robustness.py --quick    # smoke run
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from fairleak.audit import run_audit
from fairleak.audit.config import ModelSpec, default_config
from fairleak.train import DPConfig, FairnessConfig

OUT = Path(__file__).parent / "results"
DATASETS = {
    "adult": {"protected": ["sex", "age"], "bins": {}},  # age binned at 25, 45, 65 (bundled data)
    "compas": {"protected": ["race", "sex"], "bins": {}},
}


def models() -> list[ModelSpec]:
    return [
        ModelSpec(name="baseline"),
        ModelSpec(name="fair", fairness=FairnessConfig(penalty="demographic_parity", weight=1.0)),
        ModelSpec(name="dp_eps8", dp=DPConfig(target_epsilon=8.0)),
        ModelSpec(name="dp_eps1", dp=DPConfig(target_epsilon=1.0)),
    ]


def run(dataset: str, max_audit: int | None, max_records: int, seed: int) -> dict:
    cfg = default_config()
    cfg.seed = seed
    cfg.data.dataset = dataset
    cfg.data.protected = DATASETS[dataset]["protected"]
    if DATASETS[dataset]["bins"]:
        cfg.data.bins = DATASETS[dataset]["bins"]
    cfg.split.max_audit = max_audit
    cfg.models = models()
    for s in ("attacks", "group_risk", "fd_mia", "dp_audit"):
        cfg.stages[s].enabled = False
    cfg.robustness.enabled = True
    cfg.robustness.norms = ["l2", "linf"]
    cfg.robustness.max_records = max_records
    cfg.robustness.n_bootstrap = 300
    t = time.perf_counter()
    res = run_audit(cfg)
    out = {"seconds": time.perf_counter() - t, "max_audit": max_audit, "seed": seed,
           "split": res.results["split"], "models": {}}  # fmt: skip
    for name, entry in res.results["models"].items():
        out["models"][name] = {"robustness": entry["robustness"],
                               "test_accuracy": entry["fairness"]["accuracy"]["test"],
                               "epsilon": entry["epsilon"]}  # fmt: skip
    return out


def _est(d: dict | None, key: str) -> str:
    if not d or d.get(key) is None:
        return "–"
    lo, hi = d.get(f"{key}_ci", [None, None])
    ci = f" [{lo:.2f}, {hi:.2f}]" if lo is not None and hi is not None else ""
    return f"{d[key]:.2f}{ci}"


def tables(all_res: dict[str, dict]) -> str:
    lines = []
    for ds, res in all_res.items():
        split = res["split"]
        rec = next(iter(res["models"].values()))["robustness"]
        lines.append(f"### {ds} (trained on {split['members']} members; {rec['members']} members and "
                     f"{rec['nonmembers']} non-members attacked; {res['seconds']:.0f} s)\n")  # fmt: skip
        for norm in ("l2", "linf"):
            lines.append(f"**{norm.upper()}**\n")
            lines.append("| model | test acc | median dist. | view | most brittle | least brittle | "
                         "ratio of medians [95% CI] | size vs median (Spearman) | ranking vs baseline "
                         "(Spearman, same worst) | distance MIA AUC |")  # fmt: skip
            lines.append("|---|---|---|---|---|---|---|---|---|---|")
            for name, m in res["models"].items():
                r = m["robustness"]
                g = r["norms"][norm]
                for view, disp in g["disparity"].items():
                    vs = r.get("vs_reference", {}).get(norm, {}).get(view, {})
                    sc = g["size_correlation"].get(view, {})
                    rho = "–" if sc.get("spearman") is None else f"{sc['spearman']:+.2f} ({sc['n_groups']})"
                    vrho = "–" if vs.get("spearman") is None else f"{vs['spearman']:+.2f}"
                    same = {True: "yes", False: "no", None: "–"}[vs.get("same_worst")]
                    lines.append(
                        f"| {name} | {m['test_accuracy']:.3f} | {g['overall']['median']:.2f} | {view} | "
                        f"{disp['worst'] if disp else '–'} ({disp['worst_median']:.2f}) | "
                        f"{disp['best']} ({disp['best_median']:.2f}) | {_est(disp, 'ratio')} | {rho} | "
                        f"{vrho}, {same} | {g['membership']['auc']:.3f} |" if disp else
                        f"| {name} | {m['test_accuracy']:.3f} | – | {view} | – | – | – | {rho} | – | – |"
                    )  # fmt: skip
            lines.append("")
    return "\n".join(lines)


def _file(ds: str, seed: int) -> Path:
    return OUT / (f"robustness_{ds}.json" if seed == 0 else f"robustness_{ds}_seed{seed}.json")


def seeds_table() -> str:
    """Across the seeds run so far: per dataset, model and norm, the intersection's most brittle
    group and ratio [CI] in each seed, and the ranking agreement with that seed's baseline."""
    lines = ["| data | model | norm | seed: most brittle, ratio [95% CI], Spearman vs baseline |", "|---|---|---|---|"]
    for ds in DATASETS:
        runs = {}
        for f in sorted(OUT.glob(f"robustness_{ds}*.json")):
            seed = int(f.stem.split("seed")[1]) if "seed" in f.stem else 0
            runs[seed] = json.loads(f.read_text())
        if not runs:
            continue
        first = next(iter(runs.values()))
        for name in first["models"]:
            for norm in ("l2", "linf"):
                cells = []
                for seed, res in sorted(runs.items()):
                    r = res["models"][name]["robustness"]
                    view = max(r["norms"][norm]["disparity"], key=lambda v: v.count("*"))
                    d = r["norms"][norm]["disparity"][view]
                    vs = r.get("vs_reference", {}).get(norm, {}).get(view, {}).get("spearman")
                    cells.append(f"{seed}: {d['worst']}, {_est(d, 'ratio')}"
                                 + ("" if vs is None or name == "baseline" else f", {vs:+.2f}"))  # fmt: skip
                lines.append(f"| {ds} | {name} | {norm} | " + "; ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--seeds-table", action="store_true", help="only summarise the seeds run so far")
    args = ap.parse_args()
    if args.seeds_table:
        md = seeds_table()
        (OUT / "robustness_seeds.md").write_text(md + "\n")
        print(md)
        return
    max_audit = 1000 if args.quick else None  # None: the default split (half the rows audited)
    max_records = 1000 if args.quick else 6000
    OUT.mkdir(exist_ok=True)
    all_res = {}
    for ds in DATASETS:
        all_res[ds] = run(ds, max_audit, max_records, args.seed)
        _file(ds, args.seed).write_text(json.dumps(all_res[ds], indent=1, allow_nan=False))
        print(ds, f"{all_res[ds]['seconds']:.0f} s", flush=True)
    md = tables(all_res)
    if args.seed == 0:
        (OUT / "robustness_tables.md").write_text(md)
    print(md)


if __name__ == "__main__":
    main()
