"""What travels between client and server: serialised ciphertexts, nothing else.

The server gets bytes it can only compute on; keeping the messages as bytes (not TenSEAL objects
linked to the client's context) makes the separation of keys real in tests and in the demo.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["EncryptedBatch", "EncryptedScores"]


@dataclass(frozen=True)
class EncryptedBatch:
    """A batch of records, column-packed: ``chunks[c][j]`` is one CKKS ciphertext holding feature j
    of records ``c * slots`` to ``(c + 1) * slots - 1`` (one record per slot)."""

    n_rows: int
    n_features: int
    chunks: tuple[tuple[bytes, ...], ...]

    @property
    def nbytes(self) -> int:
        return sum(len(b) for chunk in self.chunks for b in chunk)


@dataclass(frozen=True)
class EncryptedScores:
    """Encrypted margins (logit_1 - logit_0), one ciphertext per chunk of records."""

    n_rows: int
    chunks: tuple[bytes, ...]

    @property
    def nbytes(self) -> int:
        return sum(len(b) for b in self.chunks)
