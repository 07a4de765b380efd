"""The PA-ALOOA game on Adult: R models (400 by default) trained K at once, scored, IPR/GPR/GPRP;
vs training the models one by one (a sample is timed and extrapolated).

Setup of the paper's code (ALGORITHMS.md section 4): MLP with 256 tanh units, SGD lr 0.1,
20 epochs, batch 256, Adult grouped by sex (and race).

    python benchmarks/bench_group_risk.py [--models 400] [--epochs 20] [--sample 2]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from _common import adult_features, header, timed

from fairleak.audit import run_pa_alooa
from fairleak.data import load_dataset
from fairleak.train import TrainConfig


def conventional(X, y, rows, epochs, seed):
    torch.manual_seed(seed)
    g = torch.Generator().manual_seed(seed)
    model = torch.nn.Sequential(
        torch.nn.Linear(X.shape[1], 256), torch.nn.Tanh(), torch.nn.Linear(256, 2)
    )
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    Xt, yt = torch.from_numpy(X[rows]), torch.from_numpy(y[rows])
    for _ in range(epochs):
        perm = torch.randperm(len(rows), generator=g)
        for s in range(0, len(rows), 256):
            idx = perm[s : s + 256]
            opt.zero_grad()
            torch.nn.functional.cross_entropy(model(Xt[idx]), yt[idx]).backward()
            opt.step()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--models", type=int, default=400)
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--sample", type=int, default=2)
    args = ap.parse_args()
    header("PA-ALOOA game")
    X, y, _ = adult_features()
    sens = load_dataset("adult").sensitive
    cfg = TrainConfig(
        hidden=(256,),
        activation="tanh",
        optimizer="sgd",
        lr=0.1,
        epochs=args.epochs,
        batch_size=256,
    )
    t0 = time.perf_counter()
    res = run_pa_alooa(X, y, sens, n_models=args.models, config=cfg, seed=0)
    t_game = time.perf_counter() - t0
    rows = np.random.default_rng(0).permutation(len(y))[: len(y) // 2]
    t_one = (
        timed(lambda: [conventional(X, y, rows, args.epochs, k) for k in range(args.sample)])[0]
        / args.sample
    )
    d = res.to_dict()
    print(
        f"{args.models} MLPs (256 tanh, SGD 0.1, {args.epochs} epochs, batch 256) on halves of {len(y)} rows"
    )
    print(f"game wall time: {t_game / 60:.1f} min on {torch.get_num_threads()} threads "
          f"(training + scoring + IPR/GPR/GPRP)")  # fmt: skip
    print(
        f"one by one ({args.sample} models timed, extrapolated): {t_one * args.models / 60:.1f} min "
        f"-> ratio {t_one * args.models / t_game:.1f}x"
    )
    for attr in ("sex", "race"):
        print(f"GPRP {attr}: " + ", ".join(f"{k} {v:.3f}" for k, v in d["gprp"][attr].items()))
    print("GPR sex (PA-ALOOA held-out): " + ", ".join(
        f"{g} {v['gpr']:.3f}" for g, v in d["gpr"]["sex"]["pa_alooa_heldout"].items()))  # fmt: skip


if __name__ == "__main__":
    main()
