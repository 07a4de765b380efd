"""Content-addressed cache of finished audit stages, written atomically.

An entry's key is the SHA-256 of everything that produced it (a model set's recipe, rows,
masks, seeds and data fingerprint), so a run that died halfway and is started again reuses every
finished piece, and a changed setting recomputes only what depends on it. Entries are ``.npz``
arrays read back with ``allow_pickle=False``: nothing in the cache is ever unpickled.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np

from fairleak.files import atomic_write_bytes, atomic_write_text

__all__ = ["StageCache", "atomic_write_bytes", "atomic_write_text", "stable_hash"]  # writers re-exported


def stable_hash(obj: Any) -> str:
    """SHA-256 of a JSON-able object in canonical form (sorted keys)."""
    blob = json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:32]


class StageCache:
    """Finished work under ``root`` (``OUT/.cache`` by default), as ``.npz`` arrays.

    ``read=False`` recomputes everything (and, with ``write=True``, refreshes the entries);
    ``write=False`` leaves the folder untouched.
    """

    def __init__(self, root: Path | str, *, read: bool = True, write: bool = True) -> None:
        self.root = Path(root)
        self.read, self.write = read, write
        self.hits = 0

    def _path(self, stage: str, key: str, suffix: str) -> Path:
        return self.root / stage / f"{key}{suffix}"

    def get_arrays(self, stage: str, key: str) -> dict[str, np.ndarray] | None:
        p = self._path(stage, key, ".npz")
        if not (self.read and p.exists()):
            return None
        try:
            with np.load(p, allow_pickle=False) as z:
                out = {k: z[k] for k in z.files}
        except (OSError, ValueError, EOFError):
            return None  # a damaged entry is recomputed, never trusted
        self.hits += 1
        return out

    def put_arrays(self, stage: str, key: str, arrays: dict[str, np.ndarray]) -> None:
        if not self.write:
            return
        import io

        buf = io.BytesIO()
        np.savez(buf, **arrays)
        atomic_write_bytes(self._path(stage, key, ".npz"), buf.getvalue())
