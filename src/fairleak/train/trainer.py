"""The vectorised ensemble trainer: K small tabular models trained at once as batched tensor programs.

Why by hand: an audit trains hundreds of small models (LiRA reference models, shadow models,
the 400 models of PA-ALOOA, sweeps). Trained one ``nn.Module`` at a time they leave a CPU idle
between tiny kernels. Here the K models' weights are stacked ([K, D_in, D_out]) and every step is
a handful of batched matmuls over all K models, each with its own rows, seed, batch order and
optimiser state (kernels in ``kernels.py``, schedules in ``batches.py``, the DP step's pieces in
``mechanisms.py``). Training K models together equals training each alone with the same seed
(tested).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from scipy.special import ndtri

from fairleak.errors import DataValidationError, ParameterError
from fairleak.train import native
from fairleak.train.batches import BatchSampler
from fairleak.train.config import DPConfig, FairnessConfig, TrainConfig
from fairleak.train.dp import (
    ModelNoise,
    calibrate_joint,
    clip_factors,
    compute_epsilon,
    ghost_sq_norms,
    joint_noise_multiplier,
)
from fairleak.train.kernels import ACTIVATIONS, Workspace, linear, sq_norm, weight_grad_into
from fairleak.train.mechanisms import (
    BatchView,
    FlatClipping,
    GroupAdaptiveClipping,
    PrivateFairnessSign,
    release_group_counts,
)
from fairleak.train.model import Ensemble, model_seeds
from fairleak.train.native import SparseRows, sparse_rows
from fairleak.train.penalties import batch_penalty

__all__ = ["clipped_gradient_sum", "train_ensemble"]


@dataclass
class _Chunk:
    """One chunk of models: its slice, views of the stacked weights, biases and gradient
    buffers (first-dimension slices, so contiguous), and its workspace."""

    sl: slice
    W: list[torch.Tensor]
    b: list[torch.Tensor]
    gW: list[torch.Tensor]
    gb: list[torch.Tensor]
    ws: Workspace


_CHUNK_BYTES = 1 << 22  # batch activations per chunk of models (see _Trainer._init_params)


def _validate(X: np.ndarray, y: np.ndarray, masks: np.ndarray, groups: np.ndarray | None):
    X = np.require(X, dtype=np.float32, requirements=["C", "W"])  # pandas 3: read-only arrays
    y = np.asarray(y)
    if X.ndim != 2:
        raise DataValidationError(f"X must be 2-D [n_rows, n_features]; got shape {X.shape}.")
    if y.shape != (X.shape[0],):
        raise DataValidationError(
            f"y must have one label per row of X ({X.shape[0]}); got shape {y.shape}."
        )
    if not np.isin(y, (0, 1)).all():
        raise DataValidationError("y must contain only 0 and 1.")
    if not np.isfinite(X).all():
        raise DataValidationError("X contains NaN or infinite values; impute or drop them first.")
    masks = np.asarray(masks, dtype=bool)
    if masks.ndim == 1:
        masks = masks[None]
    if masks.ndim != 2 or masks.shape[1] != X.shape[0]:
        raise DataValidationError(
            f"masks must be a boolean [n_models, n_rows={X.shape[0]}] array; got shape {masks.shape}."
        )
    if (masks.sum(1) == 0).any():
        raise DataValidationError("Every model needs at least one training row; a mask is empty.")
    if groups is not None:
        groups = np.asarray(groups)
        if groups.ndim == 1:
            groups = groups[:, None]
        if groups.shape[0] != X.shape[0]:
            raise ParameterError(
                f"The 'groups' parameter must have one row per row of X ({X.shape[0]}); got {groups.shape[0]}."
            )
        groups = groups.astype(np.int64)
    return X, y.astype(np.int64), masks, groups


def train_ensemble(
    X: np.ndarray,
    y: np.ndarray,
    masks: np.ndarray,
    *,
    config: TrainConfig | None = None,
    seed: int = 0,
    seeds: Sequence[int] | None = None,
    groups: np.ndarray | None = None,
    fairness: FairnessConfig | None = None,
    fairness_weights: Sequence[float] | np.ndarray | None = None,
    dp: DPConfig | None = None,
    clip_groups: np.ndarray | None = None,
    canaries: np.ndarray | None = None,
    init: Ensemble | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> Ensemble:
    """Train K models at once; model k trains on the rows where ``masks[k]`` is true.

    Args:
        X: float features [N, D]; y: 0/1 labels [N]; masks: bool [K, N].
        config: architecture and optimiser (:class:`TrainConfig`).
        seed / seeds: per-model seeds (``model_seeds(seed, K)`` unless given) for
            initialisation and batch order (or Poisson sampling under DP).
        groups: int codes [N] or [N, A] of the protected attributes a fairness penalty compares
            (one column per attribute or intersection).
        fairness: penalty (:class:`FairnessConfig`); ``fairness_weights`` [K] overrides its
            weight per model (e.g. a sweep of lambdas in one call).
        dp: DP-SGD / DP-SGD-S settings (:class:`DPConfig`); epsilon per model is reported on
            the returned :class:`Ensemble`.
        clip_groups: int codes [N] of the groups DP-SGD-S clips by (default: the first column
            of ``groups``).
        canaries: bool [K, m], with ``dp``: white-box gradient canaries for auditing the DP
            mechanism (Nasr et al. 2021, 2023): canary j of model k is a record whose gradient is
            ``max_grad_norm`` on a coordinate of its own, which no other record touches; when
            ``canaries[k, j]`` it is in model k's data and is Poisson-sampled, clipped and noised
            like every record, through the same noise stream. The returned ensemble's
            ``canary_scores`` [K, m] are each canary's noisy gradient summed over the steps, in
            units of ``max_grad_norm``: about N(times sampled, sigma^2 T) when in, N(0, sigma^2 T)
            when out (see ``fairleak.attacks.dp_audit`` for the epsilon lower bound).
        init: K models of ``config``'s architecture on these features to start from instead of
            random weights (e.g. pretrained on public rows); model k starts from ``init[k]``.
        progress: called as ``progress(done_steps, total_steps)``.
    """
    config = config or TrainConfig()
    X, y, masks, groups = _validate(X, y, masks, groups)
    if clip_groups is not None:
        clip_groups = _validate(X, y, masks, np.asarray(clip_groups).reshape(-1, 1))[3]
    K, _N = masks.shape
    seeds = list(seeds) if seeds is not None else model_seeds(seed, K)
    if len(seeds) != K:
        raise ParameterError(
            f"The 'seeds' parameter must have one seed per model ({K}); got {len(seeds)}."
        )
    if fairness is not None and groups is None:
        raise ParameterError(
            "A fairness penalty needs the 'groups' parameter (protected-attribute codes, one row "
            "per row of X)."
        )
    if dp is not None and dp.group_clipping:
        if clip_groups is None and groups is None:
            raise ParameterError(
                "DP-SGD-S group clipping needs the 'clip_groups' (or 'groups') parameter "
                "(protected-attribute codes, one row per row of X)."
            )
        clip_groups = groups[:, :1] if clip_groups is None else clip_groups
    lam = np.zeros(K, dtype=np.float32)
    if fairness is not None:
        lam[:] = fairness.weight
        if fairness_weights is not None:
            fw = np.asarray(fairness_weights, dtype=np.float32).reshape(-1)
            if fw.shape != (K,) or (fw < 0).any() or not np.isfinite(fw).all():
                raise ParameterError(
                    f"The 'fairness_weights' parameter must be {K} non-negative floats; got {fairness_weights!r}."
                )
            lam[:] = fw
    if canaries is not None:
        canaries = np.asarray(canaries, dtype=bool)
        if dp is None or canaries.ndim != 2 or canaries.shape[0] != K:
            raise ParameterError(
                f"The 'canaries' parameter audits DP-SGD: it needs dp= and a bool [n_models={K}, m] "
                f"array; got {'no dp' if dp is None else f'shape {canaries.shape}'}."
            )
    if init is not None:
        dims = [X.shape[1], *config.hidden, 2]
        want = [(K, dims[i], dims[i + 1]) for i in range(len(dims) - 1)]
        shapes = [tuple(w.shape) for w in init.weights]
        if shapes != want:
            raise ParameterError(
                f"The 'init' parameter must hold {K} models with layers {want}; got {shapes}."
            )
    trainer = _Trainer(X, y, masks, seeds, config, groups, fairness, lam, dp, clip_groups, init)
    trainer.canaries = canaries
    return trainer.run(progress)


class _Trainer:
    def __init__(
        self, X, y, masks, seeds, config, groups, fairness, lam, dp, clip_groups=None, init=None
    ):
        self.X = torch.from_numpy(X)
        self.y_np = y
        self.y_t = torch.from_numpy(y)
        self.rows = [np.flatnonzero(m) for m in masks]
        self.n_rows = np.array([len(r) for r in self.rows])
        self.seeds = seeds
        self.cfg = config
        self.act = ACTIVATIONS[config.activation]
        self.K = len(seeds)
        self.groups_np = groups
        self.groups = None if groups is None else torch.from_numpy(groups)
        self.n_groups = (
            None
            if groups is None
            else [int(groups[:, a].max()) + 1 for a in range(groups.shape[1])]
        )
        self.clip_groups = None if clip_groups is None else clip_groups[:, 0]
        self.fairness = fairness
        self.lam = torch.from_numpy(lam)
        self.dp = dp
        # Each model's Poisson sampling and noise come from its own private stream. A DP release
        # draws it from fresh OS entropy, never stored, so that its noise cannot be replayed from
        # the seeds (which then fix initialisation only); the reproducible mode derives it from
        # the model's seed. Per model, so that any split into chunks or shards gives the same
        # models.
        self.secure = dp is not None and dp.noise == "secure"
        root = [np.random.SeedSequence() for _ in seeds] if self.secure else [
            np.random.SeedSequence([int(s), 0x5EC2E7]) for s in seeds
        ]  # fmt: skip
        self.private = [r.spawn(3) for r in root]  # sampling, noise, one-off counts
        sampling = [int(c[0].generate_state(1, np.uint64)[0]) for c in self.private]
        self.sampler = BatchSampler(self.rows, seeds, config.batch_size, sampling)
        # one-hot inputs: the first layer runs on each row's non-zeros (compiled kernels, where
        # a C compiler is found; see native.py), else dense GEMMs
        self.sparse: SparseRows | None = (
            sparse_rows(self.X, config.hidden[0]) if config.hidden else None
        )
        # the last layer's gradient summed in batch order (split-invariant), compiled
        self.native_last = native.available()
        # the last hidden layer's backward (and DP's norms of it) in one compiled pass
        self.fused_backward = (
            bool(config.hidden)
            and config.activation in native.HIDDEN_BACKWARD_ACTS
            and native.available()
        )
        self._init_params(init)

    # ------------------------------------------------------------------ parameters
    def _init_params(self, init: Ensemble | None = None) -> None:
        dims = [self.X.shape[1], *self.cfg.hidden, 2]
        self.W, self.b = [], []
        for i in range(len(dims) - 1):
            self.W.append(torch.empty(self.K, dims[i], dims[i + 1]))
            self.b.append(torch.empty(self.K, dims[i + 1]))
        for k, s in enumerate(self.seeds):
            gen = torch.Generator().manual_seed(s)
            for i in range(len(dims) - 1):
                bound = 1.0 / math.sqrt(dims[i])  # the distribution of nn.Linear's default init
                self.W[i][k].uniform_(-bound, bound, generator=gen)
                self.b[i][k].uniform_(-bound, bound, generator=gen)
        if init is not None:  # start from the given models (pretrained, say)
            for p, q in zip([*self.W, *self.b], [*init.weights, *init.biases], strict=True):
                p.copy_(q)
        self.params = [*self.W, *self.b]
        self.grads = [torch.zeros_like(p) for p in self.params]
        # Models go through forward and backward in even chunks of about 4 MiB of batch inputs
        # and hidden units, so that one chunk's activations stay in cache from one op to the
        # next (measured 5-20% faster per step than one pass over all K on Adult MLPs with 64 to
        # 256 hidden units; with the reused buffers, 1 to 64 MiB chunks measure alike). Chunks
        # do not change any model's maths.
        inputs = self.X.shape[1] if self.sparse is None else 2 * self.sparse.J  # (col, value) pairs
        width = 4 * self.cfg.batch_size * (inputs + sum(self.cfg.hidden) + 2)
        n_chunks = math.ceil(self.K / max(4, _CHUNK_BYTES // width))
        size = math.ceil(self.K / n_chunks)  # even chunks
        L = len(self.W)
        self.chunk_views = [
            _Chunk(
                sl,
                [w[sl] for w in self.W],
                [b[sl] for b in self.b],
                [g[sl] for g in self.grads[:L]],
                [g[sl] for g in self.grads[L:]],
                Workspace(),
            )
            for sl in (slice(k, min(k + size, self.K)) for k in range(0, self.K, size))
        ]
        self.m = [torch.zeros_like(p) for p in self.params]
        self.v = [torch.zeros_like(p) for p in self.params]
        self.t = torch.zeros(self.K)
        # Where the compiled kernels build, one elementwise pass does every model's update, with
        # per-model step counts (any mix of schedules) and the same bits for a model in any set.
        # Else (the fall-back): when every model takes a step at every step (equal schedules),
        # torch's own multi-tensor optimiser on the stacked tensors is exactly K independent
        # optimisers (its maths is elementwise) and avoids per-model masking (the masked path
        # measured ~10% slower for 64 Adam models); but its fused kernel rounds an element by
        # its position (vector body or tail), so there a model can differ by float32 rounding
        # between splits of its set.
        self.torch_opt: torch.optim.Optimizer | None = None
        self.native_opt: native.Optimizer | None = None
        spe = self.sampler.steps_per_epoch
        if native.available():
            cfg = self.cfg
            self.native_opt = native.Optimizer(
                self.params, self.grads, self.m, self.v, kind=cfg.optimizer, lr=cfg.lr,
                weight_decay=cfg.weight_decay, momentum=cfg.momentum,
            )  # fmt: skip
        elif (spe == spe[0]).all():
            cfg = self.cfg
            if cfg.optimizer == "adam":
                self.torch_opt = torch.optim.Adam(
                    self.params, lr=cfg.lr, weight_decay=cfg.weight_decay, fused=True
                )
            else:
                self.torch_opt = torch.optim.SGD(
                    self.params,
                    lr=cfg.lr,
                    momentum=cfg.momentum,
                    weight_decay=cfg.weight_decay,
                    fused=True,
                )

    def _step(self, grads: list[torch.Tensor], active: torch.Tensor) -> None:
        """Optimiser update of every active model (torch.optim.Adam / SGD semantics)."""
        if self.native_opt is not None:
            assert all(g is h for g, h in zip(grads, self.grads, strict=True))
            self.native_opt.step(active.numpy())
            return
        if self.torch_opt is not None:
            for p, g in zip(self.params, grads, strict=True):
                p.grad = g
            self.torch_opt.step()
            return
        cfg = self.cfg
        self.t += active
        for p, g, m, v in zip(self.params, grads, self.m, self.v, strict=True):
            shape = (self.K,) + (1,) * (p.ndim - 1)
            a = active.view(shape)
            if cfg.weight_decay:
                g = g + cfg.weight_decay * p
            if cfg.optimizer == "adam":
                b1, b2 = 0.9, 0.999
                m.mul_(1 - a * (1 - b1)).add_(a * (1 - b1) * g)
                v.mul_(1 - a * (1 - b2)).add_(a * (1 - b2) * g * g)
                t = self.t.clamp(min=1).view(shape)
                bc1 = 1 - b1**t
                bc2 = 1 - b2**t
                denom = (v.sqrt() / bc2.sqrt()).add_(1e-8)
                p.sub_(a * (cfg.lr / bc1) * m / denom)
            else:
                if cfg.momentum:
                    first = (self.t == 1).view(shape).to(p.dtype)
                    new = first * g + (1 - first) * (cfg.momentum * m + g)
                    m.copy_(a * new + (1 - a) * m)
                    g = m
                p.sub_(a * cfg.lr * g)

    # ------------------------------------------------------------------ forward / backward
    # Binary models have 2 logits, and the cross-entropy (or any penalty on the softmax) depends
    # on them only through the margin m = z1 - z0: its gradient w.r.t. the logits is (-d, d)
    # with d = dL/dm. So training computes the margin with one matrix-vector product instead of
    # a 2-wide GEMM (slow in every orientation), back-propagates d as a broadcast multiply,
    # and builds the last layer's [D, 2] gradient from one a^T d product. Exact, not approximate.
    def _gather(self, idx: torch.Tensor, ws: Workspace):
        """Rows of every model's batch, [k, M, D], into the chunk's buffer (or their non-zeros,
        :meth:`SparseRows.gather`, on the sparse path)."""
        if self.sparse is not None:
            return self.sparse.gather(idx)
        k, M = idx.shape
        out = ws.get("x", k * M, self.X.shape[1])
        return torch.index_select(self.X, 0, idx.reshape(-1), out=out).view(k, M, -1)

    def _forward(self, xb, ch: _Chunk, valid: torch.Tensor | None = None):
        """Margin z1 - z0 [k, M] of the chunk's models, the layers' inputs, pre-activations and
        activations (in the chunk's buffers: valid until its next forward). ``xb``: the batch
        rows [k, M, D], or their non-zeros (a tuple, the sparse path). ``valid`` [k, M]: the
        sparse kernel skips padding rows (their outputs are the bias; no gradient reads them)."""
        acts, pre, post = [], [], []
        h = xb
        k, M = xb[0].shape[:2] if isinstance(xb, tuple) else xb.shape[:2]
        for i in range(len(ch.W) - 1):
            acts.append(h)
            out = ch.ws.get(f"z{i}", k, M, ch.W[i].shape[2])
            if isinstance(h, tuple):
                assert self.sparse is not None
                z = self.sparse.forward(h, ch.W[i], ch.b[i], out, valid)
            else:
                z = linear(h, ch.W[i], ch.b[i], out)
            h = self.act.forward_(z)
            pre.append(z if self.act.needs_pre else None)
            post.append(h)
        acts.append(h)
        w, b = ch.W[-1], ch.b[-1]
        if self.native_last:  # each row's dot product in a fixed order: padding changes nothing
            wd, bd = (w[:, :, 1] - w[:, :, 0]).contiguous(), (b[:, 1] - b[:, 0]).contiguous()
            h = h.contiguous()
            acts[-1] = h
            return native.margin_forward(h, wd, bd, ch.ws.get("margin", k, M)), acts, pre, post
        wd = (w[:, :, 1] - w[:, :, 0]).unsqueeze(1)  # [k, 1, D]
        bd = (b[:, 1] - b[:, 0]).view(-1, 1, 1)
        # [1, D] x [D, M] per model: batched GEMVs are ~4x faster in this orientation on CPU
        margin = torch.baddbmm(bd, wd, h.transpose(1, 2)).squeeze(1)
        return margin, acts, pre, post

    def _backward_dz(
        self, d: torch.Tensor, pre, post, ch: _Chunk, known: dict | None = None
    ) -> list[torch.Tensor]:
        """Gradients w.r.t. every hidden layer's pre-activation [k, M, H] (in the chunk's
        buffers), from the margin's gradient d [k, M] (per sample); the last layer's is (-d, d)
        and is not materialised. With ``known`` (a dict, DP), the compiled kernel also puts the
        per-sample squared norms of the last hidden layer's output and of its gradient there
        (``("act", L - 1)``, ``("grad", L - 2)``; see :meth:`_sq_norms`)."""
        dzs: list[torch.Tensor] = []
        L = len(ch.W)
        if L == 1:
            return dzs
        k, M = d.shape
        w = ch.W[-1]
        for i in range(L - 1, 0, -1):
            dh = ch.ws.get(f"dz{i - 1}", k, M, ch.W[i].shape[1])
            if i == L - 1 and self.fused_backward:  # product, activation backward, norms: one pass
                hs = gs = None
                if known is not None:
                    hs, gs = ch.ws.get("h_sq", k, M), ch.ws.get("dz_sq", k, M)
                    known["act", L - 1], known["grad", L - 2] = hs, gs
                wd = (w[:, :, 1] - w[:, :, 0]).contiguous()
                native.hidden_backward(
                    d.contiguous(), wd, post[i - 1].contiguous(), self.cfg.activation, dh, gs, hs
                )
                dzs.insert(0, dh)
                continue
            if i == L - 1:
                torch.mul(d.unsqueeze(-1), (w[:, :, 1] - w[:, :, 0]).unsqueeze(1), out=dh)
            else:
                torch.bmm(dzs[0], ch.W[i].transpose(1, 2), out=dh)
            dzs.insert(0, self.act.backward_(dh, pre[i - 1], post[i - 1]))
        return dzs

    def _param_grads_into(
        self, acts, dzs, d: torch.Tensor, ch: _Chunk, clip: torch.Tensor | None = None
    ) -> None:
        """Batch-summed gradients of every weight and bias, written into the chunk's views of
        the gradient buffers. ``clip`` [k, M]: per-sample factors that scale each sample's
        gradient (DP clipping), applied in place to ``dzs`` and ``d``."""
        sparse_first = isinstance(acts[0], tuple)  # the compiled kernel scales its samples itself
        if clip is not None:
            for i, dz in enumerate(dzs):  # a sample's gradient is linear in its output gradients
                if not (i == 0 and sparse_first):
                    dz.mul_(clip.unsqueeze(-1))
            d.mul_(clip)
        for a, dz, gW, gb in zip(acts, dzs, ch.gW, ch.gb, strict=False):
            if isinstance(a, tuple):  # the first layer on the sparse path
                assert self.sparse is not None
                self.sparse.weight_grad_into(a, dz, gW, scale=clip, bias_out=gb)
            else:
                weight_grad_into(a, dz, gW)
                torch.sum(dz, 1, out=gb)
        if self.native_last:  # in batch order: the same bits whatever the batch's padding
            k, D = d.shape[0], acts[-1].shape[2]
            v, s = ch.ws.get("last_w", k, D), ch.ws.get("last_b", k)
            native.last_layer_grad(d.contiguous(), acts[-1].contiguous(), v, s)
        else:
            v = torch.bmm(d.unsqueeze(1), acts[-1]).squeeze(1)  # [k, D] (fast orientation)
            s = d.sum(1)
        ch.gW[-1][:, :, 1] = v
        torch.neg(v, out=ch.gW[-1][:, :, 0])
        ch.gb[-1][:, 1] = s
        torch.neg(s, out=ch.gb[-1][:, 0])

    @staticmethod
    def _sq_norms(
        acts, dzs, d: torch.Tensor, x_sq: torch.Tensor | None = None, known: dict | None = None
    ) -> torch.Tensor:
        """Per-sample squared gradient norms over all parameters (ghost norms, see dp.py), [K, M].

        ``x_sq``: the inputs' squared norms, if known (they are fixed data: computed once);
        ``known``: norms the backward pass already computed (see :meth:`_backward_dz`).
        The last layer's output gradient (-d, d) has squared norm 2 d^2.
        """
        known = known or {}
        a_sq = [
            x_sq if (i == 0 and x_sq is not None) else known.get(("act", i))
            for i in range(len(acts))
        ]
        a_sq = [sq_norm(a) if v is None else v for a, v in zip(acts, a_sq, strict=True)]
        g_sq = [known.get(("grad", i)) for i in range(len(dzs))]
        g_sq = [sq_norm(g) if v is None else v for g, v in zip(dzs, g_sq, strict=True)]
        return ghost_sq_norms(a_sq, [*g_sq, 2.0 * d * d])

    def _margin_grad(self, margin, yb, validf) -> torch.Tensor:
        """Per-sample gradient of the cross-entropy w.r.t. the margin: sigmoid(m) - y (times the
        sample's weight ``validf``)."""
        if self.native_last:  # the same bits at any position of the batch
            return native.margin_grad(margin, yb, validf, torch.empty_like(validf))
        return torch.sigmoid(margin).sub_(yb).mul_(validf)

    # ------------------------------------------------------------------ training loops
    def run(self, progress) -> Ensemble:
        if self.dp is None:
            self._run_plain(progress)
            return Ensemble(self.W, self.b, self.cfg, seeds=self.seeds)
        eps, sigmas, releases = self._run_dp(progress)
        privacy = {
            **releases,
            "accountant": self.dp.accountant,
            "noise": "secure: OS entropy, never stored" if self.secure
            else "reproducible from the seeds: a simulation, not a DP release",
            "generator": "Philox4x32-10 per model key (compiled): Box-Muller noise, geometric "
            "Poisson gaps" if self.noise_compiled else "torch's Mersenne Twister per model "
            "(noise), numpy's PCG64 per model (Poisson sampling)",
            "covers": "each model's training rows: every gradient step (Poisson sampling, clipping, "
            "noise) and every other release listed here",
            "does_not_cover": "preprocessing fitted on private rows, hyperparameter or model "
            "selection, the choice of protected attributes, anything computed outside training, "
            "and the noise's floating-point representation (the accountant assumes real-valued "
            "Gaussians; float32 Box-Muller draws reach 9.3 sigma, and floating-point attacks on "
            "noise are known: Jin et al. 2022)",
        }  # fmt: skip
        ens = Ensemble(
            self.W, self.b, self.cfg, epsilon=eps, delta=self.dp.delta, noise_multiplier=sigmas,
            seeds=self.seeds, privacy=privacy,
        )  # fmt: skip
        if isinstance(self.clip, GroupAdaptiveClipping) and self.clip.trace:
            ens.clip_trace = torch.stack(self.clip.trace).numpy()  # [steps, K, groups]
        ens.canary_scores = getattr(self, "canary_scores", None)
        return ens

    def _run_plain(self, progress) -> None:
        S = math.ceil(self.n_rows.max() / self.cfg.batch_size)
        total = S * self.cfg.epochs
        done = 0
        use_pen = self.fairness is not None and bool((self.lam > 0).any())
        for _ in range(self.cfg.epochs):
            idx_all, valid_all = self.sampler.epoch()  # [S, K, B]
            y_all = self.y_t[idx_all]  # one gather of the labels per epoch, not per step
            # per-sample weight 1 / (batch size) of the valid rows, 0 on padding
            w_all = valid_all / valid_all.sum(2, keepdim=True).clamp(min=1)
            for s in range(S):
                active = valid_all[s, :, 0]  # padding ends a schedule
                for ch in self.chunk_views:
                    sl = ch.sl
                    idx, yb = idx_all[s, sl], y_all[s, sl]
                    margin, acts, pre, post = self._forward(self._gather(idx, ch.ws), ch, valid_all[s, sl])
                    d = self._margin_grad(margin, yb, w_all[s, sl])
                    if use_pen:
                        d = d + self._penalty_grad(margin, yb, valid_all[s, sl], idx, sl)
                    dzs = self._backward_dz(d, pre, post, ch)
                    self._param_grads_into(acts, dzs, d, ch)
                self._step(self.grads, active)
                done += 1
                if progress is not None:
                    progress(done, total)

    def _penalty_grad(self, margin, yb, validf, idx, sl: slice) -> torch.Tensor:
        """Gradient of lambda_k * penalty_k w.r.t. the margins [K, M] (autograd on [K, M] only)."""
        assert self.fairness is not None and self.groups is not None and self.n_groups is not None
        m = margin.detach().requires_grad_(True)
        with torch.enable_grad():
            pen = batch_penalty(
                torch.sigmoid(m),  # P(y = 1) = softmax(z)[1] = sigmoid(z1 - z0)
                yb,
                validf,
                self.groups[idx],
                self.n_groups,
                self.fairness.penalty,
                self.fairness.reduce,
            )
            (grad,) = torch.autograd.grad((self.lam[sl] * pen).sum(), m)
        return grad

    # ------------------------------------------------------------------ DP-SGD
    def _mechanisms(self, q: np.ndarray):
        """The clipping rule and margin-gradient terms of this run (see mechanisms.py) and
        whether they needed the one-off release of group counts. Their noise comes from each
        model's noise row after its gradient noise (see ModelNoise)."""
        dp = self.dp
        assert dp is not None
        use_fair = self.fairness is not None and bool((self.lam > 0).any())
        codes = []
        if dp.group_clipping:
            assert self.clip_groups is not None
            codes.append(self.clip_groups)
        if use_fair:
            assert self.groups_np is not None
            codes += [self.groups_np[:, a] for a in range(self.groups_np.shape[1])]
        stats = None
        if codes:
            gens = [np.random.default_rng(c[2]) for c in self.private]
            stats = release_group_counts(
                codes, self.y_np, self.rows, dp.count_noise_multiplier, gens
            )
        if dp.group_clipping:
            exp_group = torch.from_numpy(stats[0].counts * q[:, None]).float()
            clip: FlatClipping = GroupAdaptiveClipping(
                dp, torch.from_numpy(self.clip_groups), exp_group.shape[1], exp_group
            )
        else:
            clip = FlatClipping(dp.max_grad_norm, self.K)
        terms = []
        if use_fair:
            assert self.n_groups is not None and stats is not None
            terms.append(
                PrivateFairnessSign(
                    self.fairness,
                    dp,
                    self.lam,
                    self.y_np,
                    self.groups_np,
                    self.n_groups,
                    self.rows,
                    q,
                    stats[1 if dp.group_clipping else 0 :],
                )
            )
        return clip, terms, stats is not None

    def _calibrate(self, q: np.ndarray, steps: np.ndarray, extra: list[float], counts: bool):
        """Noise multiplier and epsilon of each model. Every release of a step (the gradient's
        and the mechanisms' own, ``extra``) comes from one Poisson batch: one subsampled Gaussian
        with the joint multiplier; the one-off count release (``counts``) composes with it."""
        dp = self.dp
        assert dp is not None
        sigma = np.zeros(self.K)
        eps = []
        one_off = [(dp.count_noise_multiplier, 1.0, 1)] if counts else []
        cache: dict[tuple[float, int], tuple[float, float]] = {}  # equal (q, steps) share them
        for k in range(self.K):
            key = (float(q[k]), int(steps[k]))
            if key not in cache:
                if dp.noise_multiplier is not None:
                    s = float(dp.noise_multiplier)
                else:
                    try:
                        s = calibrate_joint(
                            dp.target_epsilon,
                            dp.delta,
                            key[0],
                            key[1],
                            dp.accountant,
                            extra,
                            one_off,
                        )
                    except ValueError as exc:
                        raise ParameterError(
                            f"The 'target_epsilon' parameter of DPConfig: {exc}"
                        ) from exc
                joint = joint_noise_multiplier([s, *extra])
                e = compute_epsilon([(joint, key[0], key[1]), *one_off], dp.delta, dp.accountant)
                cache[key] = (s, e)
            sigma[k], e = cache[key]
            eps.append(e)
        return sigma, eps

    def _run_dp(self, progress) -> tuple[list[float], list[float], list[dict]]:
        dp = self.dp
        assert dp is not None
        B = self.cfg.batch_size
        q = np.minimum(1.0, B / self.n_rows)
        steps = self.cfg.epochs * np.ceil(self.n_rows / B).astype(int)
        total = int(steps.max())
        if progress is not None:  # the bar shows (at 0) while the noise is calibrated
            progress(0, total)
        clip, terms, counts = self._mechanisms(q)
        releases = [*clip.releases, *(r for t in terms for r in t.releases)]
        sigma, eps = self._calibrate(q, steps, [r.noise_multiplier for r in releases], counts)
        self.clip = clip
        expected_batch = torch.from_numpy(q * self.n_rows).float()
        sigma_t = torch.from_numpy(sigma).float()
        # Every standard normal of a step, one row per model (its own generator, see ModelNoise):
        # [gradient noise laid out like the model's parameters | each mechanism's draws |
        # gradient canaries' noise and sampling draws].
        canaries = getattr(self, "canaries", None)
        m = 0 if canaries is None else canaries.shape[1]
        sizes = [g[0].numel() for g in self.grads]
        widths = [*sizes, clip.noise_width, *(t.noise_width for t in terms), m, m]
        P = sum(sizes)  # the gradient noise first, as its own segment
        noise = ModelNoise(self.K, [P, sum(widths) - P],
                           [int(c[1].generate_state(1, np.uint64)[0]) for c in self.private])  # fmt: skip
        self.noise_compiled = noise.compiled and self.sampler._native_setup()
        parts = torch.split(noise.buf, widths, dim=1)  # the gradient's: drawn in add_first
        clip.bind_noise(parts[len(sizes)])
        for i, t in enumerate(terms):
            t.bind_noise(parts[len(sizes) + 1 + i])
        if canaries is not None:
            can_noise, can_draw = parts[-2], parts[-1]
            can_in = torch.from_numpy(canaries).float()
            can_sum = torch.zeros(canaries.shape, dtype=torch.float64)
            # a canary is sampled when its standard normal draw is below Phi^-1(q): Bernoulli(q)
            cut = torch.from_numpy(ndtri(q)).float().view(-1, 1)
            C0 = float(dp.max_grad_norm)
        x_sq = sq_norm(self.X)  # the data's squared row norms, for the first layer's ghost norm
        block = int(max(1, np.ceil(self.n_rows / B).max()))  # draw an epoch's batches at once
        for step in range(total):
            if step % block == 0:  # each step padded to its largest batch only
                blk = self.sampler.poisson(q, steps, step, block)
                y_blk = self.y_t[blk.idx]
            j = step % block
            idx, validf = blk.step(j)
            a, w = int(blk.offsets[j]), idx.shape[1]
            yb = y_blk[a : a + self.K * w].view(self.K, w)
            active = torch.from_numpy(step < steps).float()
            noise.fill()
            clip.begin_step()
            for t in terms:
                t.begin_step()
            C_max = torch.empty(self.K)
            for ch in self.chunk_views:
                batch = BatchView(ch.sl, idx[ch.sl], validf[ch.sl])
                margin, acts, pre, post = self._forward(self._gather(batch.idx, ch.ws), ch, batch.valid)
                d = self._margin_grad(margin, yb[ch.sl], batch.valid)
                for t in terms:
                    d = t.margin_grad(d, margin, batch)
                known: dict = {}
                dzs = self._backward_dz(d, pre, post, ch, known)
                sq = self._sq_norms(acts, dzs, d, x_sq[batch.idx], known)
                c, C_max[ch.sl] = clip.factors(sq, batch)
                self._param_grads_into(acts, dzs, d, ch, clip=c)
            scale = (sigma_t * C_max).view(-1)
            noise.add_first(self.grads, scale, expected_batch)  # (g + sigma C z) / E[batch]
            if canaries is not None:  # each canary's coordinate: clipped sum plus the same noise
                sampled = (can_draw < cut).float() * can_in
                released = (
                    C0
                    * clip_factors(torch.full(canaries.shape, C0 * C0), C_max.view(-1, 1))
                    * sampled
                )
                released = released + can_noise * scale.view(-1, 1)
                can_sum += (released * active.view(-1, 1)).double() / C0
            self._step(self.grads, active)
            if progress is not None:
                progress(step + 1, total)
        if canaries is not None:
            self.canary_scores = can_sum.numpy()
        dp = self.dp
        described = {
            "per_step": [{"name": "clipped gradient sum", "noise_multiplier": float(sigma[0])}]
            + [{"name": r.name, "noise_multiplier": r.noise_multiplier} for r in releases],
            "joint_noise_multiplier": joint_noise_multiplier([sigma[0], *(r.noise_multiplier for r in releases)]),
            "one_off": [{"name": "group row and positive counts", "noise_multiplier": dp.count_noise_multiplier}]
            if counts else [],
        }  # fmt: skip
        return eps, [float(s) for s in sigma], described


def clipped_gradient_sum(
    ens: Ensemble, X: np.ndarray, y: np.ndarray, max_grad_norm: float
) -> list[dict[str, torch.Tensor]]:
    """Sum over the rows of the flat-clipped per-sample gradients of each model (no noise).

    The quantity DP-SGD adds noise to, computed with ghost norms exactly as training does; for
    checking against Opacus. Returns, per model, ``{"weight_i": [D_in, D_out], "bias_i": ...}``.
    """
    Xv, yv, _, _ = _validate(X, y, np.ones((1, len(y)), dtype=bool), None)
    tr = _Trainer.__new__(_Trainer)
    tr.cfg, tr.K, tr.act = ens.config, ens.n_models, ACTIVATIONS[ens.config.activation]
    tr.sparse = None  # the dense path: this checks the clipping maths against Opacus
    tr.fused_backward = tr.native_last = False
    W, b = ens.weights, ens.biases  # read only
    gW, gb = [torch.zeros_like(w) for w in W], [torch.zeros_like(v) for v in b]
    ch = _Chunk(slice(None), W, b, gW, gb, Workspace())
    xb = torch.from_numpy(Xv).unsqueeze(0).expand(tr.K, -1, -1)
    yb = torch.from_numpy(yv).unsqueeze(0).expand(tr.K, -1)
    validf = torch.ones(tr.K, len(yv))
    margin, acts, pre, post = tr._forward(xb, ch)
    d = tr._margin_grad(margin, yb, validf)
    dzs = tr._backward_dz(d, pre, post, ch)
    c = clip_factors(tr._sq_norms(acts, dzs, d), max_grad_norm)
    tr._param_grads_into(acts, dzs, d, ch, clip=c)
    grads = [*gW, *gb]
    L = len(W)
    return [
        {
            **{f"weight_{i}": grads[i][k] for i in range(L)},
            **{f"bias_{i}": grads[L + i][k] for i in range(L)},
        }
        for k in range(tr.K)
    ]
