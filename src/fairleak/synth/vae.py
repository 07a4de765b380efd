"""The tabular VAE of FLIP-lite: every column categorical (numeric = bin), one-hot in, one
softmax per column out (ALGORITHMS-2.md section 3.2).

No BatchNorm (it couples samples and breaks per-sample clipping); LayerNorm would be allowed.
``encoder`` and ``decoder`` are plain ``torch.nn.Sequential`` modules so other code (robustness
studies, probes) can use them directly.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

__all__ = ["TabularVAE", "per_sample_loss"]


class TabularVAE(nn.Module):
    """Encoder ``D -> h -> h -> (mu, log var) in R^latent``, decoder ``latent -> h -> h -> D``
    logits (``D = sum(cardinalities)``, a softmax per column)."""

    def __init__(self, cardinalities: Sequence[int], hidden: int = 128, latent: int = 16) -> None:
        super().__init__()
        self.cardinalities = [int(c) for c in cardinalities]
        self.offsets = np.r_[0, np.cumsum(self.cardinalities)].astype(int)
        self.latent = int(latent)
        d = int(self.offsets[-1])
        self.encoder = nn.Sequential(
            nn.Linear(d, hidden), nn.SiLU(), nn.Linear(hidden, hidden), nn.SiLU(),
            nn.Linear(hidden, 2 * latent),
        )  # fmt: skip
        self.decoder = nn.Sequential(
            nn.Linear(latent, hidden), nn.SiLU(), nn.Linear(hidden, hidden), nn.SiLU(),
            nn.Linear(hidden, d),
        )  # fmt: skip

    @property
    def width(self) -> int:
        return int(self.offsets[-1])

    def one_hot(self, codes: torch.Tensor) -> torch.Tensor:
        """Codes [N, J] -> one-hot [N, D] float32."""
        x = torch.zeros(codes.shape[0], self.width)
        idx = codes + torch.as_tensor(self.offsets[:-1], dtype=codes.dtype)
        return x.scatter_(1, idx, 1.0)

    def encode_stats(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.encoder(x)
        return h[..., : self.latent], h[..., self.latent :].clamp(-10.0, 10.0)

    def forward(self, x: torch.Tensor, eps: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        mu, logvar = self.encode_stats(x)
        z = mu + eps * torch.exp(0.5 * logvar)
        return mu, logvar, self.decoder(z)

    def column_log_softmax(self, logits: torch.Tensor) -> torch.Tensor:
        """Log-probabilities, normalised within each column's slice."""
        parts = [
            torch.log_softmax(logits[..., a:b], dim=-1)
            for a, b in zip(self.offsets[:-1], self.offsets[1:], strict=True)
        ]
        return torch.cat(parts, dim=-1)


def per_sample_loss(
    model: TabularVAE, outputs: tuple[torch.Tensor, torch.Tensor, torch.Tensor], x: torch.Tensor,
    direction: torch.Tensor, beta: float, weight: float,
) -> torch.Tensor:  # fmt: skip
    """``l_i = sum_j CE_j + beta KL(N(mu_i, sigma_i^2) || N(0, I)) + weight * 2 direction_i . mu_i``
    for each row (works on one row under ``torch.func.vmap`` too). ``direction_i`` is the
    released, constant ``m_g(i) - m_bar`` of the row's group (section 3.4): the alignment term is a
    per-record linearisation of the group-mean spread, so clipping ``l_i``'s gradient still bounds
    what one record contributes."""
    mu, logvar, logits = outputs  # model(x, eps), or a functional call of it
    recon = -(x * model.column_log_softmax(logits)).sum(-1)
    kl = 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar).sum(-1)
    align = 2.0 * (direction * mu).sum(-1)
    return recon + beta * kl + weight * align
