"""One DP-SGD epoch on an Adult MLP: fairleak vs Opacus, and fairleak private vs non-private.

Same model (hidden 64), noise multiplier, clipping bound C and sampling rate q = 256 / n with
Poisson sampling in both. Opacus: PrivacyEngine.make_private(poisson_sampling=True) around a
plain nn.Sequential + Adam, and its epsilon at the end (fairleak's call returns epsilon too).
Prints ratios only.

    python benchmarks/bench_dpsgd.py [--models 64] [--repeats 2]
"""

from __future__ import annotations

import argparse
import warnings

import numpy as np
import torch
from _common import adult_features, header, timed

from fairleak.train import DPConfig, TrainConfig, train_ensemble


def opacus_epoch(X: np.ndarray, y: np.ndarray, sigma: float, C: float, batch: int) -> None:
    from opacus import PrivacyEngine
    from torch.utils.data import DataLoader, TensorDataset

    model = torch.nn.Sequential(
        torch.nn.Linear(X.shape[1], 64), torch.nn.ReLU(), torch.nn.Linear(64, 2)
    )
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    loader = DataLoader(TensorDataset(torch.from_numpy(X), torch.from_numpy(y)), batch_size=batch)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        engine = PrivacyEngine()
        model, opt, loader = engine.make_private(
            module=model, optimizer=opt, data_loader=loader, noise_multiplier=sigma, max_grad_norm=C,
            poisson_sampling=True,
        )  # fmt: skip
        for xb, yb in loader:
            opt.zero_grad()
            torch.nn.functional.cross_entropy(model(xb), yb).backward()
            opt.step()
        # fairleak's train_ensemble returns epsilon; ask Opacus for it too, so both sides do
        # the same work (the RDP computation is a fixed cost of a few tens of ms)
        engine.get_epsilon(1e-5)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--models", type=int, default=64, help="K for the ensemble comparison")
    ap.add_argument("--repeats", type=int, default=2)
    args = ap.parse_args()
    header("DP-SGD epoch: fairleak vs Opacus")
    X, y, _ = adult_features()
    rows = np.random.default_rng(0).permutation(len(y))[: len(y) // 2]
    Xh, yh = X[rows].copy(), y[rows].copy()
    sigma, C, B = 1.0, 1.0, 256
    cfg = TrainConfig(hidden=(64,), epochs=1, batch_size=B)
    one = np.ones((1, len(yh)), dtype=bool)
    dp = DPConfig(noise_multiplier=sigma, max_grad_norm=C)
    t_ours = timed(lambda: train_ensemble(Xh, yh, one, config=cfg, dp=dp), args.repeats)[0]
    t_opacus = timed(lambda: opacus_epoch(Xh, yh, sigma, C, B), args.repeats)[0]
    t_plain1 = timed(lambda: train_ensemble(Xh, yh, one, config=cfg), args.repeats)[0]
    K = args.models
    masks = np.zeros((K, len(y)), dtype=bool)
    for k in range(K):
        masks[k, np.random.default_rng(k).permutation(len(y))[: len(y) // 2]] = True
    t_dpK = timed(lambda: train_ensemble(X, y, masks, config=cfg, dp=dp), args.repeats + 1)[0]
    t_plainK = timed(lambda: train_ensemble(X, y, masks, config=cfg), args.repeats + 1)[0]
    print(f"data: Adult, {len(yh)} rows per model, MLP hidden 64, batch {B} (q = {B / len(yh):.4f}), "
          f"sigma {sigma}, C {C}, Poisson sampling in both")  # fmt: skip
    print(
        f"one model: fairleak DP epoch vs Opacus DP epoch: {t_opacus / t_ours:.1f}x faster   (goal >= 5x)"
    )
    print(f"one model: fairleak DP epoch / fairleak non-private epoch: {t_ours / t_plain1:.2f}x")
    print(
        f"{K} models at once: DP epoch / non-private epoch: {t_dpK / t_plainK:.2f}x   (goal <= 1.5x)"
    )
    print(f"{K} models at once vs Opacus one by one: {t_opacus * K / t_dpK:.1f}x faster")
    noise_draws(K, sum(g.numel() for g in (torch.empty(X.shape[1], 64), torch.empty(64, 2))) + 66)


def noise_draws(K: int, P: int, steps: int = 200) -> None:
    """One step's gradient noise of K models (P parameters each): the compiled counter-based
    generator vs torch's normal_ with one generator per model (the fall-back path)."""
    from fairleak.train import native
    from fairleak.train.dp import ModelNoise

    if not native.available():
        print(f"noise: compiled generator unavailable ({native.status()})")
        return

    def run(compiled: bool) -> None:
        noise = ModelNoise(K, [P, 0], list(range(K)), compiled=compiled)
        for _ in range(steps):
            noise.fill()
            noise.first()

    t_c = timed(lambda: run(True), 3)[0]
    t_t = timed(lambda: run(False), 3)[0]
    print(f"noise of {K} models x {P} parameters a step: counter-based compiled {t_c / steps * 1e3:.2f} ms, "
          f"torch per-model generators {t_t / steps * 1e3:.2f} ms: {t_t / t_c:.1f}x faster")  # fmt: skip


if __name__ == "__main__":
    main()
