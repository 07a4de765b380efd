"""How many threads fairleak's numeric work uses: one setting for torch and for the BLAS /
OpenMP pools of NumPy and scikit-learn (through threadpoolctl).

The default is the number of cores this process may run on (its CPU affinity, e.g. a container's
or ``taskset``'s limit), lowered by ``OMP_NUM_THREADS`` when that is set: on a machine shared
with other busy processes, more threads than the cores one gets only adds contention.

The ``fairleak`` command also chooses how idle OpenMP threads wait before torch loads (unless
``OMP_WAIT_POLICY`` or ``GOMP_SPINCOUNT`` is set): a short spin on a quiet machine, sleeping at
once (``PASSIVE``) when the run queue shows other processes (see ``cli._openmp_wait_policy``
for the measurements). From Python, set them yourself before importing torch: on a shared machine
``OMP_WAIT_POLICY=PASSIVE``, or 1 thread.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["available_cores", "default_threads", "limit_threads"]


def available_cores() -> int:
    """Cores this process may run on (its CPU affinity where the OS reports it)."""
    if hasattr(os, "sched_getaffinity"):
        try:
            return max(1, len(os.sched_getaffinity(0)))
        except OSError:  # pragma: no cover - platform specific
            pass
    return max(1, os.cpu_count() or 1)


def default_threads() -> int:
    """:func:`available_cores`, or ``OMP_NUM_THREADS`` when set to a smaller positive number."""
    cores = available_cores()
    env = os.environ.get("OMP_NUM_THREADS", "").strip()
    try:
        omp = int(env.split(",")[0]) if env else 0
    except ValueError:
        omp = 0
    return min(cores, omp) if omp > 0 else cores


@contextmanager
def limit_threads(n: int | None = None) -> Iterator[int]:
    """Run the body with ``n`` threads (default :func:`default_threads`) in torch and in the
    BLAS / OpenMP pools; the previous settings come back afterwards. Yields ``n``."""
    import torch
    from threadpoolctl import threadpool_limits

    n = default_threads() if n is None else int(n)
    if n < 1:
        raise ValueError(f"threads must be at least 1; got {n}")
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        with threadpool_limits(limits=n):
            yield n
    finally:
        torch.set_num_threads(before)
