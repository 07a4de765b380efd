"""Differential privacy building blocks: Opacus accounting, ghost-norm per-sample clipping, noise.

Accounting is never written here: epsilon comes from Opacus's accountants
(``opacus.accountants.RDPAccountant`` / ``PRVAccountant``) and noise calibration from
``opacus.accountants.utils.get_noise_multiplier``.

Per-sample clipping is written by hand because it must run on K stacked models at once and
without materialising per-sample gradients (Opacus's GradSampleModule stores a [B, *param]
tensor per parameter per model): for a linear layer with input a_i and output gradient g_i,
||grad_W,i||^2 = ||a_i||^2 ||g_i||^2 and ||grad_b,i||^2 = ||g_i||^2 (Goodfellow 2015, "ghost
norm"), exact for stacks of linear layers on vector inputs. The clipped sum is A^T (c * G).
"""

from __future__ import annotations

import functools
import itertools
import warnings
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch
from opacus.accountants import PRVAccountant, RDPAccountant
from opacus.accountants.utils import get_noise_multiplier

from fairleak.train import native

__all__ = [
    "ModelNoise",
    "calibrate_joint",
    "clip_factors",
    "compute_epsilon",
    "ghost_sq_norms",
    "joint_noise_multiplier",
    "noise_multiplier_for",
]


def _accountant(name: str):
    return RDPAccountant() if name == "rdp" else PRVAccountant()


def compute_epsilon(
    mechanisms: Sequence[tuple[float, float, int]], delta: float, accountant: str = "rdp"
) -> float:
    """Epsilon of a composition of subsampled Gaussian mechanisms, from Opacus.

    ``mechanisms``: ``(noise_multiplier, sample_rate, steps)`` triples (Opacus's accountant
    history format) of independently sampled mechanisms. Releases computed from the *same*
    sampled batch are one mechanism: combine their multipliers with
    :func:`joint_noise_multiplier` first.
    """
    history = tuple((float(s), float(q), int(n)) for s, q, n in mechanisms)
    return _epsilon(history, float(delta), accountant)


# An audit trains the same DP recipe many times (the model, its reference and shadow models,
# the PA-ALOOA games): each call asks for the same epsilon and noise multiplier, which take
# Opacus tens to hundreds of ms. Both are pure functions of their arguments: cache them.
@functools.lru_cache(maxsize=4096)
def _epsilon(history: tuple[tuple[float, float, int], ...], delta: float, accountant: str) -> float:
    acc = _accountant(accountant)
    acc.history = list(history)
    if any(s == 0 for s, _, _ in acc.history):
        return float("inf")
    with warnings.catch_warnings():
        # "Optimal order is the largest alpha": Opacus's default orders give a valid (slightly
        # conservative) bound; the reported epsilon is Opacus's, unchanged.
        warnings.filterwarnings("ignore", message="Optimal order is the largest alpha")
        # PRV of a mechanism without subsampling (sample_rate 1, the one-off count release)
        # evaluates log(1 - q) = -inf on a branch it does not take: harmless.
        warnings.filterwarnings(
            "ignore", message="divide by zero encountered in log", category=RuntimeWarning
        )
        return float(acc.get_epsilon(delta=delta))


def noise_multiplier_for(
    target_epsilon: float,
    delta: float,
    sample_rate: float,
    steps: int,
    accountant: str = "rdp",
    extra_mechanisms: Sequence[tuple[float, float, int]] = (),
) -> float:
    """Noise multiplier reaching ``target_epsilon`` after ``steps`` steps at ``sample_rate``.

    Without ``extra_mechanisms`` this is Opacus's ``get_noise_multiplier``. With them (mechanisms
    composed with it, such as a one-off release of group counts) the multiplier is found by
    bisection on :func:`compute_epsilon` of the whole composition, so the total meets the target.
    """
    extra_t = tuple((float(s), float(q), int(n)) for s, q, n in extra_mechanisms)
    return _noise_multiplier(float(target_epsilon), float(delta), float(sample_rate), int(steps),
                             accountant, extra_t)  # fmt: skip


