"""Fair multi-task learning on COMPAS and Adult (issue 18): STL, MTL, FairBranch and L2T-FMT over
seeds, with accuracy, fairness gaps, transfer against STL and membership leakage per task head.

Writes CSV / JSON under experiments/results/ (or --out); every number in the multi-task section of
docs/EXPERIMENTS.md comes from those files, and ``--table`` prints its tables from them.

    python experiments/multitask.py            # the recorded settings (~10 minutes on 2 cores)
    python experiments/multitask.py --quick    # a smoke run (~1 minute), into results-quick/
    python experiments/multitask.py --table    # the tables, from experiments/results/
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from fairleak.data import TabularPreprocessor, group_codes, make_audit_split
from fairleak.data.multitask import load_multitask
from fairleak.multitask import MultiTaskMLP, evaluate_multitask
from fairleak.multitask.training import (
    TaskData,
    TrainSettings,
    epoch_batches,
    make_optimizer,
    one_thread,
    task_losses,
)

HERE = Path(__file__).resolve().parent
#: protected attributes (all reported), the one the fairness loss covers, and the subsample.
DATASETS = {
    "compas": {"protected": ["race", "sex"], "loss": ["race"], "max_rows": None},
    "adult": {"protected": ["sex", "race"], "loss": ["sex"], "max_rows": 20_000},
}
COMMON = {"hidden_layer_sizes": (64, 32, 16), "epochs": 20, "lr": 3e-3, "batch_size": 256}
SETUPS = {
    # The papers' setting: every method with the robust-log fairness loss, weight 1.
    "fair": {"methods": ("stl", "mtl", "fairbranch", "l2t"), "params": {}},
    # Accuracy only: what the fairness loss costs, and branching alone.
    "accuracy_only": {"methods": ("stl", "mtl", "fairbranch"), "params": {"fairness": None}},
    # DP-SGD at the same total epsilon (STL: both models together), accuracy loss only.
    "dp_eps4": {"methods": ("stl", "mtl"), "params": {"fairness": None, "target_epsilon": 4.0}},
}


def run(args: argparse.Namespace) -> None:
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rows, group_rows, method_rows = [], [], []
    t_start = time.perf_counter()
    for name, spec in DATASETS.items():
        ds = load_multitask(name, protected=spec["protected"])
        max_rows = args.max_rows or spec["max_rows"]
        for setup, cfg in SETUPS.items():
            if setup not in args.setups:
                continue
            for seed in range(args.seeds):
                t0 = time.perf_counter()
                params = {**COMMON, **cfg["params"], "epochs": args.epochs}
                res = evaluate_multitask(
                    ds, methods=cfg["methods"], seed=seed, params=params, max_rows=max_rows,
                    n_bootstrap=args.bootstrap, loss_attributes=spec["loss"],
                )  # fmt: skip
                tag = {"dataset": name, "setup": setup, "seed": seed}
                rows += [{**tag, **r} for r in res.summary_rows()]
                group_rows += [{**tag, **r} for r in res.leakage_group_rows()]
                d = res.to_dict()
                for m, mres in d["methods"].items():
                    log = mres["log"]
                    extra = {}
                    if m == "fairbranch":
                        extra = {
                            "branchings": json.dumps([
                                {"epoch": e["epoch"], "level": e["level"], "groups": e["groups"],
                                 "affinity": e["affinity"]} for e in log["branchings"]
                            ]),
                            "final_routes": json.dumps(log["routes"]),
                            "conflicts": int(sum(log["conflicts_per_epoch"])),
                            "fairness_dropped_steps": json.dumps(
                                np.sum(log["fairness_dropped_per_epoch"], 0).tolist()
                                if log["fairness_dropped_per_epoch"] else []
                            ),
                        }  # fmt: skip
                    elif m == "l2t":
                        extra = {
                            "fairness_share": json.dumps([round(v, 4) for v in log["fairness_share"]]),
                            "final_task_weights": json.dumps([round(v, 4) for v in log["task_weights"][-1]]),
                        }  # fmt: skip
                    method_rows.append({**tag, "method": m, "epsilon": mres["epsilon"],
                                        "seconds": mres["seconds"], **extra})  # fmt: skip
                print(f"{name:7s} {setup:14s} seed {seed}: {time.perf_counter() - t0:5.1f} s",
                      flush=True)  # fmt: skip
    pd.DataFrame(rows).to_csv(out / "multitask.csv", index=False)
    pd.DataFrame(group_rows).to_csv(out / "multitask_leakage_by_group.csv", index=False)
    pd.DataFrame(method_rows).to_csv(out / "multitask_methods.csv", index=False)
    settings = {
        "datasets": DATASETS, "common": {**COMMON, "epochs": args.epochs},
        "setups": {k: {"methods": list(v["methods"]), "params": v["params"]}
                   for k, v in SETUPS.items() if k in args.setups},
        "seeds": list(range(args.seeds)), "n_bootstrap": args.bootstrap,
        "split": "make_audit_split(audit_fraction=0.8, member_fraction=0.5), stratified on task 0: "
                 "40% members (training), 40% non-members (test, attack), 20% L2T validation",
        "minutes": round((time.perf_counter() - t_start) / 60, 1),
    }  # fmt: skip
    (out / "multitask_settings.json").write_text(json.dumps(settings, indent=1))
    conflict_check(out, args.epochs)
    tables = make_tables(out)
    (out / "multitask_tables.md").write_text(tables)
    print(tables)


def conflict_check(out: Path, epochs: int, seed: int = 0, n_batches: int = 30) -> pd.DataFrame:
    """How often FairBranch's intra-task test fires: the share of batches in which a task's
    robust-log gradient opposes its accuracy gradient (``<grad L_t, grad F_t> < 0``), on the
    head alone and on the task's whole path, while fair MTL trains on the recorded split (seed 0
    members, the recorded network and optimiser). Written to ``multitask_conflicts.csv``."""
    rows = []
    for name, spec in DATASETS.items():
        ds = load_multitask(name, protected=spec["protected"])
        if spec["max_rows"] is not None and len(ds) > spec["max_rows"]:
            keep = np.random.default_rng(seed).choice(len(ds), size=spec["max_rows"], replace=False)
            ds = ds.subset(np.sort(keep))
        split = make_audit_split(len(ds), seed=seed, audit_fraction=0.8, member_fraction=0.5,
                                 stratify=ds.Y[:, 0])  # fmt: skip
        mem = split.members
        X = TabularPreprocessor().fit(ds.features.iloc[mem]).transform(ds.features.iloc[mem])
        codes = [group_codes(ds.sensitive[a].to_numpy()[mem]) for a in spec["loss"]]
        data = TaskData.from_arrays(X, ds.Y[mem], [c for c, _ in codes], [len(g) for _, g in codes])
        settings = TrainSettings(hidden=COMMON["hidden_layer_sizes"], epochs=epochs,
                                 batch_size=COMMON["batch_size"], lr=COMMON["lr"])  # fmt: skip
        with one_thread():
            net = MultiTaskMLP(X.shape[1], settings.hidden, ds.n_tasks, seed=seed)
            opt = make_optimizer(net, settings)
            gen = torch.Generator().manual_seed(seed)
            probe = torch.Generator().manual_seed(seed + 1)
            for epoch in range(1, epochs + 1):
                for idx in epoch_batches(len(data), settings.batch_size, gen):
                    _, acc, fair = task_losses(net, data.rows(idx), settings)
                    opt.zero_grad(set_to_none=True)
                    (acc.sum() + fair.sum()).backward()
                    opt.step()
                if epoch not in (1, 5, epochs):
                    continue
                counts = np.zeros((ds.n_tasks, 2))
                for _ in range(n_batches):
                    idx = torch.randperm(len(data), generator=probe)[: settings.batch_size]
                    _, acc, fair = task_losses(net, data.rows(idx), settings)
                    for t in range(ds.n_tasks):
                        path = net.task_parameters(t)
                        gl = torch.autograd.grad(acc[t], path, retain_graph=True)
                        gf = torch.autograd.grad(fair[t], path, retain_graph=True)
                        dots = [float((a * b).sum()) for a, b in zip(gl, gf, strict=True)]
                        counts[t] += [sum(dots[-2:]) < 0, sum(dots) < 0]  # head = last 2
                for t, task in enumerate(ds.tasks):
                    for k, scope in enumerate(("head", "path")):
                        rows.append({"dataset": name, "task": task, "epoch": epoch,
                                     "scope": scope, "share_opposed": counts[t, k] / n_batches,
                                     "batches": n_batches})  # fmt: skip
    df = pd.DataFrame(rows)
    df.to_csv(out / "multitask_conflicts.csv", index=False)
    return df


def _ms(values: pd.Series, signed: bool = False) -> str:
    v = values.dropna().astype(float)
    if len(v) == 0:
        return "–"
    fmt = "{:+.3f}" if signed else "{:.3f}"
    return f"{fmt.format(v.mean())} ± {v.std(ddof=1) if len(v) > 1 else 0.0:.3f}"


def make_tables(out: Path) -> str:
    """Markdown tables (mean ± std over seeds) from the CSVs under ``out``."""
    df = pd.read_csv(out / "multitask.csv")
    methods = pd.read_csv(out / "multitask_methods.csv")
    lines: list[str] = []
    for name, spec in DATASETS.items():
        d = df[df["dataset"] == name]
        if d.empty:
            continue
        a = spec["loss"][0]
        other = next(p for p in spec["protected"] if p != a)
        n_seeds = d["seed"].nunique()
        lines += [f"### {name} (fairness loss on {a}; {n_seeds} seeds; mean ± std)", ""]
        lines += [f"| setup | method | task | accuracy | ROC AUC | EO sum [{a}] | DP gap [{a}] | "
                  f"EO sum [{other}] | KG | DG [{a}] | MIA AUC | MIA AUC, all heads |",
                  "|---|---|---|---|---|---|---|---|---|---|---|---|"]  # fmt: skip
        for (setup, method, task), g in d.groupby(["setup", "method", "task"], sort=False):
            lines.append(
                f"| {setup} | {method} | {task} | {_ms(g['accuracy'])} | {_ms(g['roc_auc'])} | "
                f"{_ms(g[f'eo_sum[{a}]'])} | {_ms(g[f'demographic_parity_difference[{a}]'])} | "
                f"{_ms(g[f'eo_sum[{other}]'])} | "
                f"{_ms(g['knowledge_gain'], True) if method != 'stl' else '–'} | "
                f"{_ms(g[f'discrimination_gain[{a}]'], True) if method != 'stl' else '–'} | "
                f"{_ms(g['leakage_auc'])} | {_ms(g['all_heads_leakage_auc'])} |"
            )
        lines.append("")
        # Transfer summary: how often each method shows negative / bias transfer per task.
        lines += [f"Transfer against STL, {name}: seeds (of {n_seeds}) with negative transfer "
                  f"(KG < 0) / bias transfer (DG [{a}] > 0), and the mean over tasks.", "",
                  "| setup | method | task | KG < 0 | DG > 0 | mean KG over tasks | "
                  "mean DG over tasks | leakage AUC change |", "|---|---|---|---|---|---|---|---|"]  # fmt: skip
        for (setup, method), g in d[d["method"] != "stl"].groupby(["setup", "method"], sort=False):
            per_seed = g.groupby("seed")
            mean_kg = per_seed["knowledge_gain"].mean()
            mean_dg = per_seed[f"discrimination_gain[{a}]"].mean()
            for task, gt in g.groupby("task", sort=False):
                lines.append(
                    f"| {setup} | {method} | {task} | {int((gt['knowledge_gain'] < 0).sum())} | "
                    f"{int((gt[f'discrimination_gain[{a}]'] > 0).sum())} | {_ms(mean_kg, True)} | "
                    f"{_ms(mean_dg, True)} | {_ms(gt['leakage_auc_change'], True)} |"
                )
        lines.append("")
        m = methods[(methods["dataset"] == name)]
        fb = m[m["method"] == "fairbranch"]
        if not fb.empty:
            lines.append(
                f"FairBranch on {name}, final routes per setup and seed (level: copy per task):"
            )
            lines.append("")
            for _, r in fb.iterrows():
                lines.append(f"- {r['setup']}, seed {r['seed']}: routes {r['final_routes']}, "
                             f"{int(r['conflicts'])} fairness-gradient conflicts corrected")  # fmt: skip
            lines.append("")
        lt = m[m["method"] == "l2t"]
        if not lt.empty:
            shares = np.array([json.loads(s) for s in lt["fairness_share"]])
            lines.append(f"L2T-FMT on {name}: share of steps on the fairness loss per task "
                         f"{np.round(shares.mean(0), 3).tolist()} (mean over seeds; "
                         f"per seed {np.round(shares, 2).tolist()}).")  # fmt: skip
            lines.append("")
        dp = m[m["setup"] == "dp_eps4"]
        if not dp.empty:
            eps = dp.groupby("method")["epsilon"].mean().round(3).to_dict()
            lines.append(f"DP-SGD epsilon (delta 1e-5, mean over seeds): {eps}.")
            lines.append("")
    conflicts = out / "multitask_conflicts.csv"
    if conflicts.exists():
        c = pd.read_csv(conflicts)
        lines += ["Share of batches in which the robust-log gradient opposes the accuracy gradient "
                  "(FairBranch's lambda_t = 0), during fair MTL training, seed 0:", "",
                  "| dataset | task | epoch | head | whole path |", "|---|---|---|---|---|"]  # fmt: skip
        wide = c.pivot_table(index=["dataset", "task", "epoch"], columns="scope",
                             values="share_opposed", sort=False)  # fmt: skip
        for (d_, t_, e_), r in wide.iterrows():
            lines.append(f"| {d_} | {t_} | {e_} | {r['head']:.2f} | {r['path']:.2f} |")
        lines.append("")
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--out", default=str(HERE / "results"))
    p.add_argument("--seeds", type=int, default=5)
    p.add_argument("--epochs", type=int, default=COMMON["epochs"])
    p.add_argument("--bootstrap", type=int, default=200)
    p.add_argument("--max-rows", type=int, default=None)
    p.add_argument("--setups", nargs="+", default=list(SETUPS), choices=list(SETUPS))
    p.add_argument("--quick", action="store_true", help="2 seeds, 3 epochs, 1,500 rows")
    p.add_argument("--table", action="store_true", help="print the tables from --out")
    p.add_argument("--conflicts-only", action="store_true",
                   help="only the gradient-conflict check (multitask_conflicts.csv)")  # fmt: skip
    args = p.parse_args()
    if args.table:
        print(make_tables(Path(args.out)))
        return
    if args.conflicts_only:
        Path(args.out).mkdir(parents=True, exist_ok=True)
        print(conflict_check(Path(args.out), args.epochs).to_string(index=False))
        return
    if args.quick:
        args.seeds, args.epochs, args.max_rows, args.bootstrap = 2, 3, 1500, 20
        if args.out == str(HERE / "results"):
            args.out = str(HERE / "results-quick")
    run(args)


if __name__ == "__main__":
    main()
