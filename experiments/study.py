"""The fairness-meets-privacy study (issue 6): FD-MIA vs fairness weight, group privacy risk
(PA-ALOOA vs PA-GA vs PA-GBA over seeds), and DP-SGD vs DP-SGD-S.

Writes tables (CSV / JSON), figures (HTML, plotly.js from its CDN) and settings.json under
experiments/results/ (or --out). Every number in docs/EXPERIMENTS.md comes from here.

    python experiments/study.py            # the recorded settings (about 15-25 minutes on 2 cores)
    python experiments/study.py --quick    # a smoke run in about a minute
"""

from __future__ import annotations

import argparse
import itertools
import json
import time
from pathlib import Path

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from fairleak.audit import run_fd_mia, run_pa_alooa
from fairleak.data import TabularPreprocessor, group_codes, load_dataset, make_audit_split
from fairleak.train import DPConfig, FairnessConfig, TrainConfig

DATASETS = {"adult": ["sex", "race"], "compas": ["race", "sex"]}


def prepare(name: str, seed: int, max_audit: int | None = None):
    ds = load_dataset(name, protected=DATASETS[name])
    split = make_audit_split(len(ds), seed=seed, stratify=ds.y, max_audit=max_audit)
    # as the audit does: the encoding is fitted on the population rows (public to the attacker)
    X = TabularPreprocessor().fit(ds.features.iloc[split.population]).transform(ds.features)
    codes = np.stack([group_codes(ds.sensitive[c].to_numpy())[0] for c in ds.sensitive.columns], 1)
    return ds, split, X, codes


def study_fd_mia(args, out: Path) -> pd.DataFrame:
    rows, group_rows, hist_rows, figs = [], [], [], []
    for (name, regime, seed), lam in itertools.product(
        itertools.product(DATASETS, args.fd_regimes, range(args.fd_seeds)), args.weights
    ):
        attr = DATASETS[name][0]
        if lam == args.weights[0]:
            max_audit, cfg = args.fd_regimes[regime]
            ds, split, X, codes = prepare(name, seed, max_audit)
        t0 = time.perf_counter()
        res = run_fd_mia(
            X, ds.y, codes[:, :1], split.members, split.nonmembers, split.population,
            fairness=FairnessConfig(penalty="demographic_parity", weight=lam), config=cfg, seed=seed,
            groups_audit=ds.sensitive.iloc[split.audit][[attr]], n_bootstrap=args.bootstrap,
        )  # fmt: skip
        secs = round(time.perf_counter() - t0, 1)
        for attack, r in res.attacks.items():
            m = r.metrics
            rows.append({"dataset": name, "regime": regime, "seed": seed, "fairness_weight": lam, "attack": attack,
                         "auc": m.auc, "auc_ci": m.ci.get("auc"), "tpr_at_1%_fpr": m.tpr_at_1_fpr,
                         "n_members": m.n_members, "n_nonmembers": m.n_nonmembers,
                         "seconds": secs})  # fmt: skip
            for g, gm in m.by_group.get(attr, {}).items():
                group_rows.append({"dataset": name, "regime": regime, "seed": seed, "fairness_weight": lam,
                                   "attack": attack, "attribute": attr, "group": g, "auc": gm.auc,
                                   "n_members": gm.n_members, "n_nonmembers": gm.n_nonmembers})  # fmt: skip
        # the members' and non-members' discrepancy, as the seed blog's histogram
        hi = max(res.discrepancy_members.max(), res.discrepancy_nonmembers.max(), 1e-9)
        edges = np.linspace(0, hi, 21)
        hm = np.histogram(res.discrepancy_members, edges)[0] / len(res.discrepancy_members)
        hn = np.histogram(res.discrepancy_nonmembers, edges)[0] / len(res.discrepancy_nonmembers)
        hist_rows.append({"dataset": name, "regime": regime, "seed": seed, "fairness_weight": lam,
                  "mean_disc_members": float(res.discrepancy_members.mean()),
                  "mean_disc_nonmembers": float(res.discrepancy_nonmembers.mean()),
                  "edges": edges.round(4).tolist(), "share_members": hm.round(4).tolist(),
                  "share_nonmembers": hn.round(4).tolist()})  # fmt: skip
        if seed == 0 and lam == max(args.weights):
            fig = go.Figure([
                go.Histogram(x=res.discrepancy_members, xbins={"start": 0, "end": hi, "size": hi / 40},
                             histnorm="probability", name="members", opacity=0.6),
                go.Histogram(x=res.discrepancy_nonmembers, xbins={"start": 0, "end": hi, "size": hi / 40},
                             histnorm="probability", name="non-members", opacity=0.6),
            ])  # fmt: skip
            fig.update_layout(barmode="overlay", title=f"{name} ({regime}): |p_b - p_f| for members vs non-members "
                              f"(demographic parity penalty on {attr}, weight {lam}, seed {seed})",
                              xaxis_title="|p_b(y|x) - p_f(y|x)|", yaxis_title="share")  # fmt: skip
            figs.append(fig)
    df = pd.DataFrame(rows)
    df.to_csv(out / "fd_mia.csv", index=False)
    pd.DataFrame(group_rows).to_csv(out / "fd_mia_by_group.csv", index=False)
    (out / "fd_mia_discrepancy.json").write_text(json.dumps(hist_rows, indent=1))
    html = "".join(
        f.to_html(full_html=False, include_plotlyjs="cdn" if i == 0 else False)
        for i, f in enumerate(figs)
    )
    (out / "fd_mia_histograms.html").write_text(f"<html><body>{html}</body></html>")
    summary = (
        df.groupby(["dataset", "regime", "fairness_weight", "attack"])
        .agg(auc_mean=("auc", "mean"), auc_std=("auc", "std"),
             tpr1_mean=("tpr_at_1%_fpr", "mean"), tpr1_std=("tpr_at_1%_fpr", "std"))
        .reset_index()
    )  # fmt: skip
    summary.to_csv(out / "fd_mia_summary.csv", index=False)
    return summary


