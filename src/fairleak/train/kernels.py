"""Tensor kernels of the ensemble trainer: activations and their backward, batched affine maps,
weight gradients, reused buffers.

Why by hand: the trainer runs K small models at once on stacked weights ([K, D_in, D_out]) and
needs each layer's inputs and output gradients for ghost-norm DP clipping (see ``dp.py``), so its
forward and backward are written out for stacks of linear layers instead of going through
autograd. Everything here is exact, not approximate.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch

__all__ = ["ACTIVATIONS", "Activation", "Workspace", "activate_", "linear", "sq_norm"]


@dataclass(frozen=True)
class Activation:
    """A hidden-layer activation: ``forward_(z)`` (in place where its backward needs only the
    output) and ``backward_(dh, z, h)`` (gradient w.r.t. z, in place in ``dh``).
    ``needs_pre``: the backward needs the pre-activation z (kept by the trainer)."""

    name: str
    forward_: Callable[[torch.Tensor], torch.Tensor]
    backward_: Callable[[torch.Tensor, torch.Tensor | None, torch.Tensor], torch.Tensor]
    needs_pre: bool = False


def _tanh_(z: torch.Tensor) -> torch.Tensor:
    # 2 sigmoid(2z) - 1: torch's CPU tanh kernel measured ~4x slower than this chain of in-place
    # ops (which agrees with it to ~2e-7), and tanh is the PA-ALOOA paper's activation.
    return z.mul_(2.0).sigmoid_().mul_(2.0).sub_(1.0)


_aten = torch.ops.aten
#: Registered activations by name (the ``activation`` of :class:`~fairleak.train.TrainConfig`).
ACTIVATIONS: dict[str, Activation] = {
    a.name: a
    for a in (
        Activation(
            "relu",
            torch.relu_,
            lambda dh, z, h: _aten.threshold_backward.grad_input(dh, h, 0.0, grad_input=dh),
        ),
        Activation(
            "tanh", _tanh_, lambda dh, z, h: _aten.tanh_backward.grad_input(dh, h, grad_input=dh)
        ),
        Activation(
            "sigmoid",
            torch.sigmoid_,
            lambda dh, z, h: _aten.sigmoid_backward.grad_input(dh, h, grad_input=dh),
        ),
        Activation(
            "elu",  # alpha = 1
            torch.nn.functional.elu,
            lambda dh, z, h: dh.mul_(torch.where(z > 0, torch.ones_like(z), h + 1.0)),
            needs_pre=True,
        ),
        Activation(  # CryptoNets' polynomial activation (encrypted inference)
            "square", lambda z: z * z, lambda dh, z, h: dh.mul_(z).mul_(2.0), needs_pre=True
        ),
    )
}


def activate_(z: torch.Tensor, name: str) -> torch.Tensor:
    """The activation ``name`` of a freshly computed pre-activation (in place where possible)."""
    return ACTIVATIONS[name].forward_(z)


def linear(
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


def weight_grad_into(a: torch.Tensor, dz: torch.Tensor, out: torch.Tensor) -> None:
    """out[k] = sum over the batch of a_i^T dz_i, [K, D_in, D_out] (fast orientation)."""
    if dz.shape[2] < 16:
        out.copy_(torch.bmm(dz.transpose(1, 2), a).transpose(1, 2))
    else:
        torch.bmm(a.transpose(1, 2), dz, out=out)


def sq_norm(t: torch.Tensor) -> torch.Tensor:
    """Squared norm over the last dimension (vector_norm is ~2x faster than square().sum())."""
    return torch.linalg.vector_norm(t, dim=-1).square()


class Workspace:
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
