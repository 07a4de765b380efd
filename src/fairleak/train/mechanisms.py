"""The per-step mechanisms of private training, as pieces a DP step is made of.

Like Opacus's ``DPOptimizer`` (``pre_step`` -> ``clip_and_accumulate`` -> ``add_noise`` ->
``scale_grad``), a DP-SGD step here is: every mechanism draws its step noise (``begin_step``);
per chunk of models, margin-gradient terms adjust the per-sample loss gradient
(:class:`PrivateFairnessSign`); the clipping rule gives each sample's factor
(:class:`FlatClipping` = DP-SGD, :class:`GroupAdaptiveClipping` = DP-SGD-S); then the trainer
adds Gaussian noise scaled by the largest bound and divides by the expected batch size. A variant
overrides only the piece it changes. Every mechanism lists its :class:`Release`\\ s (what it
publishes each step from the step's Poisson batch), which is what the accountant charges.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from fairleak.train.config import DPConfig, FairnessConfig
from fairleak.train.dp import clip_factors
from fairleak.train.penalties import linearised_weights

__all__ = [
    "BatchView",
    "FlatClipping",
    "GroupAdaptiveClipping",
    "GroupCounts",
    "PrivateFairnessSign",
    "Release",
    "release_group_counts",
]


@dataclass(frozen=True)
class Release:
    """A statistic released every step from the step's Poisson batch with Gaussian noise whose
    standard deviation is ``noise_multiplier`` times its L2 sensitivity."""

    name: str
    noise_multiplier: float


@dataclass(frozen=True)
class GroupCounts:
    """Per model, the (noisy) number of training rows and of positive labels in each group of
    one protected attribute: ``counts`` / ``positives`` [K, G]."""

    counts: np.ndarray
    positives: np.ndarray


def release_group_counts(
    codes: list[np.ndarray], y: np.ndarray, rows: list[np.ndarray], multiplier: float,
    gens: list[np.random.Generator],
) -> list[GroupCounts]:  # fmt: skip
    """Release, once per model, the row and positive-label counts of every group of each
    attribute in ``codes``, with Gaussian noise: a record changes one count and at most one
    positive count per attribute, so the L2 sensitivity is sqrt(2 A) and the noise standard
    deviation ``multiplier * sqrt(2 A)``. One Gaussian mechanism (no subsampling, one step),
    composed with training by the accountant. Counts are floored at 1, positives clipped to
    [0, count] (post-processing). Model k's noise comes from ``gens[k]`` only."""
    sd = multiplier * math.sqrt(2 * len(codes))
    sizes = [int(c.max()) + 1 for c in codes]
    noise = [g.normal(0.0, sd, 2 * sum(sizes)) for g in gens]  # per model: counts then positives
    out, off = [], 0
    for c, G in zip(codes, sizes, strict=True):
        cnt = np.stack([np.bincount(c[r], minlength=G) for r in rows]).astype(np.float64)
        pos = np.stack([np.bincount(c[r], weights=y[r], minlength=G) for r in rows])
        z = np.stack([v[2 * off : 2 * off + 2 * G] for v in noise])
        cnt = np.maximum(cnt + z[:, :G], 1.0)
        pos = np.clip(pos + z[:, G:], 0.0, cnt)
        out.append(GroupCounts(cnt, pos))
        off += G
    return out


@dataclass(frozen=True)
class BatchView:
    """One chunk of models' share of a step: the models' slice, batch row ids and 0/1 validity
    [k, M]."""

    sl: slice
    idx: torch.Tensor
    valid: torch.Tensor


class FlatClipping:
    """DP-SGD's clipping (Abadi et al. 2016): every per-sample gradient to norm ``C``
    (Opacus's flat clipping, ``min(1, C / (||g|| + 1e-6))``). Releases nothing extra."""

    releases: tuple[Release, ...] = ()
    noise_width = 0  # standard normals a model needs a step (from its own noise row)

    def __init__(self, max_grad_norm: float, n_models: int) -> None:
        self.C0 = float(max_grad_norm)
        self.K = n_models

    def bind_noise(self, z: torch.Tensor) -> None:
        """``z`` [K, noise_width]: this mechanism's part of the models' noise rows, refilled by
        the trainer before every step."""
        self.z = z

    def begin_step(self) -> None:
        """Prepare this step's release noise for all K models (none here)."""

    def factors(self, sq_norms: torch.Tensor, batch: BatchView) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-sample clipping factors [k, M] (0 on padding) and each model's largest bound [k]."""
        c = clip_factors(sq_norms, self.C0).mul_(batch.valid)
        return c, torch.full((c.shape[0],), self.C0)


