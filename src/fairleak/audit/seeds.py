"""Named random streams: every draw of an audit comes from a seed named for what it is for.

``named_seed(root, "references")`` is a child of ``numpy.random.SeedSequence(root)`` whose spawn
key is derived from the names, so streams are independent, stable under reordering of the code,
and never reused for two purposes by accident (``seed + k`` offsets were).
"""

from __future__ import annotations

import zlib

import numpy as np

__all__ = ["named_seed"]


def named_seed(root: int, *names: str | int) -> int:
    """A 32-bit seed for the stream ``names`` under ``root`` (32 bits: what every consumer,
    scikit-learn's ``random_state`` included, accepts)."""
    key = tuple(zlib.crc32(n.encode()) if isinstance(n, str) else int(n) for n in names)
    return int(np.random.SeedSequence(int(root), spawn_key=key).generate_state(1, np.uint32)[0])
