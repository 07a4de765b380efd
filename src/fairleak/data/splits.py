"""Reproducible audit splits: members, non-members and a disjoint population pool."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fairleak.errors import DataValidationError

__all__ = ["AuditSplit", "make_audit_split"]


@dataclass(frozen=True)
class AuditSplit:
    """Row positions of the three parts of an audit (see ALGORITHMS.md section 0).

    ``members`` train the target model; ``nonmembers`` are drawn from the same distribution and
    never trained on (they double as the test set for accuracy); ``population`` is disjoint from
    both and trains shadow / offline reference models.
    """

    members: np.ndarray
    nonmembers: np.ndarray
    population: np.ndarray
    seed: int

    @property
    def audit(self) -> np.ndarray:
        """Members followed by non-members."""
        return np.concatenate([self.members, self.nonmembers])

    @property
    def is_member(self) -> np.ndarray:
        """Boolean membership of each row of :attr:`audit`."""
        return np.concatenate(
            [np.ones(len(self.members), dtype=bool), np.zeros(len(self.nonmembers), dtype=bool)]
        )


def make_audit_split(
    n_rows: int,
    *,
    seed: int = 0,
    audit_fraction: float = 0.5,
    member_fraction: float = 0.5,
    max_audit: int | None = None,
    stratify: np.ndarray | None = None,
) -> AuditSplit:
    """Split ``n_rows`` rows into members, non-members and population, reproducibly from ``seed``.

    ``audit_fraction`` of the rows form the audit set (capped at ``max_audit`` rows), of which
    ``member_fraction`` are members; the rest is the population pool. With ``stratify`` (e.g. the
    label), each part keeps the proportions of every stratum.
    """
    if n_rows < 4:
        raise DataValidationError(f"An audit split needs at least 4 rows; got {n_rows}.")
    for pname, val in (("audit_fraction", audit_fraction), ("member_fraction", member_fraction)):
        if not 0.0 < val < 1.0:
            raise DataValidationError(f"{pname} must be in (0, 1); got {val}.")
    rng = np.random.default_rng(seed)
    strata = (
        np.zeros(n_rows, dtype=np.int64)
        if stratify is None
        else np.unique(np.asarray(stratify), return_inverse=True)[1]
    )
    n_audit_total = round(n_rows * audit_fraction)
    if max_audit is not None:
        n_audit_total = min(n_audit_total, int(max_audit))
    audit_share = n_audit_total / n_rows
    members, nonmembers, population = [], [], []
    for s in np.unique(strata):
        rows = rng.permutation(np.flatnonzero(strata == s))
        n_audit = round(len(rows) * audit_share)
        n_mem = round(n_audit * member_fraction)
        members.append(rows[:n_mem])
        nonmembers.append(rows[n_mem:n_audit])
        population.append(rows[n_audit:])
    parts = [np.sort(np.concatenate(p)).astype(np.int64) for p in (members, nonmembers, population)]
    if min(len(parts[0]), len(parts[1])) == 0:
        raise DataValidationError(
            f"The split left no members or no non-members ({n_rows} rows, audit_fraction "
            f"{audit_fraction}); use more rows or a larger audit_fraction."
        )
    return AuditSplit(members=parts[0], nonmembers=parts[1], population=parts[2], seed=seed)
