"""Autoencoder robustness per subgroup on Adult (issue 17, the seeds' own setting), small.

A plain autoencoder (not the DP tabular VAE of the synthetic-data issue, which was not merged
when this was written) is trained here on Adult's members, in fairleak's encoding (standardised
numerics, one-hot categoricals; sex and age are protected and not features). On non-members:
sample-specific L2 perturbations of the numeric coordinates (budget 0.5 standardised units) that
maximise the reconstruction damage, with the output objective and the layer-conditioning one;
damage per group of sex x age (median, 95% bootstrap interval, disparity); and whether the
attack moves records' latent codes to another group, read by downstream sex and age
classifiers (logistic regression) fitted on the members' clean codes.

Writes experiments/results/robustness_ae.json.

    python experiments/robustness_ae.py            # ~1 min on 2 cores
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression

from fairleak.data import TabularPreprocessor, load_dataset, make_audit_split
from fairleak.robustness import PerturbationSpace
from fairleak.robustness.autoencoder import attack_autoencoder, damage_by_group, latent_group_shift

OUT = Path(__file__).parent / "results"


def main(seed: int = 0, n_test: int = 3000, eps: float = 0.5) -> None:
    t0 = time.perf_counter()
    torch.manual_seed(seed)
    ds = load_dataset("adult", protected=["sex", "age"])
    split = make_audit_split(len(ds), seed=seed, stratify=ds.y)
    pre = TabularPreprocessor().fit(ds.features.iloc[split.population])
    X = pre.transform(ds.features)
    space = PerturbationSpace.from_preprocessor(pre, X[split.population], categorical=False)
    D = X.shape[1]
    enc = torch.nn.Sequential(torch.nn.Linear(D, 64), torch.nn.ReLU(), torch.nn.Linear(64, 32),
                              torch.nn.ReLU(), torch.nn.Linear(32, 8))  # fmt: skip
    dec = torch.nn.Sequential(torch.nn.Linear(8, 32), torch.nn.ReLU(), torch.nn.Linear(32, 64),
                              torch.nn.ReLU(), torch.nn.Linear(64, D))  # fmt: skip
    opt = torch.optim.Adam([*enc.parameters(), *dec.parameters()], lr=2e-3)
    Xm = torch.as_tensor(X[split.members])
    gen = torch.Generator().manual_seed(seed)
    for _ in range(15):  # epochs
        for b in torch.randperm(len(Xm), generator=gen).split(256):
            opt.zero_grad()
            loss = ((dec(enc(Xm[b])) - Xm[b]) ** 2).mean()
            loss.backward()
            opt.step()
    rng = np.random.default_rng(seed)
    test = np.sort(rng.choice(split.nonmembers, min(n_test, len(split.nonmembers)), replace=False))
    Xt = X[test]
    sens = ds.sensitive.iloc[test].reset_index(drop=True)
    out: dict = {"seed": seed, "eps": eps, "n_members": len(split.members), "n_test": len(test),
                 "features": D, "changeable": len(space.numeric)}  # fmt: skip
    with torch.no_grad():
        out["reconstruction_mse_test"] = float(((dec(enc(torch.as_tensor(Xt))) - torch.as_tensor(Xt)) ** 2).mean())
    codes_m = enc(Xm).detach().numpy()
    clfs = {a: LogisticRegression(max_iter=1000).fit(codes_m, ds.sensitive[a].to_numpy()[split.members])
            for a in ("sex", "age")}  # fmt: skip
    for objective in ("output", "layer_conditioning"):
        res = attack_autoencoder(enc, dec, Xt, eps=eps, norm="l2", steps=30, objective=objective,
                                 space=space, seed=seed)  # fmt: skip
        by = damage_by_group(res.damage, sensitive=sens, n_bootstrap=300, seed=seed)
        shift = {a: latent_group_shift(clfs[a], res.z_clean, res.z_adv, sens[a].to_numpy()) for a in clfs}
        out[objective] = {
            "median_damage": float(np.median(res.damage)),
            "median_error_clean": float(np.median(res.error_clean)),
            "median_error_adv": float(np.median(res.error_adv)),
            "groups": by["groups"]["sex*age"], "disparity": by["disparity"],
            "latent_shift": shift,
            "group_classifier_accuracy": {a: float(clfs[a].score(res.z_clean, sens[a])) for a in clfs},
        }
    out["seconds"] = time.perf_counter() - t0
    OUT.mkdir(exist_ok=True)
    (OUT / "robustness_ae.json").write_text(json.dumps(out, indent=1, allow_nan=False))
    for objective in ("output", "layer_conditioning"):
        o = out[objective]
        d = o["disparity"]["sex*age"]
        print(objective, f"median damage {o['median_damage']:.3f} (clean error {o['median_error_clean']:.3f})",
              f"worst {d['worst']} {d['worst_median']:.3f} best {d['best']} {d['best_median']:.3f}",
              f"ratio {d['ratio']:.2f} {d['ratio_ci']}")  # fmt: skip
        for a, s in o["latent_shift"].items():
            print("  ", a, {g: (v["moved_share"], round(v["own_probability_change"], 3)) for g, v in s.items()})
    print(f"{out['seconds']:.0f} s")


if __name__ == "__main__":
    main()
