"""64 MLPs on Adult: the vectorised ensemble trainer vs the conventional loop.

Conventional: one ``nn.Sequential`` + ``torch.optim.Adam`` per model, shuffled mini-batches of
its own rows, trained one after another (timed on a sample of models and extrapolated).
Also reports the ensemble trainer's achieved GFLOP/s as a fraction of a large fp32 matmul's.

    python benchmarks/bench_train.py [--models 64] [--epochs 10] [--sample 4] [--quick]
"""

from __future__ import annotations

import argparse
import itertools
import math
import os

import numpy as np
import torch
from _common import adult_features, header, matmul_gflops, timed

from fairleak.train import TrainConfig, train_ensemble


def conventional(X, y, rows, hidden, epochs, batch, lr, seed):
    g = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    model = torch.nn.Sequential(
        torch.nn.Linear(X.shape[1], hidden), torch.nn.ReLU(), torch.nn.Linear(hidden, 2)
    )
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    Xt, yt = torch.from_numpy(X[rows]), torch.from_numpy(y[rows])
    for _ in range(epochs):
        perm = torch.randperm(len(rows), generator=g)
        for s in range(0, len(rows), batch):
            idx = perm[s : s + batch]
            opt.zero_grad()
            loss = torch.nn.functional.cross_entropy(model(Xt[idx]), yt[idx])
            loss.backward()
            opt.step()
    return model


def textbook(X, y, rows, hidden, epochs, batch, lr, seed):
    """The loop most code writes: a DataLoader over a TensorDataset, shuffled."""
    from torch.utils.data import DataLoader, TensorDataset

    torch.manual_seed(seed)
    model = torch.nn.Sequential(
        torch.nn.Linear(X.shape[1], hidden), torch.nn.ReLU(), torch.nn.Linear(hidden, 2)
    )
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    ds = TensorDataset(torch.from_numpy(X[rows]), torch.from_numpy(y[rows]))
    loader = DataLoader(ds, batch_size=batch, shuffle=True)
    for _ in range(epochs):
        for xb, yb in loader:
            opt.zero_grad()
            torch.nn.functional.cross_entropy(model(xb), yb).backward()
            opt.step()
    return model


def gemm_floor(K: int, batch: int, d_in: int, hidden: int, repeats: int = 20) -> float:
    """Seconds per step of the two batched GEMMs no trainer of these models can skip: layer 1's
    forward [K, B, D] x [K, D, H] and its weight gradient [K, D, B] x [K, B, H]."""
    xb, w, dz = (
        torch.randn(K, batch, d_in),
        torch.randn(K, d_in, hidden),
        torch.randn(K, batch, hidden),
    )
    out, gw = torch.empty(K, batch, hidden), torch.empty(K, d_in, hidden)

    def step() -> None:
        for _ in range(repeats):
            torch.bmm(xb, w, out=out)
            torch.bmm(xb.transpose(1, 2), dz, out=gw)

    return timed(step, 5)[0] / repeats


def train_flops(n_rows: int, dims: list[int], epochs: int) -> float:
    """FLOPs actually needed: 2 per MAC forward, 2 for the weight gradient, and 2 more for the
    input gradient of every layer but the first (no gradient is taken w.r.t. the data)."""
    layers = list(itertools.pairwise(dims))
    flops = sum((4.0 if i == 0 else 6.0) * a * b for i, (a, b) in enumerate(layers))
    return flops * n_rows * epochs


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--models", type=int, default=64)
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--hidden", type=int, default=64)
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--sample", type=int, default=6, help="conventional models actually timed")
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    if args.quick:
        args.models, args.epochs, args.sample = 8, 2, 2
    header("ensemble trainer vs one model at a time")
    X, y, _ = adult_features()
    K = args.models
    rng = np.random.default_rng(0)
    masks = np.zeros((K, len(y)), dtype=bool)
    for k in range(K):  # each model on a random half (exactly half the rows)
        masks[k, rng.permutation(len(y))[: len(y) // 2]] = True
    cfg = TrainConfig(hidden=(args.hidden,), epochs=args.epochs, batch_size=args.batch, lr=1e-3)
    from fairleak.train import native

    sparse = native.available()  # compiles the sparse kernels now, outside the timing
    os.environ["FAIRLEAK_NATIVE"] = "0"
    t_dense, _ = timed(lambda: train_ensemble(X, y, masks, config=cfg, seed=0), repeats=3)
    os.environ.pop("FAIRLEAK_NATIVE")
    t_ens, ens = timed(lambda: train_ensemble(X, y, masks, config=cfg, seed=0), repeats=3)
    sample = min(args.sample, K)

    def sample_time(fn) -> float:
        t = timed(
            lambda: [
                fn(X, y, np.flatnonzero(masks[k]), args.hidden, args.epochs, args.batch, 1e-3, k)
                for k in range(sample)
            ]
        )[0]
        return t / sample * K

    conventional(X, y, np.flatnonzero(masks[0]), args.hidden, 1, args.batch, 1e-3, 0)  # warm-up
    threads = torch.get_num_threads()
    t_conv2 = sample_time(conventional)
    torch.set_num_threads(1)  # small models often run faster single-threaded: be fair to them
    t_conv1 = sample_time(conventional)
    torch.set_num_threads(threads)
    t_conv = min(t_conv1, t_conv2)
    t_text = sample_time(textbook)
    t_gemm = (
        gemm_floor(K, args.batch, X.shape[1], args.hidden)
        * cfg.epochs
        * math.ceil(masks.sum(1).max() / args.batch)
    )
    acc = ((ens.predict_proba(X)[..., 1] > 0.5) == y).mean()
    flops = sum(train_flops(int(m.sum()), [X.shape[1], args.hidden, 2], args.epochs) for m in masks)
    peak = matmul_gflops()
    achieved = flops / t_dense / 1e9  # the dense path does these FLOPs; the sparse one skips most
    print(
        f"data: Adult {X.shape[0]} rows x {X.shape[1]} features; {K} MLPs (hidden {args.hidden}), "
        f"{args.epochs} epochs, batch {args.batch}, each on a random half"
    )
    print(f"conventional: {sample} models timed, extrapolated to {K}")
    print(
        f"speed-up ensemble vs conventional loop (index tensors, nn.Module + Adam, best of 1 and "
        f"{threads} threads): {t_conv / t_ens:.1f}x   (goal >= 10x)"
    )
    print(
        f"  of which the compiled sparse first layer ({'used' if sparse else 'NOT available here'}): "
        f"dense eager ensemble {t_conv / t_dense:.1f}x, i.e. sparse / dense {t_dense / t_ens:.2f}x"
    )
    print(f"speed-up ensemble vs textbook DataLoader loop: {t_text / t_ens:.1f}x")
    print(
        f"dense eager ensemble GFLOP/s / large fp32 matmul GFLOP/s: {achieved:.1f} / {peak:.1f} = "
        f"{achieved / peak:.0%}   (goal >= 40%)"
    )
    print(
        f"the two layer-1 GEMMs alone (forward and weight gradient, timed in isolation) are "
        f"{t_gemm / t_dense:.0%} of the dense ensemble's time; its ceiling with everything else free: "
        f"{t_conv / t_gemm:.1f}x"
    )
    print(f"mean accuracy of the ensemble's models on all rows: {acc:.3f}")
    print(f"steps per epoch: {math.ceil(masks.sum(1).max() / args.batch)}")


if __name__ == "__main__":
    main()
