"""Content-addressed cache of finished audit stages, written atomically.

A stage's key is the SHA-256 of everything that produced it (its recipe, the data fingerprint,
the seed), so a run that died halfway and is started again reuses every finished stage, and a
changed setting recomputes only what depends on it. Arrays are stored as ``.npz`` (read back
with ``allow_pickle=False``), models as safetensors: nothing in the cache is ever unpickled.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from fairleak.train import Ensemble, load_model, save_model

__all__ = ["StageCache", "atomic_write_bytes", "atomic_write_text", "stable_hash"]


def stable_hash(obj: Any) -> str:
    """SHA-256 of a JSON-able object in canonical form (sorted keys)."""
    blob = json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:32]


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that readers see the old file or the whole new one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        # mkstemp creates the file 0600; give it the permissions an ordinary write would
        umask = os.umask(0)
        os.umask(umask)
        os.fchmod(fd, 0o666 & ~umask)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


class StageCache:
    """Finished stages under ``root`` (``OUT/.cache`` by default)."""

    def __init__(self, root: Path | str, *, enabled: bool = True) -> None:
        self.root = Path(root)
        self.enabled = enabled
        self.hits = 0
        self.misses = 0

    def _path(self, stage: str, key: str, suffix: str) -> Path:
        return self.root / stage / f"{key}{suffix}"

    def get_arrays(self, stage: str, key: str) -> dict[str, np.ndarray] | None:
        p = self._path(stage, key, ".npz")
        if not (self.enabled and p.exists()):
            self.misses += 1
            return None
        try:
            with np.load(p, allow_pickle=False) as z:
                out = {k: z[k] for k in z.files}
        except (OSError, ValueError):
            self.misses += 1  # a damaged entry is recomputed, never trusted
            return None
        self.hits += 1
        return out

    def put_arrays(self, stage: str, key: str, arrays: dict[str, np.ndarray]) -> None:
        if not self.enabled:
            return
        import io

        buf = io.BytesIO()
        np.savez(buf, **arrays)
        atomic_write_bytes(self._path(stage, key, ".npz"), buf.getvalue())

    def get_model(self, stage: str, key: str) -> Ensemble | None:
        p = self._path(stage, key, ".safetensors")
        if not (self.enabled and p.exists()):
            self.misses += 1
            return None
        try:
            model = load_model(p)
        except Exception:  # a damaged entry is recomputed
            self.misses += 1
            return None
        self.hits += 1
        return model if isinstance(model, Ensemble) else None

    def put_model(self, stage: str, key: str, model: Ensemble) -> None:
        if self.enabled:
            save_model(model, self._path(stage, key, ".safetensors"))