@functools.lru_cache(maxsize=1024)
def _noise_multiplier(
    target_epsilon: float,
    delta: float,
    sample_rate: float,
    steps: int,
    accountant: str,
    extra_mechanisms: tuple[tuple[float, float, int], ...],
) -> float:
    if not extra_mechanisms:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Optimal order is the largest alpha")
            # PRV at sample_rate 1 (batches as large as the data): the same harmless log(0) as above
            warnings.filterwarnings(
                "ignore", message="divide by zero encountered in log", category=RuntimeWarning
            )
            return float(
                get_noise_multiplier(
                    target_epsilon=target_epsilon,
                    target_delta=delta,
                    sample_rate=sample_rate,
                    steps=steps,
                    accountant=accountant,
                )
            )
    extra = list(extra_mechanisms)
    if compute_epsilon([(1e6, sample_rate, steps), *extra], delta, accountant) >= target_epsilon:
        raise ValueError(
            f"target_epsilon={target_epsilon} cannot be reached: the other mechanisms alone cost "
            "that much; raise their noise or target_epsilon."
        )
    lo, hi = 0.0, 1.0
    while compute_epsilon([(hi, sample_rate, steps), *extra], delta, accountant) > target_epsilon:
        lo, hi = hi, hi * 2
    for _ in range(40):
        mid = (lo + hi) / 2
        if compute_epsilon([(mid, sample_rate, steps), *extra], delta, accountant) > target_epsilon:
            lo = mid
        else:
            hi = mid
        if hi - lo < 1e-3 * hi:
            break
    return hi


def joint_noise_multiplier(multipliers: Sequence[float]) -> float:
    """The noise multiplier of several Gaussian releases computed from the same sampled batch,
    each with its own sensitivity and multiplier: together they are one Gaussian mechanism with
    ``sigma_eff = (sum_i sigma_i^-2)^(-1/2)`` (the concatenated release, each part scaled by its
    sensitivity; Dong, Roth, Su 2019 for Gaussian composition, Andrew et al. 2021, Thm 1, for the
    subsampled case: one Poisson batch, released several ways, is one subsampled Gaussian). This
    costs more than accounting them as separately sampled mechanisms, which is what is *not* done
    here."""
    ms = [float(s) for s in multipliers]
    if any(s <= 0 for s in ms):
        return 0.0
    return float(sum(s**-2 for s in ms) ** -0.5)


def calibrate_joint(
    target_epsilon: float,
    delta: float,
    sample_rate: float,
    steps: int,
    accountant: str,
    other_multipliers: Sequence[float],
    one_off: Sequence[tuple[float, float, int]] = (),
) -> float:
    """The gradient's noise multiplier such that the gradient release and ``other_multipliers``
    (further releases from the same batch at every step), jointly (:func:`joint_noise_multiplier`),
    composed with ``one_off`` mechanisms, cost at most ``target_epsilon``.

    The joint multiplier needed comes from Opacus (:func:`noise_multiplier_for`); the gradient's
    share follows in closed form, ``sigma^-2 = sigma_eff^-2 - sum_i sigma_i^-2``.
    """
    eff = noise_multiplier_for(target_epsilon, delta, sample_rate, steps, accountant, one_off)
    rest = sum(float(s) ** -2 for s in other_multipliers)
    need = eff**-2 - rest
    if need <= 0:
        raise ValueError(
            f"target_epsilon={target_epsilon} cannot be reached: the other releases of each step "
            f"(noise multipliers {list(other_multipliers)}) alone cost that much; raise their "
            "noise multipliers or target_epsilon."
        )
    return float(need**-0.5)


def ghost_sq_norms(
    act_sq_norms: Sequence[torch.Tensor], grad_sq_norms: Sequence[torch.Tensor]
) -> torch.Tensor:
    """Per-sample squared gradient norm over all layers (weights and biases), [K, B].

    ``act_sq_norms[l]``: squared norms of layer l's inputs ||a_i||^2 [K, B];
    ``grad_sq_norms[l]``: squared norms of the loss gradient w.r.t. layer l's outputs
    ||g_i||^2 [K, B]. Layer l contributes ||a_i||^2 ||g_i||^2 (weight) + ||g_i||^2 (bias).
    """
    total = None
    for a2, g2 in zip(act_sq_norms, grad_sq_norms, strict=True):
        term = (a2 + 1.0) * g2
        total = term if total is None else total + term
    if total is None:
        raise ValueError("ghost_sq_norms needs at least one layer.")
    return total


def clip_factors(sq_norms: torch.Tensor, max_norm: torch.Tensor | float) -> torch.Tensor:
    """Opacus's flat clipping factor ``min(1, C / (||g|| + 1e-6))`` per sample."""
    return (max_norm / (sq_norms.sqrt() + 1e-6)).clamp(max=1.0)


_noise_pool: ThreadPoolExecutor | None = None
_POOL_SIZE = 4  # threads that fill models' rows; the numbers do not depend on it


