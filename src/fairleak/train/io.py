"""Save and load trained models without pickle: safetensors for tensors, JSON for the rest.

A model file is untrusted input: loading reads tensors and a JSON header only, validates them
against the stored config, and never executes anything from the file.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

import fairleak
from fairleak.errors import DataValidationError
from fairleak.train.estimator import FairleakClassifier
from fairleak.train.model import Ensemble

__all__ = ["load_model", "save_model"]

_FORMAT = "fairleak-model/1"


def save_model(model: Ensemble | FairleakClassifier, path: str | Path) -> Path:
    """Write ``model`` to ``path`` (a ``.safetensors`` file with a JSON metadata header)."""
    path = Path(path)
    meta: dict[str, Any] = {"format": _FORMAT, "fairleak_version": fairleak.__version__}
    if isinstance(model, FairleakClassifier):
        ens = model.ensemble_
        classes = model.classes_
        meta["kind"] = "FairleakClassifier"
        meta["params"] = {
            k: (list(v) if isinstance(v, tuple) else v) for k, v in model.get_params().items()
        }
        meta["classes"] = classes.tolist()
    elif isinstance(model, Ensemble):
        ens = model
        meta["kind"] = "Ensemble"
    else:
        raise TypeError(
            f"save_model takes an Ensemble or a FairleakClassifier; got {type(model).__name__}."
        )
    meta["ensemble"] = ens.metadata()
    tensors = {k: v.contiguous() for k, v in ens.state_dict().items()}
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    save_file(tensors, str(tmp), metadata={"fairleak": json.dumps(meta)})
    tmp.replace(path)
    return path


def load_model(path: str | Path) -> Ensemble | FairleakClassifier:
    """Read a model written by :func:`save_model`; a foreign or damaged file is a clear error."""
    path = Path(path)
    if not path.exists():
        raise DataValidationError(f"The model file '{path}' does not exist.")
    try:
        tensors = load_file(str(path))
        from safetensors import safe_open

        with safe_open(str(path), framework="pt") as fh:
            header = fh.metadata() or {}
    except (SafetensorError, OSError, ValueError) as exc:
        raise DataValidationError(
            f"'{path}' is not a readable safetensors model file ({exc}). fairleak never unpickles "
            "model files; save models with fairleak.train.io.save_model."
        ) from exc
    try:
        meta = json.loads(header["fairleak"])
        if meta.get("format") != _FORMAT:
            raise ValueError(f"unknown format {meta.get('format')!r}")
        ens = Ensemble.from_state(tensors, meta["ensemble"])
        if meta["kind"] == "Ensemble":
            return ens
        if meta["kind"] != "FairleakClassifier":
            raise ValueError(f"unknown kind {meta['kind']!r}")
        params = dict(meta["params"])
        for key in ("hidden_layer_sizes", "fairness_attributes"):  # JSON stores tuples as lists
            if isinstance(params.get(key), list):
                params[key] = tuple(params[key])
        allowed = set(FairleakClassifier().get_params())
        if not set(params) <= allowed:
            raise ValueError(f"unexpected parameters {sorted(set(params) - allowed)}")
        return FairleakClassifier._from_ensemble(ens, params, np.asarray(meta["classes"]))
    except (KeyError, TypeError, ValueError, json.JSONDecodeError) as exc:
        raise DataValidationError(
            f"'{path}' is a safetensors file but not a valid fairleak model: {exc}."
        ) from exc