class GroupAdaptiveClipping(FlatClipping):
    """DP-SGD-S (Yang et al. 2025), in the sound form of ALGORITHMS.md section 5.

    Each step releases the per-group sums of per-sample gradient norms clipped at C_est (groups
    are disjoint: one Gaussian release of sensitivity C_est, multiplier ``norm_noise_multiplier``,
    from the same batch as the gradient: accounted jointly with it). From them (post-processing)
    the clipping rule estimates each group's mean norm r_k (smoothed across steps by an
    exponential moving average) and the batch's r, pools groups expected to have fewer than
    ``min_group_batch`` records a batch, and clips group k at ``C0 * clip(r / r_k, 1 / tau, tau)``
    (or the authors' ``C0 * min(tau, r / r_k)`` with ``tau_mode="upper"``). C_est above C0 keeps
    the estimate informative when most norms exceed C0 (clipped at C0, every r_k would be about
    C0 and the method would collapse to DP-SGD with up to ``tau`` times its noise).
    ``trace`` keeps each step's bounds [K, G] (for studies).
    """

    def __init__(
        self, dp: DPConfig, codes: torch.Tensor, n_groups: int, expected_group: torch.Tensor
    ) -> None:
        super().__init__(dp.max_grad_norm, expected_group.shape[0])
        self.tau, self.mode = float(dp.tau), dp.tau_mode
        self.C_est = dp.estimate_clip
        self.sigma_n = float(dp.norm_noise_multiplier)
        self.beta = float(dp.norm_smoothing)
        self.releases = (Release("per-group clipped norm sums", self.sigma_n),)
        self.codes, self.G = codes, n_groups
        # groups expected below min_group_batch records a batch share one pooled estimate
        small = expected_group < dp.min_group_batch  # [K, G]
        self.pool = small.float()
        self.expected_group = expected_group.clamp(min=1e-9)  # [K, G]
        self.noise_width = n_groups
        self.ema: torch.Tensor | None = None  # smoothed noisy sums [K, G]
        self.trace: list[torch.Tensor] = []

    def begin_step(self) -> None:
        self.noise = self.z * (self.sigma_n * self.C_est)
        self.bounds = torch.empty(self.K, self.G)

    def factors(self, sq_norms: torch.Tensor, batch: BatchView) -> tuple[torch.Tensor, torch.Tensor]:
        sl, valid = batch.sl, batch.valid
        gb = self.codes[batch.idx]  # [k, M]
        oh = torch.nn.functional.one_hot(gb, self.G).float() * valid.unsqueeze(-1)
        clipped_norm = torch.minimum(sq_norms.sqrt(), torch.tensor(self.C_est))
        noisy = (torch.einsum("kmg,km->kg", oh, clipped_norm) + self.noise[sl]).clamp(min=0.0)
        if self.ema is None:
            self.ema = torch.zeros(self.K, self.G)
            self.ema[sl] = noisy
        else:
            self.ema[sl] = self.beta * self.ema[sl] + (1 - self.beta) * noisy
        sums, exp = self.ema[sl], self.expected_group[sl]
        pool = self.pool[sl]
        pooled = (sums * pool).sum(1, keepdim=True) / (exp * pool).sum(1, keepdim=True).clamp(min=1e-9)
        r_k = torch.where(pool > 0, pooled.expand_as(sums), sums / exp)
        r = sums.sum(1, keepdim=True) / exp.sum(1, keepdim=True)
        ratio = torch.where(r_k > 0, r / r_k.clamp(min=1e-12), torch.full_like(r_k, self.tau))
        lo = 1.0 / self.tau if self.mode == "two_sided" else 0.0
        C_k = self.C0 * torch.clamp(ratio, min=lo, max=self.tau)  # [k, G]
        self.bounds[sl] = C_k
        if sl.stop is None or sl.stop >= self.K:
            self.trace.append(self.bounds.clone())
        c = clip_factors(sq_norms, torch.gather(C_k, 1, gb)).mul_(valid)
        return c, C_k.max(1).values