class ModelNoise:
    """Every standard normal a DP step needs, one row per model: ``buf`` [K, W], model k's row
    drawn from model k's own stream (keyed by its own private seed).

    Why per model: a model's noise then depends on its own stream only, so any split of the
    models into chunks, shards, threads or machines gives the same models (the sharding
    invariance a distributed backend needs). The row holds the gradient noise laid out like the
    model's parameters, then the other mechanisms' draws, in segments with streams of their own,
    so that a segment's draws do not depend on the others.

    Two generators, the same distribution: where the compiled kernels build (see
    :mod:`fairleak.train.native`), counter-based Philox4x32-10 under the model's 64-bit key with
    (block, step, segment) as the counter, vectorised and threaded over models (~1 ns a draw);
    otherwise one torch generator per model and segment (torch's CPU ``normal_``, ~2.6 ns a draw
    on one thread; the op releases the GIL, so models are spread over a small thread pool).
    Drawing the next step's noise in the background during this step's compute was measured:
    slower, the threads contend with the compute's own.
    """

    def __init__(
        self,
        n_models: int,
        widths: Sequence[int],
        seeds: Sequence[int],
        *,
        compiled: bool | None = None,
    ) -> None:
        """``widths``: the row's segments (DP-SGD-S with one group draws exactly DP-SGD's
        gradient noise). ``compiled``: use the counter-based generator (default: where it
        builds)."""
        self.buf = torch.empty(n_models, int(sum(widths)))
        ends = np.cumsum([0, *widths])
        self.segments = [(int(a), int(b)) for a, b in itertools.pairwise(ends)]
        self.compiled = native.available() if compiled is None else compiled
        self.step = -1  # the step being drawn (fill() moves to the next)
        if self.compiled:
            self.keys = np.array(
                [np.random.SeedSequence(int(s)).generate_state(1, np.uint64)[0] for s in seeds],
                dtype=np.uint64,
            )
            return
        self.gens = [
            [torch.Generator().manual_seed(int(c.generate_state(1, np.uint64)[0]))
             for c in np.random.SeedSequence(int(s)).spawn(len(self.segments))]
            for s in seeds
        ]  # fmt: skip
        # small rows: a thread hand-off costs more than the draws
        self.threaded = torch.get_num_threads() > 1 and self.buf.numel() >= 1 << 15
        # no more workers than torch's threads (fairleak.threads sets them): more only contend
        self.workers = max(1, min(_POOL_SIZE, torch.get_num_threads()))
        self.blocks = [b for b in np.array_split(np.arange(n_models), self.workers) if len(b)]

    def _fill_block(self, models: np.ndarray) -> None:
        for k in models:
            row = self.buf[k]
            for (a, b), gen in zip(self.segments, self.gens[k], strict=True):
                if b > a:
                    row[a:b].normal_(generator=gen)

    def fill(self) -> None:
        """Draw the next step's normals into ``buf``; with the compiled generator, all but the
        first segment (the gradient noise, which :meth:`add_first` draws into the gradient)."""
        global _noise_pool
        if self.compiled:
            self.step += 1
            segs = [(a, b - a, i) for i, (a, b) in enumerate(self.segments) if i > 0 and b > a]
            if segs:
                native.normal_fill(self.keys, self.step, self.buf, segs)
            return
        if not self.threaded:
            self._fill_block(np.arange(len(self.gens)))
            return
        if _noise_pool is None:
            _noise_pool = ThreadPoolExecutor(_POOL_SIZE, thread_name_prefix="fairleak-noise")
        if len(self.blocks) == 1:
            self._fill_block(self.blocks[0])
            return
        list(_noise_pool.map(self._fill_block, self.blocks))

    def first(self) -> torch.Tensor:
        """The first segment of this step's rows, [K, width] (drawn now on the compiled path)."""
        a, b = self.segments[0]
        if self.compiled:
            native.normal_fill(self.keys, self.step, self.buf, [(a, b - a, 0)])
        return self.buf[:, a:b]

    def add_first(
        self, grads: Sequence[torch.Tensor], scale: torch.Tensor, divisor: torch.Tensor
    ) -> None:
        """``g = (g + scale[k] z) / divisor[k]`` for each model k, z this step's first segment
        laid over the model's part of ``grads`` (each [K, ...], end to end; their sizes sum to
        the segment's width). The compiled path draws z inside the update, never storing it."""
        if self.compiled:
            native.noise_add(self.keys, self.step, 0, list(grads), scale, divisor)
            return
        z = self.buf[:, self.segments[0][0] :]
        for g in grads:
            shape = (g.shape[0],) + (1,) * (g.ndim - 1)
            n = g[0].numel()
            g.addcmul_(z[:, :n].view(g.shape), scale.view(shape)).div_(divisor.view(shape))
            z = z[:, n:]
