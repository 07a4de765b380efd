"""FLIP-lite: a fair and differentially private tabular VAE that trains on a CPU.

After Hyrup, Panagiotou, Roy, Zimek, Ntoutsi, Schneider-Kamp, "Achieving Hilbert-Schmidt
Independence under Renyi Differential Privacy for Fair and Private Data Generation" (FLIP, arXiv
2508.21815). Only the paper's abstract was available, so this is "FLIP-lite" (spec:
ALGORITHMS-2.md section 3): it keeps FLIP's three ideas, drops its transformer and latent
diffusion prior.

1. **Group-balanced DP-SGD** (section 3.3): record i of group g enters a step's Poisson batch with
   probability ``q_g = B_g / N_g`` (equal expected counts ``B_g`` per group), its gradient is
   clipped to C, and group g's sum gets Gaussian noise ``sigma_g C``. Groups are disjoint and a
   record only enters its own group's sum, so by parallel composition epsilon = max_g epsilon_g;
   ``sigma_g`` is calibrated per group with Opacus's accountant so that every group meets the same
   target (minorities are sampled more often, so they get more noise).
2. **Latent alignment** (section 3.4): the spread of the groups' latent means
   ``D = sum_g pi_g ||m_g - m_bar||^2`` (the linear-kernel HSIC between latent codes and the
   group one-hot, with balanced weights) is penalised through its per-record linearisation
   ``a_i = 2 (m~_g(i) - m~_bar) . mu_i`` with the released means held constant, so the penalty is
   part of each record's clipped loss (a batch-level CKA would have no per-record gradient and
   clipping would no longer bound a record's influence). The group means are released at every
   step from the same Poisson batch (clipped at norm R, noise ``sigma_m,g R``): one batch released
   twice is one subsampled Gaussian with the joint multiplier
   (:func:`fairleak.train.dp.joint_noise_multiplier`); the joint multiplier a group needs comes
   from :func:`fairleak.train.dp.noise_multiplier_for` (Opacus, composed with the one-off
   releases), the means take ``mean_share`` of its precision and the gradient the rest (the split
   of :func:`fairleak.train.dp.calibrate_joint`).
3. **Protected attributes are not model inputs**: they are drawn from a DP-noised (or balanced)
   marginal and a row's latent code from its group's released mean, ``z ~ N(m~_g, I)``. Without
   alignment the groups' means differ and the synthetic features keep their dependence on the
   protected attribute; with it the means meet and the dependence goes.

What epsilon covers (``privacy_["covers"]``): the group counts (one Gaussian histogram release),
the numeric bins (a noisy histogram over public bounds, if the schema is public) and the training
(gradients and latent means), composed with Opacus's RDP (or PRV) accountant per group. Not
covered: the schema (public by assumption; read from the rows themselves when no schema is given,
then the report says "preprocessing not private").
"""

from __future__ import annotations

import functools
import math
import time
import zlib
from collections.abc import Callable, Sequence
from typing import Literal

import numpy as np
import pandas as pd
import torch
from pydantic import Field
from sklearn.base import BaseEstimator
from torch.func import functional_call, grad, vmap

from fairleak.data import intersection_labels
from fairleak.errors import DataValidationError, ParameterError
from fairleak.synth.schema import TableEncoder, TableSchema, pre_noise_multiplier
from fairleak.synth.vae import TabularVAE, per_sample_loss
from fairleak.train.dp import compute_epsilon, joint_noise_multiplier, noise_multiplier_for
from fairleak.validation import Params

__all__ = ["FlipConfig", "FlipLiteSynthesizer", "balanced_poisson_batch", "child_seed", "per_sample_gradients"]

Progress = Callable[[int, int], None]


def child_seed(seed: int, *names: str) -> int:
    """An independent stream of ``seed`` named for its use (the construction of
    ``fairleak.audit.seeds.named_seed``, which ``synth`` may not import)."""
    key = tuple(zlib.crc32(n.encode()) for n in names)
    return int(np.random.SeedSequence(int(seed), spawn_key=key).generate_state(1, np.uint32)[0])


