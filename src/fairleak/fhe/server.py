"""The server: scores encrypted batches with a plaintext model and a context without secret key.

It sees ciphertexts in and ciphertexts out: it learns neither the records nor their scores. It
does hold the model in plaintext, and the client who decrypts scores can still query it as in
any membership-inference attack, so fairleak's leakage figures for the model are unchanged.
"""

from __future__ import annotations

from typing import Any

from fairleak.errors import DataValidationError, ParameterError
from fairleak.fhe._tenseal import require_tenseal
from fairleak.fhe.messages import EncryptedBatch, EncryptedScores
from fairleak.fhe.model import PolynomialModel

__all__ = ["FHEServer"]


class FHEServer:
    """Evaluates a :class:`PolynomialModel` on column-packed CKKS batches.

    Args:
        model: the folded model (``PolynomialModel.from_ensemble``).
        public_context: ``FHEClient.public_context()``; a context holding a secret key is refused.
        n_threads: TenSEAL worker threads (default: all cores).
    """

    def __init__(
        self, model: PolynomialModel, public_context: bytes, *, n_threads: int | None = None
    ) -> None:
        ts = require_tenseal()
        self._ts = ts
        self.model = model
        try:
            ctx = ts.context_from(public_context, n_threads)
        except Exception as exc:  # TenSEAL raises bare errors on bytes that are no context
            raise DataValidationError(
                f"public_context is not a serialised TenSEAL context: {exc}"
            ) from exc
        if ctx.has_secret_key():
            raise ParameterError(
                "The server was given a context that holds the secret key, which would let it "
                "decrypt records and scores. Pass FHEClient.public_context() (serialised without "
                "the secret key) instead."
            )
        levels = ctx.seal_context().data.first_context_data().chain_index()
        if model.depth > levels:
            raise ParameterError(
                f"The model needs multiplicative depth {model.depth} but the client's CKKS "
                f"parameters allow {levels}. Create the client with "
                f"ckks_parameters(depth={model.depth}) (a larger coefficient modulus, possibly a "
                f"larger poly_modulus_degree)."
            )
        if model.depth >= 2 and not ctx.has_relin_keys():
            raise ParameterError(
                "The model squares ciphertexts, which needs relinearisation keys, and the public "
                "context has none. Serialise it with FHEClient.public_context(relin_keys=True)."
            )
        self._context = ctx
        # a weight that encodes to 0 at this scale would make a transparent ciphertext, which a
        # context without the secret key cannot replace by an encryption of 0: skip it (its
        # contribution is below the scheme's precision anyway)
        self._min_weight = 1.0 / ctx.global_scale

    @property
    def context(self) -> Any:
        """The server's TenSEAL context (public: no secret key)."""
        return self._context

    def score(self, batch: EncryptedBatch) -> EncryptedScores:
        """Encrypted margins of the batch's records."""
        if batch.n_features != self.model.n_features:
            raise DataValidationError(
                f"The encrypted batch has {batch.n_features} feature columns but the model takes "
                f"{self.model.n_features}; encrypt the records after the same preprocessing and "
                f"reduction as the training data."
            )
        if any(len(chunk) != batch.n_features for chunk in batch.chunks):
            raise DataValidationError(
                "Every chunk of the encrypted batch must hold one ciphertext per feature."
            )
        out = []
        for chunk in batch.chunks:
            try:
                cols = [self._ts.ckks_vector_from(self._context, b) for b in chunk]
            except Exception as exc:
                raise DataValidationError(
                    f"The batch holds bytes that are no CKKS vector: {exc}"
                ) from exc
            out.append(self._evaluate(cols).serialize())
        return EncryptedScores(n_rows=batch.n_rows, chunks=tuple(out))

    def _affine(self, h: list[Any], w, b: float, where: str) -> Any:
        """sum_j w_j h_j + b on ciphertexts. TenSEAL rescales after every multiplication
        (~1.1-1.4 ms each at N = 8192 here, most of the MLP's time); summing unrescaled products
        and rescaling once per unit measured ~3-4x cheaper with SEAL's evaluator
        (``tenseal.sealapi``), but TenSEAL's vectors expose no rescale and that API serialises
        ciphertexts only to files, so the well-kept high-level path is used."""
        acc = None
        for j, wj in enumerate(w):
            if abs(wj) < self._min_weight:
                continue
            term = h[j] * float(wj)  # plaintext-scalar multiply (one rescale)
            acc = term if acc is None else acc.add_(term)
        if acc is None:
            raise ParameterError(
                f"{where} has all input weights below the CKKS precision ({self._min_weight:.1e}); "
                "its output does not depend on the records."
            )
        return acc.add_(float(b)) if b != 0.0 else acc

    def _evaluate(self, cols: list[Any]) -> Any:
        m = self.model
        h = cols
        for layer, (w, b) in enumerate(zip(m.weights, m.biases, strict=True)):
            z = [
                self._affine(h, w[:, u], float(b[u]), f"Unit {u} of layer {layer}")
                for u in range(w.shape[1])
            ]
            if m.signs is None:
                return z[0]
            h = [zu.square_() for zu in z]  # relinearised and rescaled by TenSEAL
        assert m.signs is not None
        acc = h[0] if m.signs[0] > 0 else h[0].neg_()
        for hu, s in zip(h[1:], m.signs[1:], strict=True):
            acc = acc.add_(hu) if s > 0 else acc.sub_(hu)
        return acc.add_(float(m.offset)) if m.offset != 0.0 else acc
