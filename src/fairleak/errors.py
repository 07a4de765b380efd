"""Exceptions that carry a message a user can act on.

Library code raises these; the CLI turns them into a one-paragraph message and a
non-zero exit status, never a traceback.
"""

from __future__ import annotations

__all__ = ["ConfigError", "DataValidationError", "FairleakError", "ParameterError"]


class FairleakError(Exception):
    """Base class of every error fairleak raises on purpose."""


class DataValidationError(FairleakError, ValueError):
    """The data given cannot be used as it is: the message names the problem and the fix."""


class ConfigError(FairleakError, ValueError):
    """A configuration file or option is wrong: the message names the key."""


class ParameterError(FairleakError, ValueError):
    """A hyperparameter is out of range: the message names it, the value and what is allowed."""