def study_group_risk(args, out: Path) -> pd.DataFrame:
    rows = []
    cfg = TrainConfig(
        hidden=(256,),
        activation="tanh",
        optimizer="sgd",
        lr=0.1,
        epochs=args.gr_epochs,
        batch_size=256,
    )
    for name in DATASETS:
        for seed in range(args.seeds):
            ds, _split, X, _codes = prepare(name, seed)
            t0 = time.perf_counter()
            res = run_pa_alooa(X, ds.y, ds.sensitive, n_models=args.models, config=cfg, seed=seed)
            secs = time.perf_counter() - t0
            for attr in DATASETS[name]:
                for method, groups in res.gpr[attr].items():
                    null = res.null_gpr[attr][method]
                    for g, v in groups.items():
                        rows.append({"dataset": name, "seed": seed, "attribute": attr, "method": method,
                                     "group": g, "n": v["n"], "too_small": v["too_small"], "gpr": v["gpr"],
                                     "null_gpr": null[g]["gpr"], "gprp": res.gprp[attr][method],
                                     "null_gprp": res.null_gprp[attr][method], "seconds": round(secs, 1)})  # fmt: skip
    df = pd.DataFrame(rows)
    df.to_csv(out / "group_risk.csv", index=False)
    return df


def study_dpsgd_s(args, out: Path) -> pd.DataFrame:
    rows = []
    cfg = TrainConfig(
        hidden=(256,),
        activation="tanh",
        optimizer="sgd",
        lr=0.1,
        epochs=args.dp_epochs,
        batch_size=256,
    )
    variants = [("no DP", None, False)] + [
        (label, eps, clip) for eps in args.epsilons for label, clip in (("DP-SGD", False), ("DP-SGD-S", True))
    ]
    for name in DATASETS:
        attr = DATASETS[name][0]
        for seed in range(args.dp_seeds):
            ds, _split, X, _codes = prepare(name, seed)
            for label, eps, group_clipping in variants:
                dp = None if eps is None else DPConfig(
                    target_epsilon=eps, max_grad_norm=1.0, group_clipping=group_clipping, tau=2.0
                )  # fmt: skip
                t0 = time.perf_counter()
                # DP-SGD-S clips by the groups of the first protected attribute
                res = run_pa_alooa(X, ds.y, ds.sensitive, n_models=args.dp_models, config=cfg,
                                   seed=seed, dp=dp, null=False)  # fmt: skip
                acc = res.accuracy_by_group[attr]
                gpr = res.gpr[attr]["pa_alooa_heldout"]
                rows.append({"dataset": name, "seed": seed, "target_epsilon": eps, "epsilon": res.epsilon,
                             "algorithm": label, "attribute": attr,
                             "gprp_alooa_heldout": res.gprp[attr]["pa_alooa_heldout"],
                             "gprp_alooa": res.gprp[attr]["pa_alooa"],
                             **{f"gpr_{g}": v["gpr"] for g, v in gpr.items() if not v["too_small"]},
                             "accuracy_out": res.accuracy_out,
                             **{f"acc_{g}": v for g, v in acc.items()},
                             "seconds": round(time.perf_counter() - t0, 1)})  # fmt: skip
    df = pd.DataFrame(rows)
    df.to_csv(out / "dpsgd_s.csv", index=False)
    return df


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    ap.add_argument("--quick", action="store_true", help="a smoke run with tiny settings")
    ap.add_argument("--only", choices=["fd_mia", "group_risk", "dpsgd_s"], nargs="*")
    args = ap.parse_args()
    args.weights = [0.5, 1.0, 2.0, 5.0]
    args.fd_seeds, args.bootstrap = 3, 200
    # full: all members, the audit's recipe; small: 1,000 members and a 256-unit MLP trained
    # long, the overfitting regime where membership leaks (as with the paper's image models)
    args.fd_regimes = {
        "full": (None, TrainConfig(hidden=(64,), epochs=40, lr=3e-3, batch_size=128)),
        "small": (2000, TrainConfig(hidden=(256,), epochs=150, lr=1e-3, batch_size=64)),
    }
    args.seeds, args.models, args.gr_epochs = 5, 400, 20
    args.epsilons, args.dp_models, args.dp_epochs, args.dp_seeds = [1.0, 10.0], 32, 10, 3
    if args.quick:
        args.weights, args.fd_seeds, args.bootstrap = [1.0], 1, 20
        args.fd_regimes = {"full": (None, TrainConfig(hidden=(16,), epochs=5))}
        args.seeds, args.models, args.gr_epochs = 1, 8, 2
        args.epsilons, args.dp_models, args.dp_epochs, args.dp_seeds = [10.0], 4, 1, 1
        args.out = args.out.with_name(args.out.name + "-quick")
    args.out.mkdir(parents=True, exist_ok=True)
    # every setting that shapes a number (not --out / --only, so that partial reruns agree)
    settings = {k: v for k, v in vars(args).items() if k not in ("out", "only")}
    (args.out / "settings.json").write_text(
        json.dumps(settings, indent=2, default=lambda o: o.to_dict() if hasattr(o, "to_dict") else str(o))
    )
    todo = args.only or ["fd_mia", "group_risk", "dpsgd_s"]
    for part in todo:
        t0 = time.perf_counter()
        df = {"fd_mia": study_fd_mia, "group_risk": study_group_risk, "dpsgd_s": study_dpsgd_s}[
            part
        ](args, args.out)
        print(f"== {part}: {time.perf_counter() - t0:.0f} s")
        print(df.to_string(max_rows=60))


if __name__ == "__main__":
    main()
