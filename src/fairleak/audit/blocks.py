"""What a report section is made of, as plain data: tables, bar charts with intervals, curves.

An audit stage describes its report section with these blocks (from its results alone, so a
report can be drawn again from results.json); ``fairleak.report`` renders them (interactive
HTML with plotly, escaped). Charts carry their intervals, reference lines (chance, null levels)
and group sizes, so that every chart shows the uncertainty the audit measured.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = [
    "Bars",
    "Block",
    "Curves",
    "Estimate",
    "Front",
    "Histogram",
    "RefLine",
    "Series",
    "Table",
    "Text",
]


@dataclass(frozen=True)
class Estimate:
    """A value with an optional interval, shown as ``0.612 [0.581, 0.640]``."""

    value: float | None
    low: float | None = None
    high: float | None = None
    digits: int = 3


@dataclass(frozen=True)
class Text:
    text: str
    kind: Literal["text", "note", "warn"] = "text"


@dataclass(frozen=True)
class Table:
    """Cells: str, int, float, None (shown as "–") or :class:`Estimate`."""

    columns: list[str]
    rows: list[list[Any]]
    title: str | None = None
    left: int = 1  # how many leading columns are text (left-aligned)


@dataclass(frozen=True)
class RefLine:
    """A horizontal (or, for curves, diagonal) reference: chance level, a null level, a rule."""

    value: float
    label: str
    dash: str = "dash"


@dataclass(frozen=True)
class Series:
    name: str
    values: list[float | None]
    low: list[float | None] | None = None
    high: list[float | None] | None = None
    counts: list[int | None] | None = None  # n behind each bar (shown on hover)
    muted: list[bool] | None = None  # e.g. groups too small to be meaningful: drawn grey


@dataclass(frozen=True)
class Bars:
    title: str
    categories: list[str]
    series: list[Series]
    y_label: str = ""
    lines: list[RefLine] = field(default_factory=list)
    y_range: tuple[float, float] | None = None
    note: str | None = None


@dataclass(frozen=True)
class Curves:
    """Lines through points, e.g. ROC curves on log-log axes."""

    title: str
    series: list[tuple[str, list[float], list[float]]]
    x_label: str = ""
    y_label: str = ""
    log: bool = False
    diagonal: str | None = None  # label of a y = x reference line (chance)


@dataclass(frozen=True)
class Histogram:
    """Pre-binned counts of several groups over shared ``edges``, shown as shares."""

    title: str
    edges: list[float]
    series: list[tuple[str, list[int]]]
    x_label: str = ""


@dataclass(frozen=True)
class Front:
    """Candidates in objective space (2 or 3 axes, all minimised): which are on the Pareto
    front, each one's probability of being on it, and the chosen one (an index, or None)."""

    title: str
    names: list[str]
    axes: list[str]
    values: list[list[float | None]]  # [n_candidates][n_axes]
    families: list[str]
    on_front: list[bool]
    p_front: list[float | None]
    chosen: int | None = None
    hover: list[str] = field(default_factory=list)


Block = Text | Table | Bars | Curves | Histogram | Front
