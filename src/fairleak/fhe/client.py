"""The client: holds the CKKS secret key, encrypts records, decrypts their scores.

Packing: one ciphertext per feature column with one record per slot (N/2 records per
ciphertext), so the server's linear layers are ciphertext-by-scalar multiply-adds and need no
rotations, hence no Galois keys (tens of MB) in the public context. Measured with TenSEAL 0.3.18
at N = 8192 on Adult's 80 features (benchmarks/bench_fhe.py): row packing (one record per
ciphertext, ``CKKSVector.dot``; or 32 records per ciphertext with ``enc_matmul_plain``) needs
log2(80) rotations per record or block and was 20-60x slower per record than column packing at
4,096 records; column packing costs the same for 1 record as for N/2 records, and the reduced
input (``PublicReduction``) is what brings a single record's latency down.

Encryption is symmetric (secret-key): only the key holder encrypts, and it measured 2.6x faster
per ciphertext than public-key encryption (4.2 vs 11 ms at N = 8192). The context sent to the
server is serialised without the secret key (TenSEAL's ``make_context_public()`` does the same
for public-key contexts and refuses symmetric ones); ``FHEServer`` refuses a context that holds
one.
"""

from __future__ import annotations

import numpy as np

from fairleak.errors import DataValidationError
from fairleak.fhe._tenseal import require_tenseal
from fairleak.fhe.messages import EncryptedBatch, EncryptedScores
from fairleak.fhe.params import CKKSParameters

__all__ = ["FHEClient"]


class FHEClient:
    """Key generation, encryption of record batches and decryption of scores (CKKS, TenSEAL).

    Args:
        parameters: from :func:`~fairleak.fhe.ckks_parameters` (at least the model's depth).
        n_threads: TenSEAL worker threads (default: all cores).
    """

    def __init__(self, parameters: CKKSParameters, *, n_threads: int | None = None) -> None:
        ts = require_tenseal()
        self.parameters = parameters
        self._ts = ts
        self._context = ts.context(
            ts.SCHEME_TYPE.CKKS,
            poly_modulus_degree=parameters.poly_modulus_degree,
            coeff_mod_bit_sizes=list(parameters.coeff_mod_bit_sizes),
            encryption_type=ts.ENCRYPTION_TYPE.SYMMETRIC,
            n_threads=n_threads,
        )  # relinearisation keys are generated with the context
        self._context.global_scale = 2.0**parameters.scale_bits

    def public_context(self, *, relin_keys: bool | None = None) -> bytes:
        """The serialised context for the server: parameters and evaluation keys, no secret key.

        Relinearisation keys (needed to square ciphertexts) are included when the parameters
        have depth >= 2, unless ``relin_keys`` says otherwise.
        """
        relin = self.parameters.depth >= 2 if relin_keys is None else bool(relin_keys)
        return self._context.serialize(
            save_public_key=False,  # symmetric encryption: there is none
            save_secret_key=False,
            save_galois_keys=False,
            save_relin_keys=relin,
        )

    def encrypt(self, X: np.ndarray) -> EncryptedBatch:
        """Encrypt rows of ``X`` [n, d], column-packed in chunks of N/2 records."""
        X = np.asarray(X, dtype=np.float64)
        if X.ndim != 2 or X.shape[0] == 0 or X.shape[1] == 0:
            raise DataValidationError(
                f"X must be a non-empty 2-D array [n_rows, n_features]; got shape {X.shape}."
            )
        if not np.isfinite(X).all():
            raise DataValidationError(
                "X contains NaN or infinite values; impute them before encrypting."
            )
        slots, ts, ctx = self.parameters.slots, self._ts, self._context
        chunks = tuple(
            tuple(ts.ckks_vector(ctx, col).serialize() for col in X[s : s + slots].T)
            for s in range(0, X.shape[0], slots)
        )
        return EncryptedBatch(n_rows=X.shape[0], n_features=X.shape[1], chunks=chunks)

    def decrypt(self, scores: EncryptedScores) -> np.ndarray:
        """The decrypted margins (logit_1 - logit_0), float64 [n_rows]."""
        ts, ctx = self._ts, self._context
        try:
            parts = [np.asarray(ts.ckks_vector_from(ctx, b).decrypt()) for b in scores.chunks]
        except Exception as exc:  # TenSEAL raises bare ValueError/RuntimeError on foreign bytes
            raise DataValidationError(
                f"Could not decrypt the scores with this client's key: {exc}"
            ) from exc
        out = np.concatenate(parts) if parts else np.zeros(0)
        if out.shape[0] != scores.n_rows:
            raise DataValidationError(
                f"The scores hold {out.shape[0]} values but claim {scores.n_rows} rows."
            )
        return out
