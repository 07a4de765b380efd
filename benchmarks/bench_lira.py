"""LiRA with 64 reference models on Adult, end to end (training included): reference models
trained K at once by the ensemble trainer vs one at a time (nn.Module + Adam per model; a sample
is timed and extrapolated).

    python benchmarks/bench_lira.py [--models 64] [--epochs 10] [--sample 4]
"""

from __future__ import annotations

import argparse

import numpy as np
from _common import adult_features, header, timed
from bench_train import conventional

from fairleak.attacks import attack_metrics, lira_scores, logit_scaled_confidence, paired_half_masks
from fairleak.train import TrainConfig, train_ensemble


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--models", type=int, default=64)
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--sample", type=int, default=4)
    args = ap.parse_args()
    header("LiRA end to end: reference models K at once vs one at a time")
    X, y, _ = adult_features()
    rng = np.random.default_rng(0)
    pool = rng.permutation(len(y))
    audit = pool[: len(y) // 2]
    members = np.zeros(len(audit), dtype=bool)
    members[: len(audit) // 2] = True
    cfg = TrainConfig(hidden=(64,), epochs=args.epochs)
    target = train_ensemble(X[audit], y[audit], members[None], config=cfg, seed=0)
    phi_t = logit_scaled_confidence(target.predict_logits(X[audit])[0], y[audit])
    # reference models on random halves of the audit set: as many rows as the target's
    masks = paired_half_masks(len(audit), args.models, seed=1)
    Xa, ya = X[audit], y[audit]

    def score(refs):
        phi = logit_scaled_confidence(refs.predict_logits(Xa), ya)
        return lira_scores(phi_t, phi, masks)

    t_ours, (refs, scores) = timed(
        lambda: (r := train_ensemble(Xa, ya, masks, config=cfg, seed=1), score(r))
    )
    t_score = timed(lambda: score(refs))[0]
    auc = attack_metrics(scores, members, n_bootstrap=0).auc
    sample = min(args.sample, args.models)
    t_one = timed(lambda: [conventional(Xa, ya, np.flatnonzero(masks[k]), 64, args.epochs, 256, 1e-3, k)
                           for k in range(sample)])[0]  # fmt: skip
    t_conv = t_one / sample * args.models + t_score
    print(
        f"{args.models} reference models (MLP 64, {args.epochs} epochs) on halves of the {len(audit)} "
        f"audit points (target: {members.sum()} members); LiRA online AUC {auc:.3f}"
    )
    print(
        f"conventional: {sample} models timed, extrapolated to {args.models} (+ the same scoring)"
    )
    print(
        f"LiRA end to end, fairleak vs reference models one at a time: {t_conv / t_ours:.1f}x faster"
    )


if __name__ == "__main__":
    main()
