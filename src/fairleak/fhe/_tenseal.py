"""The one place that imports TenSEAL (the optional extra ``fhe``)."""

from __future__ import annotations

from types import ModuleType

INSTALL_HINT = "pip install 'fairleak[fhe]'"


def require_tenseal() -> ModuleType:
    """Return the ``tenseal`` module, or raise an ImportError that says how to install it."""
    try:
        import tenseal
    except ImportError as exc:
        raise ImportError(
            f"Encrypted inference needs TenSEAL, which is not installed. Install it with: {INSTALL_HINT}"
        ) from exc
    return tenseal
