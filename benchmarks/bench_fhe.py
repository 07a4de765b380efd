"""Encrypted inference (CKKS, TenSEAL) vs plaintext scoring on Adult, per record, single and batched.

For logistic regression and the square MLP (16 units), on all 80 preprocessed inputs and on k
principal components fitted on public rows (the DCT-CryptoNets lever): client encryption, server
scoring and client decryption per record at batch sizes 1, 256 and 4,096 (column packing: one
ciphertext per input, records in slots), against the trained model's plaintext scoring of the
same rows (the folded model in numpy); accuracy of the decrypted decisions. Then the packing choice: row packing (one
record per ciphertext with CKKSVector.dot / mm; 32 records per ciphertext with enc_matmul_plain)
for the same models. Keys are made once per setting and not timed (key generation is printed).

    python benchmarks/bench_fhe.py [--ks 32,16,8] [--batches 1,256,4096] [--hidden 16]

Timings on a shared machine are noisy: read the ratios, not the seconds.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from _common import header, timed

from fairleak.data import TabularPreprocessor, load_dataset
from fairleak.fhe import (
    FHEClient,
    FHEServer,
    PolynomialModel,
    PublicReduction,
    ckks_parameters,
    require_tenseal,
    train_fhe_model,
)


def adult_split(seed: int = 0):
    ds = load_dataset("adult")
    perm = np.random.default_rng(seed).permutation(len(ds.y))
    n_pub, n_test = int(0.3 * len(perm)), int(0.2 * len(perm))
    pub, test, train = perm[:n_pub], perm[n_pub : n_pub + n_test], perm[n_pub + n_test :]
    pre = TabularPreprocessor().fit(ds.features.iloc[pub])
    return pre.transform(ds.features), ds.y, pub, test, train


def encrypted_times(client, server, X):
    """Seconds for encrypt, server, decrypt of the rows of X, and the decrypted margins."""
    t0 = time.perf_counter()
    batch = client.encrypt(X)
    t1 = time.perf_counter()
    scores = server.score(batch)
    t2 = time.perf_counter()
    margin = client.decrypt(scores)
    t3 = time.perf_counter()
    return (t1 - t0, t2 - t1, t3 - t2), margin


def row_packed(ts, poly: PolynomialModel, X: np.ndarray, n_blocks: int = 4):
    """The alternative packing for the same model: ms per record for one record per ciphertext
    (dot / mm with rotations) and, for logistic regression, 32+ records per ciphertext
    (enc_matmul_plain, records x inputs packed feature-major), and the Galois keys' size."""
    ctx = ts.context(ts.SCHEME_TYPE.CKKS, 8192, coeff_mod_bit_sizes=[60, 40, 40, 60])
    ctx.global_scale = 2.0**40
    t0 = time.perf_counter()
    ctx.generate_galois_keys()
    t_galois = time.perf_counter() - t0
    galois_mb = len(ctx.serialize(save_secret_key=False)) / 2**20
    x = X[0]
    if poly.signs is None:  # logistic regression: one dot product
        w, c = poly.weights[0][:, 0], float(poly.biases[0][0])

        def one():
            return ts.ckks_vector(ctx, x.tolist()).dot(w.tolist()).add_(c).decrypt()[0]

        t_one, val = timed(one, 2)
        err = abs(val - poly.margin(X[:1])[0])
        d2 = 1 << int(np.ceil(np.log2(X.shape[1])))
        rows = 4096 // d2
        block = X[:rows]

        def blocks():
            out = None
            for _ in range(n_blocks):
                enc = ts.enc_matmul_encoding(ctx, block)
                out = enc.enc_matmul_plain(w.tolist(), rows).add_(c).decrypt()
            return out

        t_blk, vals = timed(blocks)
        err = max(err, float(np.abs(np.asarray(vals[:rows]) - poly.margin(block)).max()))
        return t_one * 1e3, t_blk / (n_blocks * rows) * 1e3, rows, t_galois, galois_mb, err
    # square MLP: positive and negative units apart, so that only sums (rotations) follow the squares
    (w1,), (b1,), s = poly.weights, poly.biases, poly.signs
    pos, neg = s > 0, s < 0

    def one():
        v = ts.ckks_vector(ctx, x.tolist())
        out = v.mm(w1[:, pos].tolist()).add_(b1[pos].tolist()).square_().sum_()
        if neg.any():
            out = out.sub_(v.mm(w1[:, neg].tolist()).add_(b1[neg].tolist()).square_().sum_())
        return out.add_(float(poly.offset)).decrypt()[0]

    t_one, val = timed(one)
    return t_one * 1e3, None, 1, t_galois, galois_mb, abs(val - poly.margin(X[:1])[0])


