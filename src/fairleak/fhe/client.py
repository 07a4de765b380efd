"""The client: holds the CKKS secret key, encrypts records, decrypts their scores.

Packing: one ciphertext per input column with one record per slot (N/2 = 4,096 records per
ciphertext at N = 8192), so the server's layers are ciphertext-by-scalar multiply-adds with no
rotations, hence no Galois keys in the public context (0 bytes of keys for logistic regression,
1.3 MiB of relinearisation keys for the square MLP, against 34 MiB of Galois keys for rotations).
Measured on Adult's 80 inputs (benchmarks/bench_fhe.py, TenSEAL 0.3.18, shared 2-core machine):
at 4,096 records column packing took 0.09 ms per record for logistic regression against 0.87 ms
for row packing with 32 records per ciphertext (``enc_matmul_plain``: one multiplication and 7
rotations per block), and 0.56 ms for the square MLP against ~1.3 s per record for one record
per ciphertext (``mm``). Column packing costs as much for 1 record as for 4,096: for one record
row packing was faster (LR 36 ms vs 430 ms, MLP 1.3 s vs 1.7 s), and the public reduction
(``PublicReduction``, k = 8 inputs: LR 29 ms, MLP 0.5 s) brings one record below the
row-packed latency at full width, without rotation keys. This module is built for batch scoring; row packing is not implemented.

Encryption is symmetric (secret-key): only the key holder encrypts, and it measured 2.6x faster
per ciphertext than public-key encryption (4.2 vs 11 ms at N = 8192). The context sent to the
server is serialised without the secret key (TenSEAL's ``make_context_public()`` does the same
for public-key contexts and refuses symmetric ones); ``FHEServer`` refuses a context that holds
one. Encryption draws its noise from SEAL's own cryptographic generator, deliberately not
from a ``seed``: reproducible ciphertexts would be insecure (decrypted scores are reproducible to
the stated tolerance).
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
