"""`Ensemble`: K trained binary classifiers (2 logits each) with stacked weights, the model
artefact every trainer returns and every consumer reads."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from fairleak.errors import DataValidationError
from fairleak.train.config import TrainConfig
from fairleak.train.kernels import activate_, linear

__all__ = ["Ensemble", "model_seeds"]


def model_seeds(seed: int, n_models: int) -> list[int]:
    """Independent per-model seeds derived from one seed (model k's seed depends on (seed, k) only)."""
    return [int(np.random.SeedSequence([seed, k]).generate_state(1)[0]) for k in range(n_models)]


class Ensemble:
    """K trained binary classifiers (2 logits each) with stacked weights.

    ``weights[l]`` is [K, D_in, D_out] and ``biases[l]`` [K, D_out]. Predictions for all K models
    on any rows come from one call. ``epsilon`` / ``delta`` / ``noise_multiplier``: the DP
    figures of each model (None when not private); ``privacy``: what the figures cover.
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
        privacy: dict[str, Any] | None = None,
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
        self.privacy = privacy
        self.clip_trace: np.ndarray | None = None  # DP-SGD-S's per-step bounds [T, K, G] (not saved)
        self.canary_scores: np.ndarray | None = None  # gradient canaries' scores [K, m] (auditing)

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
            privacy=self.privacy,
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
                h = linear(h, w, b)
                if l_ < L - 1:
                    h = activate_(h, self.config.activation)
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
            "config": self.config.model_dump(mode="json"),
            "epsilon": self.epsilon,
            "delta": self.delta,
            "noise_multiplier": self.noise_multiplier,
            "seeds": self.seeds,
            "privacy": self.privacy,
        }

    @classmethod
    def from_state(cls, tensors: dict[str, torch.Tensor], metadata: dict[str, Any]) -> Ensemble:
        """Rebuild from :meth:`state_dict` and :meth:`metadata` (validated: shapes must match)."""
        config = TrainConfig(**metadata["config"])
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
            privacy=metadata.get("privacy"),
        )
