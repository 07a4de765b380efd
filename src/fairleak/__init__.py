"""fairleak: train and audit classifiers on sensitive tabular data for fairness and privacy."""

from __future__ import annotations

__version__ = "0.1.0"

from fairleak.errors import ConfigError, DataValidationError, FairleakError, ParameterError

__all__ = [
    "ConfigError",
    "DataValidationError",
    "FairleakError",
    "ParameterError",
    "__version__",
]
