"""The accuracy-fairness-privacy front on Adult (sex, race) and COMPAS (race, sex), and how often
the most accurate fair model is also the leakiest (issue 15).

Each run is one ``fairleak sweep`` (``fairleak.audit.sweep.run_sweep``, the same code as the CLI):
MLPs (256 tanh-free ReLU units) for every demographic-parity weight x DP epsilon and FairBoost
for every number of rounds under two constraints, all trained on the same members and measured
on the same non-members. Sized for 2 busy cores and for models that memorise (as the study's
FD-MIA setting): 1,000 members, 1,000 non-members, the rest the attacker's population. Leakage:
the strongest of the threshold attacks and offline RMIA with reference models trained with each
candidate's own recipe. Objectives: error, worst equalized-odds gap over attributes and their
intersection, strongest attack AUC - 0.5.

Writes experiments/results/sweep_front.json (every candidate of every run) and
sweep_front_tables.md. Every sweep number in docs/EXPERIMENTS.md comes from here.

    python experiments/sweep_front.py            # recorded settings (about 10 minutes on 2 busy cores)
    python experiments/sweep_front.py --quick    # smoke run
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
from scipy.stats import spearmanr

from fairleak.audit.config import default_config
from fairleak.audit.sweep import SWEEP_ATTACKS, SweepGrid, run_sweep

OUT = Path(__file__).parent / "results"
TAUS = (0.05, 0.10, 0.15, 0.20)


def sweep(dataset: str, seed: int, args: argparse.Namespace) -> dict:
    cfg = default_config().model_copy(update={"models": [], "seed": seed})
    cfg.data.dataset = dataset
    cfg.split.max_audit = args.max_audit
    cfg.train = cfg.train.model_copy(update={"hidden": (256,), "epochs": args.epochs, "lr": 1e-3})
    cfg.attacks.n_reference = max(args.references, 2)
    cfg.attacks.n_bootstrap = 200
    cfg.fairness.n_bootstrap = 200
    cfg.fairness.min_group_size = args.min_group
    attacks = [*SWEEP_ATTACKS, "rmia_offline"] if args.references else list(SWEEP_ATTACKS)
    grid = SweepGrid(
        fairness_weights=args.weights, epsilons=args.epsilons, penalty="demographic_parity",
        fairboost_rounds=args.rounds, fairboost_constraints=["equalized_odds", "demographic_parity"],
        attacks=attacks,
    )  # fmt: skip
    res = run_sweep(cfg, grid, front={"gap": "equalized_odds_difference", "n_bootstrap": 200},
                    use_cache=False)  # fmt: skip
    return res.results["front"]


def analyse(runs: list[dict]) -> dict:
    """Per run and fairness threshold tau (worst EO gap <= tau, models predicting one class for
    everyone excluded): is the most accurate fair model also the leakiest fair model, and the
    leakiest of all? Spearman(accuracy, AUC) per run over every candidate."""
    rows = []
    for run in runs:
        c = run["front"]["candidates"]
        acc = np.array([x["accuracy"] for x in c])
        auc = np.array([x["attack"]["auc"] for x in c])
        gap = np.array([x["worst_gaps"]["equalized_odds_difference"] for x in c], dtype=float)
        gap[[x["constant"] for x in c]] = np.nan  # one class for everyone: trivially "fair", no classifier
        lo = np.array([x["attack"]["auc_ci"][0] for x in c])
        rho = float(spearmanr(acc, auc).statistic)
        for tau in TAUS:
            fair = np.flatnonzero(gap <= tau)
            if len(fair) < 2:
                rows.append({"dataset": run["dataset"], "seed": run["seed"], "tau": tau, "n_fair": len(fair)})
                continue
            best = fair[np.argmax(acc[fair])]
            leak_fair = fair[np.argmax(auc[fair])]
            others = [i for i in fair if i != best]
            rows.append({
                "dataset": run["dataset"], "seed": run["seed"], "tau": tau, "n_fair": len(fair),
                "most_accurate_fair": c[best]["name"], "its_auc": float(auc[best]),
                "leakiest_fair": c[leak_fair]["name"], "leakiest_fair_auc": float(auc[leak_fair]),
                "same_as_leakiest_fair": bool(best == leak_fair),
                "same_as_leakiest_overall": bool(best == int(np.argmax(auc))),
                # its AUC's lower CI bound above every other fair model's AUC: leakier beyond noise
                "leakier_beyond_ci": bool(lo[best] > auc[others].max()),
                "spearman_acc_auc": rho,
            })  # fmt: skip
    return {"rows": rows}


def tables(runs: list[dict], analysis: dict) -> str:
    out = []
    for run in runs:
        if run["seed"] != runs[0]["seed"]:
            continue
        f = run["front"]
        out.append(f"### {run['dataset']} (seed {run['seed']}): front of {len(f['candidates'])} candidates\n")
        out.append("| candidate | accuracy | worst EO gap [95% CI] | strongest attack: AUC [95% CI] | epsilon | P(front) |")
        out.append("|---|---|---|---|---|---|")
        for c in sorted(f["candidates"], key=lambda c: -c["accuracy"]):
            if not c["on_front"]:
                continue
            view = max((v for v in c["gaps"] if c["gaps"][v]["equalized_odds_difference"]["value"] is not None),
                       key=lambda v: c["gaps"][v]["equalized_odds_difference"]["value"])  # fmt: skip
            g = c["gaps"][view]["equalized_odds_difference"]
            a = c["attack"]
            eps = "–" if c["epsilon"] is None else f"{c['epsilon']:.1f}"
            star = (" (knee)" if c["name"] == f["knee"] else "") + (" (one class)" if c["constant"] else "")
            out.append(f"| {c['name']}{star} | {c['accuracy']:.3f} | {g['value']:.3f} [{g['ci_low']:.3f}, "
                       f"{g['ci_high']:.3f}] ({view}) | {a['name']}: {a['auc']:.3f} [{a['auc_ci'][0]:.3f}, "
                       f"{a['auc_ci'][1]:.3f}] | {eps} | {c['p_front']:.2f} |")  # fmt: skip
        out.append(f"\n{len(f['front'])} of {len(f['candidates'])} on the front; hypervolume "
                   f"{f['hypervolume']:.4f} (reference {f['reference_point']}).\n")  # fmt: skip
    out.append("### Is the most accurate fair model also the leakiest?\n")
    out.append("| dataset | tau (worst EO gap <=) | runs with >= 2 fair models | same as leakiest fair | "
               "same as leakiest overall | leakier beyond its CI | Spearman(accuracy, AUC), mean |")  # fmt: skip
    out.append("|---|---|---|---|---|---|---|")
    rows = analysis["rows"]
    for ds in sorted({r["dataset"] for r in rows}):
        for tau in TAUS:
            rs = [r for r in rows if r["dataset"] == ds and r["tau"] == tau and "same_as_leakiest_fair" in r]
            n_all = len([r for r in rows if r["dataset"] == ds and r["tau"] == tau])
            if not rs:
                out.append(f"| {ds} | {tau} | 0 of {n_all} | – | – | – | – |")
                continue
            k = len(rs)
            out.append(
                f"| {ds} | {tau} | {k} of {n_all} | {sum(r['same_as_leakiest_fair'] for r in rs)} of {k} | "
                f"{sum(r['same_as_leakiest_overall'] for r in rs)} of {k} | "
                f"{sum(r['leakier_beyond_ci'] for r in rs)} of {k} | "
                f"{np.mean([r['spearman_acc_auc'] for r in rs]):+.2f} |"
            )
    return "\n".join(out) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--max-audit", type=int, default=2000)
    ap.add_argument("--epochs", type=int, default=40)
    ap.add_argument("--references", type=int, default=4)
    ap.add_argument("--min-group", type=int, default=100, help="groups below this many non-members are left out of gaps")
    ap.add_argument("--tables-only", action="store_true", help="re-print the tables from the recorded JSON")
    args = ap.parse_args()
    args.weights = [0.0, 0.5, 1.0, 2.0, 5.0]
    args.epsilons = [None, 3.0, 8.0]
    args.rounds = [10, 25, 50, 100, 200]
    if args.quick:
        args.seeds, args.epochs, args.references = 1, 5, 0
        args.weights, args.epsilons, args.rounds = [0.0, 2.0], [None, 8.0], [10, 50]
    if args.tables_only:
        rec = json.loads((OUT / "sweep_front.json").read_text())
        md = tables(rec["runs"], analyse(rec["runs"]))
        (OUT / "sweep_front_tables.md").write_text(md)
        print(md)
        return
    runs = []
    t0 = time.perf_counter()
    for dataset in ("adult", "compas"):
        for seed in range(args.seeds):
            t = time.perf_counter()
            runs.append({"dataset": dataset, "seed": seed, "front": sweep(dataset, seed, args)})
            print(f"{dataset} seed {seed}: {time.perf_counter() - t:.0f} s", flush=True)
    analysis = analyse(runs)
    settings = {k: v for k, v in vars(args).items()}
    settings["wall_seconds"] = round(time.perf_counter() - t0)
    suffix = "_quick" if args.quick else ""
    OUT.mkdir(exist_ok=True)
    (OUT / f"sweep_front{suffix}.json").write_text(
        json.dumps({"settings": settings, "runs": runs, "analysis": analysis}, indent=1) + "\n"
    )
    md = tables(runs, analysis)
    (OUT / f"sweep_front_tables{suffix}.md").write_text(md)
    print(md)


if __name__ == "__main__":
    main()