def acc(margin: np.ndarray, y: np.ndarray, show: bool) -> str:
    return f"{np.mean((margin > 0) == y):.4f}" if show else "-"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--ks", default="32,16,8")
    ap.add_argument("--batches", default="1,256,4096")
    ap.add_argument("--hidden", type=int, default=16)
    ap.add_argument("--epochs", type=int, default=10)
    args = ap.parse_args()
    ts = require_tenseal()
    header(f"Encrypted inference: CKKS (TenSEAL {ts.__version__}) vs plaintext, Adult")
    ks = [None] + [int(k) for k in args.ks.split(",") if k]
    batches = [int(b) for b in args.batches.split(",") if b]
    X_all, y, pub, test, train = adult_split()
    print(f"{len(train):,} training rows, {len(pub):,} public rows (preprocessor and PCA), "
          f"{len(test):,} test rows; {X_all.shape[1]} preprocessed inputs")  # fmt: skip
    for model in ("lr", "mlp"):
        print(
            f"\n-- {model}"
            + ("" if model == "lr" else f" (one hidden layer of {args.hidden}, x^2)")
        )
        print(f"{'inputs':>7} {'batch':>6} {'encrypt':>9} {'server':>9} {'decrypt':>9} "
              f"{'total':>9} {'plain':>9} {'enc/plain':>10} {'vs all':>7} {'acc enc':>8} "
              f"{'acc plain':>9} {'max|err|':>9}   (ms per record)")  # fmt: skip
        full_total: dict[int, float] = {}
        for k in ks:
            red = PublicReduction(k).fit(X_all[pub])
            X = red.transform(X_all).astype(np.float32)
            ens = train_fhe_model(X[train], y[train], model=model, hidden=args.hidden,
                                  epochs=args.epochs)  # fmt: skip
            poly = PolynomialModel.from_ensemble(ens)
            t0 = time.perf_counter()
            client = FHEClient(ckks_parameters(poly.depth))
            server = FHEServer(poly, client.public_context())
            t_keys = time.perf_counter() - t0
            for b in batches:
                Xb, yb = X[test[:b]], y[test[:b]]
                (t_e, t_s, t_d), margin = encrypted_times(client, server, Xb)
                logits = ens.predict_logits(Xb)[0]
                plain = (logits[:, 1] - logits[:, 0]).astype(np.float64)
                # plaintext baseline: the same polynomial in numpy (Ensemble.predict_logits has
                # ~15 ms of fixed overhead per call here, which would flatter the ratio)
                t_plain = timed(lambda Xb=Xb, poly=poly: poly.margin(Xb), 5)[0]
                total = t_e + t_s + t_d
                if k is None:
                    full_total[b] = total
                per = 1e3 / len(Xb)
                print(f"{X.shape[1]:>7} {len(Xb):>6} {t_e * per:>9.3f} {t_s * per:>9.3f} "
                      f"{t_d * per:>9.4f} {total * per:>9.3f} {t_plain * per:>9.5f} "
                      f"{total / t_plain:>9,.0f}x {full_total[b] / total:>6.1f}x "
                      f"{acc(margin, yb, b == batches[-1]):>8} {acc(plain, yb, b == batches[-1]):>9} "
                      f"{np.abs(margin - plain).max():>9.1e}")  # fmt: skip
            print(f"{'':>7} keys {t_keys * 1e3:.0f} ms, public context "
                  f"{len(client.public_context()) / 2**20:.2f} MiB, "
                  f"{poly.n_plaintext_multiplications} scalar multiplications + {poly.n_squares} "
                  f"squares per batch, N = {client.parameters.poly_modulus_degree}")  # fmt: skip
            if k is None or k == ks[-1]:
                one, blk, rows, t_g, g_mb, err = row_packed(ts, poly, X[test[:4096]])
                print(f"{'':>7} row packing (Galois keys {t_g:.1f} s, context {g_mb:.0f} MiB): "
                      f"1 record {one:.1f} ms" + ("" if blk is None else
                      f"; {rows} records per ciphertext {blk:.3f} ms/record") +
                      f"; max|err| {err:.1e}")  # fmt: skip
    print("\nenc/plain: encrypted end to end (encrypt + server + decrypt) over the trained model's "
          "plaintext scoring of the same rows; vs all: speed-up of k inputs over all inputs.")  # fmt: skip


if __name__ == "__main__":
    main()
