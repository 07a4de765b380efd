"""End to end: train an FHE-friendly model, score test rows encrypted, compare with plaintext.

What it shows (and what ``fairleak fhe-demo`` prints): the client preprocesses (and optionally
reduces, see :mod:`fairleak.fhe.reduce`) in plaintext with transforms fitted on public rows,
encrypts, sends ciphertexts; the server scores them with only the public context; the client
decrypts the margins. What it protects: the server sees neither records nor scores. What it does
not: the model is plaintext on the server, and whoever decrypts scores can still run membership
inference against it (fairleak's leakage figures are unchanged); fairness of the decisions can be
audited only by the key holder.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from fairleak.errors import ParameterError
from fairleak.fhe.client import FHEClient
from fairleak.fhe.model import PolynomialModel
from fairleak.fhe.params import ckks_parameters
from fairleak.fhe.reduce import PublicReduction
from fairleak.fhe.server import FHEServer

__all__ = ["EncryptedInferenceResult", "run_encrypted_inference", "train_fhe_model"]

MODELS = ("lr", "mlp")


@dataclass
class EncryptedInferenceResult:
    """Accuracy, agreement and latency of encrypted vs plaintext scoring of the same rows."""

    dataset: str
    model: dict[str, Any]
    n_features: int  # after preprocessing
    n_inputs: int  # encrypted per record (after the public reduction)
    reduction: dict[str, Any] | None
    n_rows: int
    parameters: dict[str, Any]
    plaintext_accuracy: float
    encrypted_accuracy: float
    decision_agreement: float
    max_abs_error: float
    timings: dict[str, float]
    sizes: dict[str, int]
    epsilon: float | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def encrypted_seconds(self) -> float:
        """Client encryption + server scoring + client decryption (keys made once, excluded)."""
        t = self.timings
        return t["encrypt_s"] + t["server_s"] + t["decrypt_s"]

    @property
    def slowdown(self) -> float:
        """Encrypted end-to-end time over plaintext scoring time of the same rows."""
        return self.encrypted_seconds / max(self.timings["plaintext_s"], 1e-9)

    def to_dict(self) -> dict[str, Any]:
        per = 1e3 / self.n_rows
        return {
            "dataset": self.dataset,
            "model": self.model,
            "n_features": self.n_features,
            "n_inputs": self.n_inputs,
            "reduction": self.reduction,
            "n_rows": self.n_rows,
            "parameters": self.parameters,
            "plaintext_accuracy": self.plaintext_accuracy,
            "encrypted_accuracy": self.encrypted_accuracy,
            "decision_agreement": self.decision_agreement,
            "max_abs_error": self.max_abs_error,
            "timings": dict(self.timings),
            "ms_per_record": {
                "encrypt": self.timings["encrypt_s"] * per,
                "server": self.timings["server_s"] * per,
                "decrypt": self.timings["decrypt_s"] * per,
                "encrypted_total": self.encrypted_seconds * per,
                "plaintext": self.timings["plaintext_s"] * per,
            },
            "slowdown_vs_plaintext": self.slowdown,
            "sizes": dict(self.sizes),
            "epsilon": self.epsilon,
            "notes": list(self.notes),
        }


def train_fhe_model(
    X: np.ndarray,
    y: np.ndarray,
    *,
    model: str = "lr",
    hidden: int = 16,
    epochs: int = 10,
    lr: float | None = None,
    dp_epsilon: float | None = None,
    seed: int = 0,
) -> Any:
    """Train one FHE-friendly model with fairleak's trainer: logistic regression (``"lr"``) or a
    one-hidden-layer MLP with CryptoNets' square activation (``"mlp"``); DP-SGD with
    ``dp_epsilon``. Returns the :class:`~fairleak.train.Ensemble` (one model)."""
    from fairleak.train import DPConfig, TrainConfig, train_ensemble

    if model not in MODELS:
        raise ParameterError(
            f"The 'model' parameter must be one of {MODELS}. Got {model!r} instead."
        )
    if model == "lr":
        config = TrainConfig(hidden=(), lr=lr or 1e-2, epochs=epochs, batch_size=256)
    else:
        config = TrainConfig(
            hidden=(hidden,), activation="square", lr=lr or 1e-3, epochs=epochs, batch_size=256
        )
    dp = None if dp_epsilon is None else DPConfig(target_epsilon=dp_epsilon)
    masks = np.ones((1, len(y)), dtype=bool)
    return train_ensemble(
        np.ascontiguousarray(X, dtype=np.float32), y, masks, config=config, seed=seed, dp=dp
    )


def run_encrypted_inference(
    *,
    dataset: str = "adult",
    model: str = "lr",
    hidden: int = 16,
    reduce: int | None = None,
    reduce_method: str = "pca",
    epochs: int = 10,
    lr: float | None = None,
    dp_epsilon: float | None = None,
    max_rows: int | None = None,
    public_fraction: float = 0.3,
    test_fraction: float = 0.2,
    poly_modulus_degree: int | None = None,
    n_threads: int | None = None,
    seed: int = 0,
    progress: Callable[[str], None] | None = None,
) -> EncryptedInferenceResult:
    """Train on a bundled dataset, score its test rows encrypted and in plaintext, compare.

    Rows are split (by ``seed``) into public rows (``public_fraction``: the preprocessor and the
    reduction are fitted there only), test rows (``test_fraction``, at most ``max_rows``) and
    training rows (the rest). ``reduce`` = k encrypts k inputs per record instead of all
    preprocessed columns (:class:`PublicReduction` with ``reduce_method``).
    """
    from fairleak.data import TabularPreprocessor, load_dataset

    say = progress or (lambda _stage: None)
    if model not in MODELS:
        raise ParameterError(
            f"The 'model' parameter must be one of {MODELS}. Got {model!r} instead."
        )
    for name, val in (("public_fraction", public_fraction), ("test_fraction", test_fraction)):
        if not 0.0 < val < 1.0:
            raise ParameterError(
                f"The '{name}' parameter must be a float in the range (0, 1). Got {val!r} instead."
            )
    if public_fraction + test_fraction >= 1.0:
        raise ParameterError(
            f"public_fraction + test_fraction must leave training rows; got {public_fraction} + {test_fraction}."
        )
    if max_rows is not None and (
        isinstance(max_rows, bool) or not isinstance(max_rows, int) or max_rows < 1
    ):
        raise ParameterError(
            f"The 'max_rows' parameter must be an int in the range [1, inf) or None. Got {max_rows!r} instead."
        )
    ds = load_dataset(dataset)
    n = len(ds.y)
    perm = np.random.default_rng(seed).permutation(n)
    n_pub, n_test = int(n * public_fraction), int(n * test_fraction)
    pub, test, train = perm[:n_pub], perm[n_pub : n_pub + n_test], perm[n_pub + n_test :]
    if max_rows is not None:
        test = test[:max_rows]
    say("preprocessing (fitted on public rows)")
    pre = TabularPreprocessor().fit(ds.features.iloc[pub])
    X_all = pre.transform(ds.features)
    reduction = PublicReduction(reduce, method=reduce_method, random_state=seed).fit(
        X_all[pub], ds.y[pub]
    )
    X = reduction.transform(X_all).astype(np.float32)
    say(f"training ({model}, {X.shape[1]} inputs)")
    ens = train_fhe_model(
        X[train],
        ds.y[train],
        model=model,
        hidden=hidden,
        epochs=epochs,
        lr=lr,
        dp_epsilon=dp_epsilon,
        seed=seed,
    )
    poly = PolynomialModel.from_ensemble(ens)
    params = ckks_parameters(poly.depth, poly_modulus_degree=poly_modulus_degree)
    Xt, yt = X[test], ds.y[test]

    logits = ens.predict_logits(Xt)[0]
    plain_margin = (logits[:, 1] - logits[:, 0]).astype(np.float64)
    # plaintext latency: the same polynomial in numpy (the fast way to score it in the clear)
    t0 = time.perf_counter()
    poly.margin(Xt)
    t_plain = time.perf_counter() - t0

    say("key generation")
    t0 = time.perf_counter()
    client = FHEClient(params, n_threads=n_threads)
    public = client.public_context()
    server = FHEServer(poly, public, n_threads=n_threads)
    t_keys = time.perf_counter() - t0
    say(f"encrypting {len(test):,} rows")
    t0 = time.perf_counter()
    batch = client.encrypt(Xt)
    t_enc = time.perf_counter() - t0
    say("scoring encrypted rows (server)")
    t0 = time.perf_counter()
    scores = server.score(batch)
    t_srv = time.perf_counter() - t0
    say("decrypting")
    t0 = time.perf_counter()
    enc_margin = client.decrypt(scores)
    t_dec = time.perf_counter() - t0

    model_info = {**poly.to_dict(), "trained": ens.config.to_dict()}
    red = None
    if reduce is not None:
        red = {"method": reduce_method, "k": reduce, "fitted_on": "public rows", "clipped": True}
    return EncryptedInferenceResult(
        dataset=ds.name,
        model=model_info,
        n_features=int(X_all.shape[1]),
        n_inputs=int(X.shape[1]),
        reduction=red,
        n_rows=len(test),
        parameters=params.to_dict(),
        plaintext_accuracy=float(np.mean((plain_margin > 0) == yt)),
        encrypted_accuracy=float(np.mean((enc_margin > 0) == yt)),
        decision_agreement=float(np.mean((plain_margin > 0) == (enc_margin > 0))),
        max_abs_error=float(np.max(np.abs(enc_margin - plain_margin))),
        timings={
            "keygen_s": t_keys,
            "encrypt_s": t_enc,
            "server_s": t_srv,
            "decrypt_s": t_dec,
            "plaintext_s": t_plain,
        },
        sizes={
            "public_context_bytes": len(public),
            "batch_bytes": batch.nbytes,
            "scores_bytes": scores.nbytes,
        },
        epsilon=None if ens.epsilon is None else float(ens.epsilon[0]),
        notes=[
            "The server saw ciphertexts only; the model is plaintext on the server.",
            "Whoever decrypts scores can still run membership inference: leakage figures are unchanged.",
        ],
    )