class PrivateFairnessSign:
    """A fairness penalty under DP-SGD (ALGORITHMS.md section 5).

    A penalty on group means couples samples and has no per-sample gradient, so each gap is
    linearised (``penalty = sum_i w_i p_i``, see :func:`~fairleak.train.penalties.linearised_weights`)
    with the expected group sizes held fixed, and the *sign* of each linearised gap is
    re-estimated every step from per-group sums of P(y=1) released with noise (each sample is in
    at most one of the two compared groups of a term: L2 sensitivity sqrt(T) over T terms), so
    that the penalty is the subgradient of ``|gap|`` rather than a push in a fixed direction.
    """

    def __init__(
        self,
        fairness: FairnessConfig,
        dp: DPConfig,
        lam: torch.Tensor,
        y: np.ndarray,
        groups: np.ndarray,
        n_groups: list[int],
        rows: list[np.ndarray],
        q: np.ndarray,
        stats: list[GroupCounts],
    ) -> None:
        self.reduce = fairness.reduce
        self.lam = lam
        self.sigma_f = float(dp.fairness_noise_multiplier)
        self.releases = (Release("fairness gap signs", self.sigma_f),)
        w, sizes = [], []
        for k, r in enumerate(rows):  # group sizes and base rates: the released noisy counts
            counts = [(st.counts[k], st.positives[k]) for st in stats]
            wk, nk = linearised_weights(y, groups, n_groups, fairness.penalty, r, counts=counts)
            w.append(wk)
            sizes.append(nk)
        self.w = torch.from_numpy(np.stack(w))  # [K, T, N]
        self.K, self.T = self.w.shape[0], self.w.shape[1]
        qt = torch.from_numpy(np.asarray(q, dtype=np.float32)).view(-1, 1)
        n = torch.from_numpy(np.stack(sizes)).float()  # [K, T, 2]: released sizes of the pair
        # expected sizes of the compared groups in a Poisson batch
        self.exp_hi = (n[..., 0] * qt).clamp(min=1e-9)
        self.exp_lo = (n[..., 1] * qt).clamp(min=1e-9)
        self.noise_width = 2 * self.T

    def bind_noise(self, z: torch.Tensor) -> None:
        self.z = z

    def begin_step(self) -> None:
        sd = self.sigma_f * math.sqrt(self.T)
        self.noise = (self.z * sd).reshape(self.K, 2, self.T)

    def margin_grad(self, d: torch.Tensor, margin: torch.Tensor, batch: BatchView) -> torch.Tensor:
        """``d`` plus lambda times the gradient of the signed linearised gaps w.r.t. the margins."""
        sl, idx, valid = batch.sl, batch.idx, batch.valid
        p1 = torch.sigmoid(margin)
        w_b = torch.gather(self.w[sl], 2, idx.unsqueeze(1).expand(-1, self.T, -1))
        w_b = w_b * valid.unsqueeze(1)  # [k, T, M]
        pos, neg = (w_b > 0).float(), (w_b < 0).float()
        s_hi = (pos * p1.unsqueeze(1)).sum(-1) + self.noise[sl, 0]
        s_lo = (neg * p1.unsqueeze(1)).sum(-1) + self.noise[sl, 1]
        gap = s_hi / self.exp_hi[sl] - s_lo / self.exp_lo[sl]  # [k, T]
        sign = torch.sign(gap)
        if self.reduce == "max":  # subgradient of the largest |gap| only
            sign = sign * torch.nn.functional.one_hot(gap.abs().argmax(1), self.T).float()
        coef = (sign.unsqueeze(-1) * w_b).sum(1)  # [k, M]
        return d + self.lam[sl].view(-1, 1) * coef * p1 * (1 - p1)
