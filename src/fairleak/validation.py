"""Validated parameter models: one declaration per hyperparameter, one way to say what is wrong.

Every hyperparameter of fairleak is a field of a pydantic model (:class:`Params`): the trainer,
the audit config and the scikit-learn estimators all read the same declarations. A bad value is
reported scikit-learn style, naming the parameter, what is allowed and what was received:
``The 'lr' parameter of TrainConfig must be a float in the range (0, inf). Got -1 instead.``
"""

from __future__ import annotations

import math
import types
import typing
from typing import Any, Literal, get_args, get_origin

import annotated_types as at
from pydantic import BaseModel, ConfigDict, ValidationError
from pydantic.fields import FieldInfo

from fairleak.errors import ParameterError

__all__ = ["Params", "allowed_values", "format_validation_error", "replace"]


def _bounds(meta: list[Any]) -> str | None:
    lo, hi, lo_open, hi_open = None, None, False, False
    for m in meta:
        if isinstance(m, at.Gt):
            lo, lo_open = m.gt, True
        elif isinstance(m, at.Ge):
            lo, lo_open = m.ge, False
        elif isinstance(m, at.Lt):
            hi, hi_open = m.lt, True
        elif isinstance(m, at.Le):
            hi, hi_open = m.le, False
    if lo is None and hi is None:
        return None
    left = "(" if lo is None or lo_open else "["
    right = ")" if hi is None or hi_open else "]"
    return f"{left}{'-inf' if lo is None else lo}, {'inf' if hi is None else hi}{right}"


def _describe(tp: Any, meta: list[Any], plural: bool = False) -> str:
    origin = get_origin(tp)
    if origin is typing.Annotated:
        base, *extra = get_args(tp)
        return _describe(base, [*meta, *extra], plural)
    if origin in (typing.Union, types.UnionType):
        parts = [a for a in get_args(tp) if a is not type(None)]
        text = " or ".join(_describe(a, meta, plural) for a in parts)
        return f"{text} or None" if len(parts) < len(get_args(tp)) else text
    if origin is Literal:
        return f"one of {get_args(tp)}"
    if origin in (tuple, list):
        return f"a {origin.__name__} of {_describe(get_args(tp)[0], [], plural=True)}"
    names = {bool: "bool", int: "int", float: "float", str: "str"}
    name = names.get(tp, getattr(tp, "__name__", str(tp)))
    if plural:
        name += "s"
    else:
        name = ("an " if name[0] in "aeiou" else "a ") + name
    rng = _bounds(meta)
    return f"{name} in the range {rng}" if rng else name


def allowed_values(field: FieldInfo) -> str:
    """What a field accepts, in words (``"a float in the range (0, inf)"``), from its declaration.

    A field may state it explicitly with ``json_schema_extra={"allowed": "..."}``.
    """
    extra = field.json_schema_extra
    if isinstance(extra, dict) and "allowed" in extra:
        return str(extra["allowed"])
    return _describe(field.annotation, list(field.metadata))


def format_validation_error(
    exc: ValidationError, model: type[BaseModel], *, owner: str | None = None, names: dict[str, str] | None = None
) -> str:
    """One sentence per problem; ``names`` renames fields (e.g. for an estimator's parameters)."""
    owner = owner or model.__name__
    parts = []
    for e in exc.errors():
        loc = [str(p) for p in e["loc"]]
        if not loc:  # a model-level rule: its message is the whole sentence
            msg = str(e.get("ctx", {}).get("error", e["msg"]))
            parts.append(msg.removeprefix("Value error, "))
            continue
        name = loc[0]
        field = model.model_fields.get(name)
        shown = (names or {}).get(name, name)
        if e["type"] == "extra_forbidden":
            known = ", ".join(f"'{(names or {}).get(f, f)}'" for f in model.model_fields)
            parts.append(f"{owner} has no parameter '{shown}'; known: {known}.")
            continue
        what = allowed_values(field) if field is not None else e["msg"]
        got = repr(e.get("input"))
        if len(loc) > 1:  # an item of a tuple / list
            got += f" (item {'.'.join(loc[1:])})"
        if e["type"] == "value_error":  # a field validator's own message
            what = str(e.get("ctx", {}).get("error", e["msg"]))
        parts.append(f"The '{shown}' parameter of {owner} must be {what}. Got {got} instead.")
    return " ".join(parts)


class Params(BaseModel):
    """Immutable, validated hyperparameters. Constructing one with a bad value raises
    :class:`ParameterError`; validated inside a larger model (an audit config), its problems
    are pydantic errors located in that model (``models.0.dp.delta``)."""

    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True)

    def __init__(self, **data: Any) -> None:
        try:
            super().__init__(**data)
        except ValidationError as exc:
            raise ParameterError(format_validation_error(exc, type(self))) from None

    # Tell pydantic this __init__ only wraps its own, so that validation as part of another
    # model (or by model_validate) does not go through it and keeps pydantic's located errors.
    __init__.__pydantic_base_init__ = True  # type: ignore[attr-defined]

    def to_dict(self) -> dict[str, Any]:
        """JSON-able values (tuples as lists)."""
        return self.model_dump(mode="json")


def replace(params: Params, **changes: Any) -> Params:
    """A copy with ``changes`` applied and validated (``model_copy`` does not validate)."""
    return type(params)(**{**params.model_dump(), **changes})


def finite(v: float | None) -> float | None:
    """Field validator body: refuse NaN and infinity."""
    if v is not None and not math.isfinite(v):
        raise ValueError("a finite float")
    return v
