"""The vectorised ensemble trainer: K small tabular models trained at once as batched tensor programs.

Why by hand: an audit trains hundreds of small models (LiRA reference models, shadow models,
the 400 models of PA-ALOOA, sweeps). Trained one ``nn.Module`` at a time they leave a CPU idle
between tiny kernels. Here the K models' weights are stacked ([K, D_in, D_out]) and every step is
a handful of batched matmuls over all K models, each with its own rows, seed, batch order and
optimiser state. Forward and backward are written out for stacks of linear layers, which also
gives the per-layer inputs and output gradients that ghost-norm DP clipping needs (see dp.py).
Training K models together equals training each alone with the same seed (tested).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from fairleak.errors import DataValidationError, ParameterError
from fairleak.train.config import DPConfig, FairnessConfig, TrainConfig
from fairleak.train.dp import clip_factors, compute_epsilon, ghost_sq_norms, noise_multiplier_for
from fairleak.train.penalties import batch_penalty, linearised_weights

__all__ = [
    "Ensemble",
    "TrainShard",
    "clipped_gradient_sum",
    "model_seeds",
    "train_ensemble",
    "train_shard",
]


def _activate_(z: torch.Tensor, name: str) -> torch.Tensor:
    """The activation of a freshly computed pre-activation, in place where its backward needs
    only the output (relu, tanh, sigmoid); elu keeps z for its backward.

    tanh is computed as 2 sigmoid(2z) - 1: torch's CPU tanh kernel measured ~4x slower than this
    chain of in-place ops (which agrees with it to ~2e-7), and tanh is the paper's activation.
    """
    if name == "relu":
        return torch.relu_(z)
    if name == "tanh":
        return z.mul_(2.0).sigmoid_().mul_(2.0).sub_(1.0)
    if name == "sigmoid":
        return z.sigmoid_()
    if name == "square":  # the polynomial activation of CryptoNets (encrypted inference)
        return z * z
    return torch.nn.functional.elu(z)


_NEEDS_PRE = ("elu", "square")


def _act_backward_(name: str, dh: torch.Tensor, z: torch.Tensor | None, h: torch.Tensor):
    """Gradient w.r.t. the pre-activation from the gradient w.r.t. the output h, in place in
    ``dh`` (fused aten kernels)."""
    if name == "relu":
        return torch.ops.aten.threshold_backward.grad_input(dh, h, 0.0, grad_input=dh)
    if name == "tanh":
        return torch.ops.aten.tanh_backward.grad_input(dh, h, grad_input=dh)
    if name == "sigmoid":
        return torch.ops.aten.sigmoid_backward.grad_input(dh, h, grad_input=dh)
    assert z is not None
    if name == "square":
        return dh.mul_(z).mul_(2.0)
    return dh.mul_(torch.where(z > 0, torch.ones_like(z), h + 1.0))  # elu, alpha = 1


def _linear(
    h: torch.Tensor, w: torch.Tensor, b: torch.Tensor, out: torch.Tensor | None = None
) -> torch.Tensor:
    """Batched affine map h @ w + b for K models (into ``out`` when given and wide enough).

    Batched GEMMs with a tiny output width (the 2 logits) are several times slower in the
    [B, D] x [D, 2] orientation than as [2, D] x [D, B]; pick the fast one.
    """
    if w.shape[2] < 16:
        return torch.bmm(w.transpose(1, 2), h.transpose(1, 2)).transpose(1, 2) + b.unsqueeze(1)
    if out is None:
        return torch.baddbmm(b.unsqueeze(1), h, w)
    return torch.baddbmm(b.unsqueeze(1), h, w, out=out)


def _weight_grad_into(a: torch.Tensor, dz: torch.Tensor, out: torch.Tensor) -> None:
    """out[k] = sum over the batch of a_i^T dz_i, [K, D_in, D_out] (fast orientation)."""
    if dz.shape[2] < 16:
        out.copy_(torch.bmm(dz.transpose(1, 2), a).transpose(1, 2))
    else:
        torch.bmm(a.transpose(1, 2), dz, out=out)


class _Workspace:
    """Buffers reused from step to step, one set per chunk of models.

    A training step of 64 small MLPs makes a dozen [K, B, H] temporaries; taking them from
    reused buffers (and writing gradients straight into the optimiser's tensors with ``out=``)
    measured ~15-20% faster per step than fresh tensors, whose multi-MiB allocations the
    allocator hands back to the OS each time. A buffer grows when a step needs more (Poisson
    batches vary in size); views of its prefix are contiguous.
    """

    def __init__(self) -> None:
        self._store: dict[str, torch.Tensor] = {}

    def get(self, name: str, *shape: int) -> torch.Tensor:
        n = math.prod(shape)
        t = self._store.get(name)
        if t is None or t.numel() < n:
            t = torch.empty(n)
            self._store[name] = t
        return t[:n].view(shape)


_N_STREAMS = 4  # fixed, so that the noise depends on the seed and not on the machine's cores
_noise_pool: ThreadPoolExecutor | None = None


class _NormalStreams:
    """Standard normal noise for a buffer, from ``_N_STREAMS`` generators filled in parallel.

    Why: torch's CPU ``normal_`` runs on one thread (~3.4 ns a draw here); the DP noise of 64
    small MLPs is ~340k draws a step, a fifth of a DP step, with the other cores idle. The
    buffer is cut into fixed parts, each with its own generator seeded from ``seed``, filled
    by a small thread pool (the op releases the GIL): the numbers depend on the seed only, not
    on how many threads ran them. (Drawing the next step's noise in the background during this
    step's compute was measured: slower, the threads contend with the compute's own.)
    """

    def __init__(self, buf: torch.Tensor, seed: int) -> None:
        states = np.random.SeedSequence(seed).generate_state(_N_STREAMS)
        self.gens = [torch.Generator().manual_seed(int(s)) for s in states]
        self.parts = torch.tensor_split(buf.view(-1), _N_STREAMS)
        # small buffers: a thread hand-off costs more than the draws
        self.threaded = torch.get_num_threads() > 1 and self.parts[0].numel() >= 1 << 14

    def _fill(self, i: int) -> None:
        self.parts[i].normal_(generator=self.gens[i])

    def fill(self) -> None:
        global _noise_pool
        if not self.threaded:
            for i in range(_N_STREAMS):
                self._fill(i)
            return
        if _noise_pool is None:
            _noise_pool = ThreadPoolExecutor(_N_STREAMS, thread_name_prefix="fairleak-noise")
        list(_noise_pool.map(self._fill, range(_N_STREAMS)))


@dataclass
class _Chunk:
    """One chunk of models: its slice, views of the stacked weights, biases and gradient
    buffers (first-dimension slices, so contiguous), and its workspace."""

    sl: slice
    W: list[torch.Tensor]
    b: list[torch.Tensor]
    gW: list[torch.Tensor]
    gb: list[torch.Tensor]
    ws: _Workspace


_CHUNK_BYTES = 1 << 22  # batch activations per chunk of models (see _Trainer.chunks)


def _sq(t: torch.Tensor) -> torch.Tensor:
    """Squared norm over the last dimension (vector_norm is ~2x faster than square().sum())."""
    return torch.linalg.vector_norm(t, dim=-1).square()


def model_seeds(seed: int, n_models: int) -> list[int]:
    """Independent per-model seeds derived from one seed (model k's seed depends on (seed, k) only)."""
    return [int(np.random.SeedSequence([seed, k]).generate_state(1)[0]) for k in range(n_models)]


class Ensemble:
    """K trained binary classifiers (2 logits each) with stacked weights.

    ``weights[l]`` is [K, D_in, D_out] and ``biases[l]`` [K, D_out]. Predictions for all K models
    on any rows come from one call.
    """

    def __init__(
        self,
        weights: Sequence[torch.Tensor],
        biases: Sequence[torch.Tensor],
        config: TrainConfig,
        *,
        epsilon: Sequence[float] | None = None,
        delta: float | None = None,
        noise_multiplier: Sequence[float] | None = None,
        seeds: Sequence[int] | None = None,
    ) -> None:
        self.weights = [w.detach().contiguous() for w in weights]
        self.biases = [b.detach().contiguous() for b in biases]
        self.config = config
        self.epsilon = None if epsilon is None else [float(e) for e in epsilon]
        self.delta = delta
        self.noise_multiplier = (
            None if noise_multiplier is None else [float(s) for s in noise_multiplier]
        )
        self.seeds = None if seeds is None else [int(s) for s in seeds]

    @property
    def n_models(self) -> int:
        return int(self.weights[0].shape[0])

    @property
    def n_features(self) -> int:
        return int(self.weights[0].shape[1])

    def __len__(self) -> int:
        return self.n_models

    def __getitem__(self, k: int | slice | Sequence[int]) -> Ensemble:
        idx = (
            [k]
            if isinstance(k, int)
            else (list(range(self.n_models))[k] if isinstance(k, slice) else list(k))
        )

        def pick(v: list[Any] | None) -> list[Any] | None:
            return None if v is None else [v[i] for i in idx]

        return Ensemble(
            [w[idx] for w in self.weights],
            [b[idx] for b in self.biases],
            self.config,
            epsilon=pick(self.epsilon),
            delta=self.delta,
            noise_multiplier=pick(self.noise_multiplier),
            seeds=pick(self.seeds),
        )

    @torch.no_grad()
    def predict_logits(
        self, X: np.ndarray | torch.Tensor, *, chunk_bytes: int = 1 << 28
    ) -> np.ndarray:
        """Logits of every model on every row: float32 [K, N, 2]."""
        Xt = torch.as_tensor(np.require(X, dtype=np.float32, requirements=["C", "W"]))
        if Xt.ndim != 2 or Xt.shape[1] != self.n_features:
            raise DataValidationError(
                f"X must have shape [n_rows, {self.n_features}]; got {tuple(Xt.shape)}."
            )
        K, N = self.n_models, Xt.shape[0]
        width = max([self.n_features, *self.config.hidden, 2])
        chunk = max(1, int(chunk_bytes // (4 * K * width)))
        out = torch.empty((K, N, 2), dtype=torch.float32)
        L = len(self.weights)
        for s in range(0, N, chunk):
            h = Xt[s : s + chunk].unsqueeze(0).expand(K, -1, -1)
            for l_, (w, b) in enumerate(zip(self.weights, self.biases, strict=True)):
                h = _linear(h, w, b)
                if l_ < L - 1:
                    h = _activate_(h, self.config.activation)
            out[:, s : s + chunk] = h
        return out.numpy()

    def predict_proba(self, X: np.ndarray | torch.Tensor) -> np.ndarray:
        """Class probabilities of every model on every row: float32 [K, N, 2]."""
        z = torch.from_numpy(self.predict_logits(X))
        return torch.softmax(z, dim=-1).numpy()

    def state_dict(self) -> dict[str, torch.Tensor]:
        """Named tensors (for safetensors): ``weight_0, bias_0, ...``."""
        out: dict[str, torch.Tensor] = {}
        for i, (w, b) in enumerate(zip(self.weights, self.biases, strict=True)):
            out[f"weight_{i}"] = w
            out[f"bias_{i}"] = b
        return out

    def metadata(self) -> dict[str, Any]:
        """JSON-able description (config and privacy figures) to store beside the tensors."""
        return {
            "config": self.config.to_dict(),
            "epsilon": self.epsilon,
            "delta": self.delta,
            "noise_multiplier": self.noise_multiplier,
            "seeds": self.seeds,
        }

    @classmethod
    def from_state(cls, tensors: dict[str, torch.Tensor], metadata: dict[str, Any]) -> Ensemble:
        cfg = dict(metadata["config"])
        cfg["hidden"] = tuple(cfg["hidden"])
        config = TrainConfig(**cfg)
        n_layers = len(config.hidden) + 1
        try:
            weights = [tensors[f"weight_{i}"].float() for i in range(n_layers)]
            biases = [tensors[f"bias_{i}"].float() for i in range(n_layers)]
        except KeyError as exc:
            raise DataValidationError(
                f"Model file lacks tensor {exc}; it is not a fairleak model."
            ) from exc
        dims = [weights[0].shape[1], *config.hidden, 2]
        for i, (w, b) in enumerate(zip(weights, biases, strict=True)):
            if (
                w.ndim != 3
                or tuple(w.shape[1:]) != (dims[i], dims[i + 1])
                or tuple(b.shape[1:]) != (dims[i + 1],)
            ):
                raise DataValidationError(
                    f"Tensor shapes of layer {i} do not match the stored config."
                )
        return cls(
            weights,
            biases,
            config,
            epsilon=metadata.get("epsilon"),
            delta=metadata.get("delta"),
            noise_multiplier=metadata.get("noise_multiplier"),
            seeds=metadata.get("seeds"),
        )


@dataclass
class TrainShard:
    """A serialisable unit of work: which models to train, on which rows, with which seeds.

    Holds only arrays and plain configs, so a distributed backend can ship shards to workers
    and call :func:`train_shard` there.
    """

    masks: np.ndarray
    seeds: list[int]
    config: TrainConfig
    fairness: FairnessConfig | None = None
    fairness_weights: np.ndarray | None = None
    dp: DPConfig | None = None
    meta: dict[str, Any] = field(default_factory=dict)


def train_shard(
    X: np.ndarray, y: np.ndarray, shard: TrainShard, groups: np.ndarray | None = None
) -> Ensemble:
    """Train one :class:`TrainShard` (what a worker of a distributed backend runs)."""
    return train_ensemble(
        X,
        y,
        shard.masks,
        config=shard.config,
        seeds=shard.seeds,
        groups=groups,
        fairness=shard.fairness,
        fairness_weights=shard.fairness_weights,
        dp=shard.dp,
    )


def _validate(X: np.ndarray, y: np.ndarray, masks: np.ndarray, groups: np.ndarray | None):
    X = np.require(
        X, dtype=np.float32, requirements=["C", "W"]
    )  # pandas 3 hands out read-only arrays
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
    progress: Callable[[int, int], None] | None = None,
) -> Ensemble:
    """Train K models at once; model k trains on the rows where ``masks[k]`` is true.

    Args:
        X: float features [N, D]; y: 0/1 labels [N]; masks: bool [K, N].
        config: architecture and optimiser (:class:`TrainConfig`).
        seed / seeds: per-model seeds (``model_seeds(seed, K)`` unless given) for
            initialisation and batch order (or Poisson sampling under DP).
        groups: int codes [N] or [N, A] of protected attributes (needed by fairness penalties
            and DP-SGD-S).
        fairness: penalty (:class:`FairnessConfig`); ``fairness_weights`` [K] overrides its
            weight per model (e.g. a sweep of lambdas in one call).
        dp: DP-SGD / DP-SGD-S settings (:class:`DPConfig`); epsilon per model is reported on
            the returned :class:`Ensemble`.
        progress: called as ``progress(done_steps, total_steps)``.
    """
    config = config or TrainConfig()
    X, y, masks, groups = _validate(X, y, masks, groups)
    K, _N = masks.shape
    seeds = list(seeds) if seeds is not None else model_seeds(seed, K)
    if len(seeds) != K:
        raise ParameterError(
            f"The 'seeds' parameter must have one seed per model ({K}); got {len(seeds)}."
        )
    if (fairness is not None or (dp is not None and dp.group_clipping)) and groups is None:
        raise ParameterError(
            "A fairness penalty or DP-SGD-S group clipping needs the 'groups' parameter "
            "(protected-attribute codes, one row per row of X)."
        )
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
    trainer = _Trainer(X, y, masks, seeds, config, groups, fairness, lam, dp)
    return trainer.run(progress)


class _Trainer:
    def __init__(self, X, y, masks, seeds, config, groups, fairness, lam, dp):
        self.X = torch.from_numpy(X)
        self.y_np = y
        self.y_t = torch.from_numpy(y)
        self.rows = [np.flatnonzero(m) for m in masks]
        self.n_rows = np.array([len(r) for r in self.rows])
        self.seeds = seeds
        self.cfg = config
        self.K = len(seeds)
        self.groups_np = groups
        self.groups = None if groups is None else torch.from_numpy(groups)
        self.n_groups = (
            None
            if groups is None
            else [int(groups[:, a].max()) + 1 for a in range(groups.shape[1])]
        )
        self.fairness = fairness
        self.lam = torch.from_numpy(lam)
        self.dp = dp
        self.rngs = [np.random.default_rng(s) for s in seeds]
        self.rows_t = [torch.from_numpy(r) for r in self.rows]
        # batch-order generators, one per model, seeded from that model's own stream
        self.perm_gens = [
            torch.Generator().manual_seed(int(rng.integers(2**62))) for rng in self.rngs
        ]
        self._init_params()

    # ------------------------------------------------------------------ parameters
    def _init_params(self) -> None:
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
        self.params = [*self.W, *self.b]
        self.grads = [torch.zeros_like(p) for p in self.params]
        # Models go through forward and backward in even chunks of about 4 MiB of batch inputs
        # and hidden units, so that one chunk's activations stay in cache from one op to the
        # next: measured 5-20% faster per step than one pass over all K on Adult MLPs with 64
        # to 256 hidden units (smaller chunks lose more to per-op overhead than they gain) when
        # every op allocated its output; since the ops write into reused buffers, 1 to 64 MiB
        # chunks measure alike within this machine's noise. Chunks do not change any model's maths.
        width = 4 * self.cfg.batch_size * (self.X.shape[1] + sum(self.cfg.hidden) + 2)
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
                _Workspace(),
            )
            for sl in (slice(k, min(k + size, self.K)) for k in range(0, self.K, size))
        ]
        self.m = [torch.zeros_like(p) for p in self.params]
        self.v = [torch.zeros_like(p) for p in self.params]
        self.t = torch.zeros(self.K)
        # When every model takes a step at every step (equal row counts, so equal batch
        # schedules), torch's own multi-tensor optimiser on the stacked tensors is exactly K
        # independent optimisers (its maths is elementwise) and avoids per-model masking.
        self.torch_opt: torch.optim.Optimizer | None = None
        steps_per_epoch = np.ceil(self.n_rows / self.cfg.batch_size)
        if (steps_per_epoch == steps_per_epoch[0]).all():
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

    # ------------------------------------------------------------------ schedules
    def _epoch_batches(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Shuffled batches of every model for one epoch, step-major so that a step's rows of a
        chunk of models are contiguous: row ids [S, K, B] and a float 0/1 validity mask
        [S, K, B] (models with fewer rows are padded at the end of their schedule).

        Permutations come from torch's ``randperm`` with a generator per model (seeded from the
        model's seed): twice as fast as numpy's ``permutation`` here, and drawing 64 of them an
        epoch was a tenth of the non-private step time. (Sorting the rows of each batch to walk
        memory in order was measured: no faster.)
        """
        B = self.cfg.batch_size
        S = math.ceil(self.n_rows.max() / B)
        idx = torch.zeros((self.K, S * B), dtype=torch.int64)
        for k, gen in enumerate(self.perm_gens):
            n = int(self.n_rows[k])
            torch.index_select(self.rows_t[k], 0, torch.randperm(n, generator=gen), out=idx[k, :n])
        valid = (torch.arange(S * B) < torch.from_numpy(self.n_rows).view(-1, 1)).float()
        idx = idx.view(self.K, S, B).transpose(0, 1).contiguous()
        valid = valid.view(self.K, S, B).transpose(0, 1).contiguous()
        return idx, valid

    def _poisson_batches(
        self, q: np.ndarray, steps: np.ndarray, start: int, n_steps: int
    ) -> tuple[np.ndarray, np.ndarray]:
        """Poisson-sampled batches of steps ``start .. start + n_steps - 1`` for every model:
        idx [T, K, M], valid [T, K, M] (views of model-major arrays); at each of its steps every
        row of model k joins independently with probability q_k.

        Why not a Bernoulli draw per row and step: that is n_k uniforms per model and step. The
        gaps between successes of a Bernoulli(q) sequence are iid Geometric(q), so the
        inclusions of a whole block of steps (rows laid end to end, step after step) come from
        about n_k q_k draws per step: the same distribution, a few numpy calls per model.
        Each model's draws land in its own contiguous [T, M] block, and validity follows from
        the batch sizes (slot < size), so no strided scatter is needed.
        """
        picks = []
        counts = np.zeros((self.K, n_steps), dtype=np.int64)
        for k, rng in enumerate(self.rngs):
            n = int(self.n_rows[k])
            t_k = int(min(n_steps, steps[k] - start))
            if t_k <= 0:
                picks.append(None)
                continue
            L = t_k * n
            if q[k] >= 1.0:
                pos = np.arange(L)
            else:
                chunks, end = [], -1
                while end < L - 1:
                    m = int(L * q[k] + 6 * math.sqrt(L * q[k]) + 16)
                    c = end + np.cumsum(rng.geometric(q[k], size=m))
                    chunks.append(c)
                    end = int(c[-1])
                pos = np.concatenate(chunks)
                pos = pos[pos < L]
            st = pos // n
            counts[k] = np.bincount(st, minlength=n_steps)
            picks.append((st, self.rows[k][pos - st * n]))
        M = max(1, int(counts.max()))
        idx = np.zeros((self.K, n_steps, M), dtype=np.int64)
        for k, pick in enumerate(picks):
            if pick is None:
                continue
            st, rows = pick
            first = np.cumsum(counts[k]) - counts[k]
            slot = np.arange(len(st)) - first[st]  # steps are sorted: position within the step
            idx[k].reshape(-1)[st * M + slot] = rows
        valid = np.arange(M) < counts[:, :, None]
        return idx.transpose(1, 0, 2), valid.transpose(1, 0, 2)

    # ------------------------------------------------------------------ forward / backward
    # Binary models have 2 logits, and the cross-entropy (or any penalty on the softmax) depends
    # on them only through the margin m = z1 - z0: its gradient w.r.t. the logits is (-d, d)
    # with d = dL/dm. So training computes the margin with one matrix-vector product instead of
    # a 2-wide GEMM (slow in every orientation), back-propagates d as a broadcast multiply,
    # and builds the last layer's [D, 2] gradient from one a^T d product. Exact, not approximate.
    def _gather(self, idx: torch.Tensor, ws: _Workspace) -> torch.Tensor:
        """Rows of every model's batch, [k, M, D], into the chunk's buffer."""
        k, M = idx.shape
        out = ws.get("x", k * M, self.X.shape[1])
        return torch.index_select(self.X, 0, idx.reshape(-1), out=out).view(k, M, -1)

    def _forward(self, xb: torch.Tensor, ch: _Chunk):
        """Margin z1 - z0 [k, M] of the chunk's models, the layers' inputs, pre-activations and
        activations (in the chunk's buffers: valid until its next forward)."""
        name = self.cfg.activation
        acts, pre, post = [], [], []
        h = xb
        k, M = xb.shape[:2]
        for i in range(len(ch.W) - 1):
            acts.append(h)
            z = _linear(h, ch.W[i], ch.b[i], ch.ws.get(f"z{i}", k, M, ch.W[i].shape[2]))
            h = _activate_(z, name)
            pre.append(z if name in _NEEDS_PRE else None)  # elu's and square's backward need z
            post.append(h)
        acts.append(h)
        w, b = ch.W[-1], ch.b[-1]
        wd = (w[:, :, 1] - w[:, :, 0]).unsqueeze(1)  # [k, 1, D]
        bd = (b[:, 1] - b[:, 0]).view(-1, 1, 1)
        # [1, D] x [D, M] per model: batched GEMVs are ~4x faster in this orientation on CPU
        margin = torch.baddbmm(bd, wd, h.transpose(1, 2)).squeeze(1)
        return margin, acts, pre, post

    def _backward_dz(self, d: torch.Tensor, pre, post, ch: _Chunk) -> list[torch.Tensor]:
        """Gradients w.r.t. every hidden layer's pre-activation [k, M, H] (in the chunk's
        buffers), from the margin's gradient d [k, M] (per sample); the last layer's is (-d, d)
        and is not materialised."""
        dzs: list[torch.Tensor] = []
        L = len(ch.W)
        if L == 1:
            return dzs
        k, M = d.shape
        w = ch.W[-1]
        for i in range(L - 1, 0, -1):
            dh = ch.ws.get(f"dz{i - 1}", k, M, ch.W[i].shape[1])
            if i == L - 1:
                torch.mul(d.unsqueeze(-1), (w[:, :, 1] - w[:, :, 0]).unsqueeze(1), out=dh)
            else:
                torch.bmm(dzs[0], ch.W[i].transpose(1, 2), out=dh)
            dzs.insert(0, _act_backward_(self.cfg.activation, dh, pre[i - 1], post[i - 1]))
        return dzs

    @staticmethod
    def _param_grads_into(
        acts, dzs, d: torch.Tensor, ch: _Chunk, clip: torch.Tensor | None = None
    ) -> None:
        """Batch-summed gradients of every weight and bias, written into the chunk's views of
        the gradient buffers. ``clip`` [k, M]: per-sample factors that scale each sample's
        gradient (DP clipping), applied in place to ``dzs`` and ``d``."""
        if clip is not None:
            for dz in dzs:  # a sample's gradient is linear in its output gradients
                dz.mul_(clip.unsqueeze(-1))
            d.mul_(clip)
        for a, dz, gW, gb in zip(acts, dzs, ch.gW, ch.gb, strict=False):
            _weight_grad_into(a, dz, gW)
            torch.sum(dz, 1, out=gb)
        v = torch.bmm(d.unsqueeze(1), acts[-1]).squeeze(1)  # [k, D] (fast orientation)
        ch.gW[-1][:, :, 1] = v
        torch.neg(v, out=ch.gW[-1][:, :, 0])
        s = d.sum(1)
        ch.gb[-1][:, 1] = s
        torch.neg(s, out=ch.gb[-1][:, 0])

    @staticmethod
    def _sq_norms(acts, dzs, d: torch.Tensor, x_sq: torch.Tensor | None = None) -> torch.Tensor:
        """Per-sample squared gradient norms over all parameters (ghost norms, see dp.py), [K, M].

        ``x_sq``: the inputs' squared norms, if known (they are fixed data: computed once).
        The last layer's output gradient (-d, d) has squared norm 2 d^2.
        """
        a_sq = [x_sq if (i == 0 and x_sq is not None) else _sq(a) for i, a in enumerate(acts)]
        return ghost_sq_norms(a_sq, [*[_sq(dz) for dz in dzs], 2.0 * d * d])

    @staticmethod
    def _margin_grad(margin, yb, validf) -> torch.Tensor:
        """Per-sample gradient of the cross-entropy w.r.t. the margin: sigmoid(m) - y."""
        return torch.sigmoid(margin).sub_(yb).mul_(validf)

    # ------------------------------------------------------------------ training loops
    def run(self, progress) -> Ensemble:
        if self.dp is None:
            self._run_plain(progress)
            return Ensemble(self.W, self.b, self.cfg, seeds=self.seeds)
        eps, sigmas = self._run_dp(progress)
        return Ensemble(
            self.W,
            self.b,
            self.cfg,
            epsilon=eps,
            delta=self.dp.delta,
            noise_multiplier=sigmas,
            seeds=self.seeds,
        )

    def _run_plain(self, progress) -> None:
        S = math.ceil(self.n_rows.max() / self.cfg.batch_size)
        total = S * self.cfg.epochs
        done = 0
        use_pen = self.fairness is not None and bool((self.lam > 0).any())
        for _ in range(self.cfg.epochs):
            idx_all, valid_all = self._epoch_batches()  # [S, K, B]
            y_all = self.y_t[idx_all]  # one gather of the labels per epoch, not per step
            # per-sample weight 1 / (batch size) of the valid rows, 0 on padding
            w_all = valid_all / valid_all.sum(2, keepdim=True).clamp(min=1)
            for s in range(S):
                active = valid_all[s, :, 0]  # padding ends a schedule
                for ch in self.chunk_views:
                    sl = ch.sl
                    idx, yb = idx_all[s, sl], y_all[s, sl]
                    margin, acts, pre, post = self._forward(self._gather(idx, ch.ws), ch)
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

    def _run_dp(self, progress) -> tuple[list[float], list[float]]:
        dp = self.dp
        assert dp is not None
        B = self.cfg.batch_size
        q = np.minimum(1.0, B / self.n_rows)
        steps = self.cfg.epochs * np.ceil(self.n_rows / B).astype(int)
        group_clip = dp.group_clipping
        sigma = np.zeros(self.K)
        cache: dict[tuple[float, int], float] = {}
        for k in range(self.K):
            key = (float(q[k]), int(steps[k]))
            extra = [(dp.norm_noise_multiplier, q[k], steps[k])] if group_clip else []
            if self.fairness is not None and bool((self.lam > 0).any()):
                extra.append((dp.fairness_noise_multiplier, q[k], steps[k]))
            if dp.noise_multiplier is not None:
                sigma[k] = dp.noise_multiplier
            elif key in cache:
                sigma[k] = cache[key]
            else:
                try:
                    sigma[k] = noise_multiplier_for(
                        dp.target_epsilon, dp.delta, q[k], steps[k], dp.accountant, extra
                    )
                except ValueError as exc:
                    raise ParameterError(
                        f"The 'target_epsilon' parameter of DPConfig: {exc}"
                    ) from exc
                cache[key] = sigma[k]
        use_fair = self.fairness is not None and bool((self.lam > 0).any())
        lin_w = None
        if use_fair:
            assert self.groups_np is not None and self.n_groups is not None
            lin_w = torch.from_numpy(
                np.stack(
                    [
                        linearised_weights(
                            self.y_np, self.groups_np, self.n_groups, self.fairness.penalty, r
                        )
                        for r in self.rows
                    ]
                )
            )  # [K, T, N]
        n_terms = 0 if lin_w is None else lin_w.shape[1]
        eps = []
        eps_cache: dict[tuple, float] = {}  # models with equal (sigma, q, steps) share epsilon
        for k in range(self.K):
            mech = [(float(sigma[k]), float(q[k]), int(steps[k]))]
            if group_clip:
                mech.append((dp.norm_noise_multiplier, float(q[k]), int(steps[k])))
            if use_fair:
                mech.append((dp.fairness_noise_multiplier, float(q[k]), int(steps[k])))
            key = tuple(mech)
            if key not in eps_cache:
                eps_cache[key] = compute_epsilon(mech, dp.delta, dp.accountant)
            eps.append(eps_cache[key])

        if group_clip:
            assert self.groups_np is not None
            # DP-SGD-S clips by the groups of the first protected attribute (or its intersection
            # codes, if the caller passed those as the first column).
            gcodes = self.groups[:, 0]
            G = int(self.n_groups[0])
            exp_group = np.stack(
                [
                    np.bincount(self.groups_np[r, 0], minlength=G) * q[k]
                    for k, r in enumerate(self.rows)
                ]
            )
            exp_group_t = torch.from_numpy(exp_group).float()
        C0 = dp.max_grad_norm
        total = int(steps.max())
        expected_batch = torch.from_numpy(q * self.n_rows).float()
        sigma_t = torch.from_numpy(sigma).float()
        # DP noise is drawn for the whole ensemble at once per step (a few fixed streams seeded
        # by all model seeds, see _NormalStreams): a generator per model costs a Python call per
        # model and step, more than the training step itself. So under DP the same seeds give
        # the same weights, but a model's noise depends on the ensemble it was trained in. Separate streams for
        # DP-SGD-S's norm release and the fairness sign release, so that with one group (every
        # C_k = C0) DP-SGD-S draws exactly DP-SGD's batches and gradient noise.
        base = int(np.random.SeedSequence(self.seeds).generate_state(1)[0])
        norm_gen = torch.Generator().manual_seed(base ^ 0xC11F)
        fair_gen = torch.Generator().manual_seed(base ^ 0xFA1F)
        # one flat buffer, laid out as the gradients (so each part is a contiguous tensor)
        noise_flat = torch.empty(sum(g.numel() for g in self.grads))
        noise_views = [
            v.view(g.shape)
            for v, g in zip(
                torch.split(noise_flat, [g.numel() for g in self.grads]), self.grads, strict=True
            )
        ]
        noise = _NormalStreams(noise_flat, base ^ 0x5EED)
        if lin_w is not None:
            # expected sizes of the compared groups in a Poisson batch (public group sizes)
            exp_hi = torch.stack(
                [(lin_w[k] > 0).sum(1).float() * q[k] for k in range(self.K)]
            ).clamp(min=1e-9)
            exp_lo = torch.stack(
                [(lin_w[k] < 0).sum(1).float() * q[k] for k in range(self.K)]
            ).clamp(min=1e-9)
        x_sq = _sq(self.X)  # the data's squared row norms, for the first layer's ghost norm
        block = int(max(1, np.ceil(self.n_rows / B).max()))  # draw an epoch's batches at once
        for step in range(total):
            if step % block == 0:
                idx_blk, valid_blk = self._poisson_batches(q, steps, step, block)
                width = np.maximum(valid_blk.sum(2).max(1), 1)  # largest batch of each step
                y_blk = torch.from_numpy(self.y_np[idx_blk])
                valid_blk = torch.from_numpy(valid_blk).float()
            j, w = step % block, int(width[step % block])  # pad to this step's largest batch only
            idx = torch.from_numpy(idx_blk[j, :, :w])
            validf, yb = valid_blk[j, :, :w], y_blk[j, :, :w]
            active = torch.from_numpy(step < steps).float()
            # The noise of the fairness-sign and norm releases is drawn for all K models at once
            # (the streams do not depend on the chunking); the rest runs chunk by chunk.
            if lin_w is not None:
                noise_sd = dp.fairness_noise_multiplier * math.sqrt(n_terms)
                fair_noise = torch.randn(self.K, 2, n_terms, generator=fair_gen) * noise_sd
            if group_clip:
                norm_noise = torch.randn(self.K, G, generator=norm_gen) * (
                    dp.norm_noise_multiplier * C0
                )
            C_max = torch.full((self.K,), C0)
            for ch in self.chunk_views:
                sl = ch.sl
                idx_c, validf_c, yb_c = idx[sl], validf[sl], yb[sl]
                margin, acts, pre, post = self._forward(self._gather(idx_c, ch.ws), ch)
                d = self._margin_grad(margin, yb_c, validf_c)
                if lin_w is not None:
                    p1 = torch.sigmoid(margin)
                    w_b = torch.gather(lin_w[sl], 2, idx_c.unsqueeze(1).expand(-1, n_terms, -1))
                    w_b = w_b * validf_c.unsqueeze(1)  # [k, T, M]
                    # Private sign of each gap term: noisy per-group sums of p1 (each sample is
                    # in at most one of the two compared groups of a term: L2 sensitivity sqrt(T)).
                    pos, neg = (w_b > 0).float(), (w_b < 0).float()
                    s_hi = (pos * p1.unsqueeze(1)).sum(-1) + fair_noise[sl, 0]
                    s_lo = (neg * p1.unsqueeze(1)).sum(-1) + fair_noise[sl, 1]
                    gap = s_hi / exp_hi[sl] - s_lo / exp_lo[sl]  # [k, T]
                    sign = torch.sign(gap)
                    if self.fairness.reduce == "max":  # subgradient of the largest |gap| only
                        keep = torch.nn.functional.one_hot(gap.abs().argmax(1), n_terms).float()
                        sign = sign * keep
                    coef = (sign.unsqueeze(-1) * w_b).sum(1)  # [k, M]
                    d = d + self.lam[sl].view(-1, 1) * coef * p1 * (1 - p1)
                dzs = self._backward_dz(d, pre, post, ch)
                sq = self._sq_norms(acts, dzs, d, x_sq[idx_c])
                if group_clip:
                    gb = gcodes[idx_c]  # [k, M]
                    oh = torch.nn.functional.one_hot(gb, G).float() * validf_c.unsqueeze(-1)
                    # Release per-group clipped norm sums: one Gaussian mechanism with
                    # sensitivity C0 (groups are disjoint) and multiplier norm_noise_multiplier.
                    clipped_norm = torch.minimum(sq.sqrt(), torch.tensor(C0))
                    sums = torch.einsum("kmg,km->kg", oh, clipped_norm)
                    noisy = (sums + norm_noise[sl]).clamp(min=0.0)
                    r_k = noisy / exp_group_t[sl].clamp(min=1e-12)
                    r = noisy.sum(1, keepdim=True) / expected_batch[sl].view(-1, 1)
                    ratio = torch.where(
                        r_k > 0, r / r_k.clamp(min=1e-12), torch.full_like(r_k, dp.tau)
                    )
                    C_k = C0 * torch.clamp(ratio, min=1.0 / dp.tau, max=dp.tau)  # [k, G]
                    C_max[sl] = C_k.max(1).values
                    c = clip_factors(sq, torch.gather(C_k, 1, gb)).mul_(validf_c)
                else:
                    c = clip_factors(sq, C0).mul_(validf_c)
                self._param_grads_into(acts, dzs, d, ch, clip=c)
            scale = (sigma_t * C_max).view(-1)
            noise.fill()
            for gr, nz in zip(self.grads, noise_views, strict=True):
                shape = (self.K,) + (1,) * (gr.ndim - 1)
                gr.addcmul_(nz, scale.view(shape)).div_(expected_batch.view(shape))
            self._step(self.grads, active)
            if progress is not None:
                progress(step + 1, total)
        return eps, [float(s) for s in sigma]


def clipped_gradient_sum(
    ens: Ensemble, X: np.ndarray, y: np.ndarray, max_grad_norm: float
) -> list[dict[str, torch.Tensor]]:
    """Sum over the rows of the flat-clipped per-sample gradients of each model (no noise).

    The quantity DP-SGD adds noise to, computed with ghost norms exactly as training does; for
    checking against Opacus. Returns, per model, ``{"weight_i": [D_in, D_out], "bias_i": ...}``.
    """
    Xv, yv, _, _ = _validate(X, y, np.ones((1, len(y)), dtype=bool), None)
    tr = _Trainer.__new__(_Trainer)
    tr.cfg, tr.K = ens.config, ens.n_models
    W, b = ens.weights, ens.biases  # read only
    gW, gb = [torch.zeros_like(w) for w in W], [torch.zeros_like(v) for v in b]
    ch = _Chunk(slice(None), W, b, gW, gb, _Workspace())
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