def balanced_poisson_batch(
    members: Sequence[np.ndarray], rates: Sequence[float], rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """One group-balanced Poisson batch: each row of group g (``members[g]``) is included
    independently with probability ``rates[g]``. Returns the rows and their group index."""
    picked = [m[rng.random(len(m)) < q] for m, q in zip(members, rates, strict=True)]
    rows = np.concatenate(picked) if picked else np.empty(0, np.int64)
    grp = np.concatenate([np.full(len(p), g, dtype=np.int64) for g, p in enumerate(picked)]) if picked else np.empty(0, np.int64)
    return rows.astype(np.int64), grp


@functools.lru_cache(maxsize=256)
def _joint_multiplier(epsilon: float, delta: float, q: float, steps: int, accountant: str,
                      one_off: tuple[tuple[float, float, int], ...]) -> float:  # fmt: skip
    """The multiplier of one group's per-step release (Opacus, with the one-off releases);
    cached: a pure function, and each call runs Opacus's accountant tens of times."""
    return noise_multiplier_for(epsilon, delta, q, steps, accountant, one_off)


def per_sample_gradients(model: TabularVAE, beta: float, weight: float) -> Callable[..., dict[str, torch.Tensor]]:
    """``f(params, x, eps, direction) -> {name: [B, *shape]}``: each row's gradient of its own
    loss (``torch.func.vmap`` of ``grad``; no row sees another, which per-sample clipping needs)."""

    def one_loss(p: dict[str, torch.Tensor], x: torch.Tensor, e: torch.Tensor, d: torch.Tensor) -> torch.Tensor:
        out = functional_call(model, p, (x[None], e[None]))
        return per_sample_loss(model, out, x[None], d[None], beta, weight)[0]

    return vmap(grad(one_loss), in_dims=(None, 0, 0, 0))


class FlipConfig(Params):
    """FLIP-lite's hyperparameters (validated once; see :class:`FlipLiteSynthesizer`)."""

    epsilon: float | None = Field(3.0, gt=0, description="target epsilon; None: not private")
    delta: float = Field(1e-5, gt=0, lt=1)
    epochs: int = Field(20, ge=1)
    batch_size: int = Field(1024, ge=2, description="expected rows per step, all groups together")
    lr: float = Field(1e-2, gt=0)
    hidden: int = Field(64, ge=4)
    latent: int = Field(16, ge=1)
    beta: float = Field(0.1, ge=0, description="KL weight (small: less posterior collapse under DP noise)")
    align_weight: float = Field(1.0, ge=0, description="lambda of the latent alignment penalty")
    max_grad_norm: float = Field(1.0, gt=0, description="clipping bound C")
    latent_clip: float = Field(3.0, gt=0, description="R: clipping norm of latent means in their release")
    mean_smoothing: float = Field(0.9, ge=0, lt=1, description="moving average of released group means")
    groups: str = Field("first", description="'first' protected attribute, 'intersection', or a column name")
    min_cell: int = Field(200, ge=1, description="intersection groups need this many rows each")
    min_group_rows: int = Field(200, ge=1, description="smaller groups are pooled for sampling")
    marginal: Literal["data", "balanced"] = Field("data", description="protected attributes of generated rows")
    n_bins: int = Field(20, ge=2, description="quantile bins per numeric column")
    pre_share: float = Field(0.05, gt=0, lt=0.5, description="epsilon share of the numeric-bin histogram")
    count_share: float = Field(0.05, gt=0, lt=0.5, description="epsilon share of the group counts")
    mean_share: float = Field(0.1, gt=0, lt=0.9, description="share of each step's noise budget for the group means")
    max_rate: float = Field(0.1, gt=0, le=1, description="cap on every group's sampling rate q_g")
    accountant: Literal["rdp", "prv"] = "rdp"
    noise: Literal["secure", "reproducible"] = Field(
        "secure", description="secure: OS entropy, never stored; reproducible: from the seed (not a DP release)"
    )


class FlipLiteSynthesizer(BaseEstimator):
    """Fair, differentially private synthetic tables (FLIP-lite; module docstring).

    ``fit(df, protected=[...])`` trains on every column of ``df`` (the label is a column like any
    other: FLIP is task-agnostic); ``sample(n)`` returns ``n`` rows with the same columns.

    Parameters are :class:`FlipConfig`'s, plus ``schema`` (a :class:`TableSchema` for the
    non-protected columns; None: read from the rows, not private) and ``random_state`` (model
    initialisation always; sampling and noise only with ``noise="reproducible"``: with the default
    ``"secure"`` they come from fresh OS entropy at every fit, so a released table's noise cannot
    be replayed from its seed).

    Attributes after ``fit``: ``model_`` (:class:`~fairleak.synth.vae.TabularVAE`, with
    ``model_.encoder`` and ``model_.decoder``), ``encoder_`` (:class:`TableEncoder`),
    ``epsilon_``, ``delta_``, ``privacy_`` (what was released and its accounting per group),
    ``group_means_`` (released latent means), ``history_`` (mean loss per epoch), ``notes_``.
    """

    def __init__(
        self, *, epsilon: float | None = 3.0, delta: float = 1e-5, epochs: int = 20,
        batch_size: int = 1024, lr: float = 1e-2, hidden: int = 64, latent: int = 16,
        beta: float = 0.1, align_weight: float = 1.0, max_grad_norm: float = 1.0,
        latent_clip: float = 3.0, mean_smoothing: float = 0.9, groups: str = "first",
        min_cell: int = 200, min_group_rows: int = 200, marginal: str = "data", n_bins: int = 20, pre_share: float = 0.05,
        count_share: float = 0.05, mean_share: float = 0.1, max_rate: float = 0.1,
        accountant: str = "rdp", noise: str = "secure", schema: TableSchema | None = None,
        random_state: int | None = None,
    ) -> None:  # fmt: skip
        self.epsilon, self.delta, self.epochs, self.batch_size, self.lr = epsilon, delta, epochs, batch_size, lr
        self.hidden, self.latent, self.beta, self.align_weight = hidden, latent, beta, align_weight
        self.max_grad_norm, self.latent_clip, self.mean_smoothing = max_grad_norm, latent_clip, mean_smoothing
        self.min_group_rows = min_group_rows
        self.groups, self.min_cell, self.marginal, self.n_bins = groups, min_cell, marginal, n_bins
        self.pre_share, self.count_share, self.mean_share, self.max_rate = pre_share, count_share, mean_share, max_rate
        self.accountant, self.noise, self.schema, self.random_state = accountant, noise, schema, random_state

    # ------------------------------------------------------------------ fit
    def _config(self) -> FlipConfig:
        params = {k: v for k, v in self.get_params().items() if k not in ("schema", "random_state")}
        cfg = FlipConfig(**params)
        if cfg.epsilon is not None and not math.isfinite(cfg.epsilon):
            cfg = FlipConfig(**{**params, "epsilon": None})
        return cfg

    def fit(self, data: pd.DataFrame, *, protected: Sequence[str], progress: Progress | None = None) -> FlipLiteSynthesizer:
        """Train on ``data`` (every column); ``protected``: the protected attribute columns."""
        cfg = self._config()
        t0 = time.perf_counter()
        if not isinstance(data, pd.DataFrame):
            raise DataValidationError(f"FlipLiteSynthesizer.fit takes a pandas DataFrame; got {type(data).__name__}.")
        protected = list(protected)
        if not protected:
            raise DataValidationError("Name at least one protected attribute (protected=[...]).")
        missing = [c for c in protected if c not in data.columns]
        if missing:
            raise DataValidationError(f"Protected attribute(s) {missing} are not columns of the data; columns: {list(data.columns)[:20]}.")
        if len(data) < 20:
            raise DataValidationError(f"FLIP-lite needs at least 20 rows to train; got {len(data)}.")
        if data[protected].isna().any().any():
            raise DataValidationError(
                f"The protected attribute(s) {protected} have missing values; remove or label them first "
                "(rows are never dropped silently)."
            )
        features = [c for c in data.columns if c not in protected]
        if not features:
            raise DataValidationError("The data has no column besides the protected attributes to synthesise.")
        seed = 0 if self.random_state is None else int(self.random_state)
        secure = cfg.noise == "secure"
        root = np.random.SeedSequence() if secure else np.random.SeedSequence(child_seed(seed, "flip noise"))
        np_rng = np.random.default_rng(root.spawn(1)[0])
        gen = torch.Generator().manual_seed(int(root.generate_state(1, np.uint64)[0] >> 1))
        private = cfg.epsilon is not None
        notes: list[str] = []

        # --- protected attributes: cells, released counts ----------------------------------
        sens = data[protected].astype(str).reset_index(drop=True)
        cell_labels = intersection_labels(sens, protected) if len(protected) > 1 else sens[protected[0]].to_numpy()
        cells, cell_idx = np.unique(cell_labels, return_inverse=True)
        cell_values = [sens.iloc[int(np.flatnonzero(cell_idx == c)[0])].tolist() for c in range(len(cells))]
        sigma_count = pre_noise_multiplier(cfg.count_share * cfg.epsilon, cfg.delta) if private else 0.0
        counts = np.bincount(cell_idx, minlength=len(cells)).astype(np.float64)
        noisy_counts = counts + (np_rng.normal(0.0, sigma_count, len(cells)) if private else 0.0)
        noisy_counts = np.maximum(noisy_counts, 1.0)

        view_col, view = self._view(cfg, protected, sens, cell_labels, cells, cell_idx, noisy_counts, notes)
        values, v_idx = np.unique(view, return_inverse=True)
        cell_value = np.array([int(np.searchsorted(values, v)) for v in self._cell_view(cell_values, protected, view_col)])
        n_value = np.bincount(cell_value, weights=noisy_counts, minlength=len(values))
        # groups under min_group_rows (noisy count) are pooled into one sampling group (their
        # sampling rate would otherwise need enormous noise); a pool still too small joins the
        # largest group
        small = n_value < cfg.min_group_rows
        if small.any() and (~small).any():
            names = [str(v) for v in values[~small]]
            pooled = n_value[small].sum() >= cfg.min_group_rows
            if pooled:
                names.append("pooled: " + ", ".join(str(v) for v in values[small]))
            big = int(np.argmax(n_value))
            to_group = np.empty(len(values), np.int64)
            to_group[~small] = np.arange(int((~small).sum()))
            to_group[small] = len(names) - 1 if pooled else int(to_group[big])
            notes.append(f"Group(s) {[str(v) for v in values[small]]} of '{view_col}' have under "
                         f"{cfg.min_group_rows} rows (noisy count): sampled "
                         f"{'as one pooled group' if pooled else 'with the largest group'}.")  # fmt: skip
        else:
            names = [str(v) for v in values]
            to_group = np.arange(len(values))
        groups = np.asarray(names, dtype=object)
        g_idx = to_group[v_idx]
        cell_group = to_group[cell_value]
        n_groups = len(groups)
        n_tilde = np.bincount(cell_group, weights=noisy_counts, minlength=n_groups)

        # --- preprocessing -------------------------------------------------------------------
        schema = self.schema if self.schema is not None else TableSchema.infer(data[features])
        try:
            schema = schema.select(features)
        except KeyError as exc:
            raise DataValidationError(f"The schema has no entry for column {exc}; give every non-protected column.") from None
        if not schema.public:
            notes.append("preprocessing not private: category lists and numeric bounds were read from the "
                         "training rows (give a public schema to cover them).")  # fmt: skip
        enc = TableEncoder(schema, n_bins=cfg.n_bins)
        has_bins = any(c.kind == "numeric" and not enc._integer_levels(c) for c in schema.columns)
        sigma_pre = pre_noise_multiplier(cfg.pre_share * cfg.epsilon, cfg.delta) if private and has_bins else 0.0
        enc.fit(data[features], noise_multiplier=sigma_pre, rng=np_rng)
        notes += enc.notes
        codes = torch.as_tensor(enc.encode(data[features]))

        # --- sampling rates and noise per group ----------------------------------------------
        n = len(data)
        b_g = min(cfg.batch_size / n_groups, cfg.max_rate * float(n_tilde.min()))
        if b_g < 1.0:
            raise DataValidationError(
                f"The smallest group has about {int(n_tilde.min())} rows: too few for group-balanced "
                f"sampling at max_rate={cfg.max_rate} (under one expected row a step). Use a coarser "
                "grouping (groups='first') or merge small groups."
            )
        if b_g < cfg.batch_size / n_groups:
            notes.append(f"Expected rows per group and step lowered to {b_g:.1f} to keep every sampling rate <= {cfg.max_rate}.")
        q = np.minimum(b_g / n_tilde, 1.0)
        steps_per_epoch = max(1, math.ceil(n / (b_g * n_groups)))
        steps = cfg.epochs * steps_per_epoch
        one_off = [m for m in ((sigma_pre, 1.0, 1), (sigma_count, 1.0, 1)) if m[0] > 0]
        sigma_g = np.zeros(n_groups)
        sigma_m = np.zeros(n_groups)
        eps_g = [None] * n_groups
        if private:
            assert cfg.epsilon is not None
            for g in range(n_groups):
                eff = _joint_multiplier(cfg.epsilon, cfg.delta, float(q[g]), steps, cfg.accountant, tuple(one_off))
                sigma_m[g] = eff / math.sqrt(cfg.mean_share)
                # calibrate_joint's closed form (sigma^-2 = sigma_eff^-2 - sigma_m^-2) on the
                # sigma_eff just computed (calling it would repeat the bisection)
                sigma_g[g] = (eff**-2 - sigma_m[g] ** -2) ** -0.5
                joint = joint_noise_multiplier([sigma_g[g], sigma_m[g]])
                eps_g[g] = compute_epsilon([(joint, float(q[g]), steps), *one_off], cfg.delta, cfg.accountant)

        # --- model ---------------------------------------------------------------------------
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(child_seed(seed, "flip init"))
            model = TabularVAE(enc.cardinalities, hidden=cfg.hidden, latent=cfg.latent)
        opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
        x_all = model.one_hot(codes)
        members = [np.flatnonzero(g_idx == g) for g in range(n_groups)]
        means = torch.zeros(n_groups, cfg.latent)
        history: list[float] = []
        names = [k for k, _ in model.named_parameters()]

        per_sample_grads = per_sample_gradients(model, cfg.beta, cfg.align_weight)
        noise_scale = cfg.max_grad_norm / n_groups * math.sqrt(float(((sigma_g / b_g) ** 2).sum()))
        epoch_loss, epoch_rows = 0.0, 0
        for t in range(steps):
            rows, grp = balanced_poisson_batch(members, q, np_rng)
            x = x_all[rows]
            eps = torch.randn(len(rows), cfg.latent, generator=gen)
            m_bar = means.mean(0)
            direction = (means - m_bar)[torch.as_tensor(grp)] if cfg.align_weight > 0 else torch.zeros(len(rows), cfg.latent)
            w = torch.as_tensor(1.0 / (n_groups * b_g), dtype=torch.float32)  # group-balanced mean
            opt.zero_grad(set_to_none=False)
            if private:
                params = {k: v.detach() for k, v in model.named_parameters()}
                if len(rows):
                    g_ps = per_sample_grads(params, x, eps, direction)
                    sq = sum(g_ps[k].reshape(len(rows), -1).pow(2).sum(1) for k in names)
                    factor = (cfg.max_grad_norm / (sq.sqrt() + 1e-6)).clamp(max=1.0) * w
                for k, prm in model.named_parameters():
                    gsum = torch.einsum("b,b...->...", factor, g_ps[k]) if len(rows) else torch.zeros_like(prm)
                    prm.grad = gsum + noise_scale * torch.randn(prm.shape, generator=gen)
            elif len(rows):
                loss = per_sample_loss(model, model(x, eps), x, direction, cfg.beta, cfg.align_weight)
                (loss.sum() * w).backward()
            opt.step()
            # group latent means: released from this batch (clipped at R, noise sigma_m R)
            with torch.no_grad():
                mu = model.encode_stats(x)[0] if len(rows) else torch.zeros(0, cfg.latent)
                norms = mu.norm(dim=1, keepdim=True)
                mu_c = mu * (cfg.latent_clip / (norms + 1e-6)).clamp(max=1.0)
                sums = torch.zeros(n_groups, cfg.latent).index_add_(0, torch.as_tensor(grp), mu_c)
                if private:
                    sums += torch.as_tensor(sigma_m * cfg.latent_clip, dtype=torch.float32)[:, None] * torch.randn(
                        n_groups, cfg.latent, generator=gen)  # fmt: skip
                batch_means = sums / b_g
                a = cfg.mean_smoothing if t > 0 else 0.0
                means = a * means + (1 - a) * batch_means
                if len(rows):
                    epoch_loss += float(per_sample_loss(model, model(x, eps), x, torch.zeros_like(direction), cfg.beta, 0.0).sum())
                    epoch_rows += len(rows)
            if (t + 1) % steps_per_epoch == 0:
                history.append(epoch_loss / max(epoch_rows, 1))
                epoch_loss, epoch_rows = 0.0, 0
                if progress is not None:
                    progress((t + 1) // steps_per_epoch, cfg.epochs)

        # --- fitted state ----------------------------------------------------------------------
        self.model_ = model.eval()
        self.encoder_ = enc
        self.features_ = features
        self.protected_ = protected
        self.columns_ = list(data.columns)
        self.view_ = view_col
        self.groups_ = [str(g) for g in groups]
        self.group_means_ = means.numpy().astype(np.float64)
        self.cells_ = [list(v) for v in cell_values]
        self.cell_group_ = cell_group
        p = np.clip(noisy_counts, 0, None)
        self.cell_probs_ = p / p.sum()
        self.dtypes_ = {c: data[c].dtype for c in features}
        self.history_ = history
        self.notes_ = notes
        self.epsilon_ = None if not private else float(max(e for e in eps_g if e is not None))
        self.delta_ = cfg.delta if private else None
        self.privacy_ = {
            "private": private,
            "epsilon": self.epsilon_,
            "delta": self.delta_,
            "accountant": cfg.accountant,
            "noise": ("secure: OS entropy, never stored" if secure else
                      "reproducible: drawn from the seed (a simulation, not a DP release)") if private else None,
            "groups": {
                str(groups[g]): {"epsilon": eps_g[g], "sample_rate": float(q[g]),
                                 "expected_batch": float(b_g), "noise_multiplier": float(sigma_g[g]),
                                 "mean_noise_multiplier": float(sigma_m[g]),
                                 "joint_noise_multiplier": joint_noise_multiplier([sigma_g[g], sigma_m[g]]) if private else 0.0}
                for g in range(n_groups)
            },
            "group_view": view_col,
            "steps": steps,
            "max_grad_norm": cfg.max_grad_norm,
            "latent_clip": cfg.latent_clip,
            "count_noise_multiplier": sigma_count,
            "bin_noise_multiplier": sigma_pre,
            "binned_columns": list(enc.binned),
            "schema": {"source": schema.source, "public": schema.public},
            "preprocessing_private": bool(schema.public),
            "covers": ([
                "group counts (Gaussian histogram, once)",
                *(["numeric bins (Gaussian histogram over public bounds, once)"] if sigma_pre > 0 else []),
                "training: clipped gradients and clipped latent group means, every step, one Poisson batch (joint multiplier)",
            ] if private else []),
            "not_covered": ["the schema (public by assumption)" if schema.public else
                            "the schema: read from the training rows (preprocessing not private)"],
        }
        self.fit_seconds_ = time.perf_counter() - t0
        return self

    def _view(self, cfg, protected, sens, cell_labels, cells, cell_idx, noisy_counts, notes):
        choice = cfg.groups
        if choice == "intersection" and len(protected) > 1:
            if noisy_counts.min() >= cfg.min_cell:
                return "*".join(protected), cell_labels
            notes.append(
                f"Intersection groups have a cell under {cfg.min_cell} rows (noisy count); groups = '{protected[0]}'."
            )
            choice = "first"
        if choice in ("first", "intersection"):
            choice = protected[0]
        if choice not in protected:
            raise ParameterError(
                f"The 'groups' parameter of FlipLiteSynthesizer must be 'first', 'intersection' or one of "
                f"the protected attributes {protected}. Got {choice!r} instead."
            )
        return choice, sens[choice].to_numpy()

    def _cell_view(self, cell_values, protected, view_col):
        if view_col in protected:
            j = protected.index(view_col)
            return [v[j] for v in cell_values]
        return ["|".join(v) for v in cell_values]

    # ------------------------------------------------------------------ use
    def _check_fitted(self) -> None:
        if not hasattr(self, "model_"):
            raise ParameterError(
                "This FlipLiteSynthesizer instance is not fitted yet. Call 'fit' with appropriate "
                "arguments before using this estimator."
            )

    def encode(self, X: pd.DataFrame) -> np.ndarray:
        """Latent means mu(x) [N, latent] of rows with the non-protected columns."""
        self._check_fitted()
        codes = torch.as_tensor(self.encoder_.encode(X[self.features_]))
        with torch.no_grad():
            return self.model_.encode_stats(self.model_.one_hot(codes))[0].numpy().astype(np.float64)

    def decode(self, Z: np.ndarray, *, random_state: int | None = None) -> pd.DataFrame:
        """Rows (non-protected columns) decoded from latent codes ``Z`` [N, latent]: one
        categorical draw per column (temperature 1), numeric bins to values."""
        self._check_fitted()
        Z = np.asarray(Z, dtype=np.float32)
        if Z.ndim != 2 or Z.shape[1] != self.model_.latent:
            raise DataValidationError(f"Z must have shape [N, {self.model_.latent}]; got {Z.shape}.")
        gen = torch.Generator().manual_seed(0 if random_state is None else int(random_state))
        with torch.no_grad():
            logp = self.model_.column_log_softmax(self.model_.decoder(torch.as_tensor(Z)))
        off = self.model_.offsets
        codes = np.empty((len(Z), len(off) - 1), dtype=np.int64)
        for j in range(len(off) - 1):
            probs = logp[:, off[j] : off[j + 1]].exp()
            codes[:, j] = torch.multinomial(probs, 1, generator=gen)[:, 0].numpy()
        rng = np.random.default_rng(child_seed(0 if random_state is None else int(random_state), "decode"))
        out = self.encoder_.decode(codes, rng)
        return out

    def sample(self, n: int, *, random_state: int | None = None, marginal: str | None = None) -> pd.DataFrame:
        """``n`` synthetic rows with the training table's columns, in its order. Protected
        attributes come from the released counts (``marginal="data"``) or balanced over the
        group view (``"balanced"``); each row's latent code from its group's released mean."""
        self._check_fitted()
        if int(n) < 1:
            raise ParameterError(f"The 'n' parameter of sample must be a positive int. Got {n!r} instead.")
        marginal = marginal or self.marginal
        seed = 0 if random_state is None else int(random_state)
        rng = np.random.default_rng(child_seed(seed, "sample"))
        p = self.cell_probs_.copy()
        if marginal == "balanced":
            tot = np.bincount(self.cell_group_, weights=p, minlength=len(self.groups_))
            p = p / tot[self.cell_group_]
            p /= p.sum()
        cell = rng.choice(len(p), size=int(n), p=p)
        grp = self.cell_group_[cell]
        z = self.group_means_[grp] + rng.standard_normal((int(n), self.model_.latent))
        feats = self.decode(z, random_state=child_seed(seed, "decode"))
        sens = pd.DataFrame([self.cells_[c] for c in cell], columns=self.protected_)
        out = pd.concat([sens, feats], axis=1)
        return out[self.columns_]
