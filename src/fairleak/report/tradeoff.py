"""The trade-off view (test accuracy vs strongest attack AUC), laid out once for both renderers.

Points are labelled beside the marker with a leader line, each label placed where it overlaps no
other label, marker or the plot's edge (a greedy search over offsets, nearest first), so that
models close together (DP models near chance, a constant predictor at the majority rate) stay
readable. The accuracy of always predicting the majority class is drawn as a reference line:
a model left of it does no better than that.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

Box = tuple[float, float, float, float]

__all__ = ["TradeoffPoint", "TradeoffView", "label_offsets", "tradeoff_view"]


@dataclass(frozen=True)
class TradeoffPoint:
    model: str
    accuracy: float
    auc: float
    epsilon: float | None
    warning: str | None

    @property
    def label(self) -> str:
        return self.model + (f" ({self.warning})" if self.warning else "")

    @property
    def privacy(self) -> str:
        return "non-private" if self.epsilon is None else f"DP, epsilon {self.epsilon:.2g}"


@dataclass
class TradeoffView:
    points: list[TradeoffPoint]
    majority_rates: list[float]  # one per distinct rate of the audited models' test rows
    x_range: tuple[float, float]
    y_range: tuple[float, float]
    #: label offsets from each point, in units of the font size (x right, y up)
    offsets: list[tuple[float, float]] = field(default_factory=list)


def _number(v: Any) -> float | None:
    return float(v) if isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) else None


def tradeoff_view(
    results: dict[str, Any], *, aspect: float = 2.8, height: float = 22.0
) -> TradeoffView | None:
    """The trade-off view of ``results`` (results.json), or None without an accuracy and an
    attack AUC for any model. ``aspect`` (width / height) and ``height`` (in font sizes) describe
    the plot area, for label placement (:func:`label_offsets`)."""
    models = results.get("models") or {}
    pts = []
    for s in results.get("summary") or []:
        acc, auc = _number(s.get("test_accuracy")), _number(s.get("strongest_attack_auc"))
        if acc is None or auc is None:
            continue
        pts.append(TradeoffPoint(str(s["model"]), acc, auc, _number(s.get("epsilon")), s.get("predictor_warning")))
    if not pts:
        return None
    rates = set()
    for p in pts:
        pred = ((models.get(p.model) or {}).get("fairness") or {}).get("predictor") or {}
        rate = _number(pred.get("majority_rate"))
        if rate is not None:
            rates.add(round(rate, 6))
    xs = [p.accuracy for p in pts] + sorted(rates)
    ys = [p.auc for p in pts]
    # zoomed on the models (and the majority rate): at 0-1 they sat in a few per cent of the width
    x_range = (max(0.0, min(xs) - 0.04), min(1.02, max(xs) + 0.04))
    y_range = (min(0.4, min(ys) - 0.03), min(1.02, max(0.75, max(ys) + 0.08)))
    view = TradeoffView(pts, sorted(rates), x_range, y_range)
    # the reference lines' own labels, where both renderers put them (font sizes from the plot's
    # bottom left): "chance" under its line at the right end, "majority rate" at the bottom
    width = height * aspect
    y_chance = (0.5 - y_range[0]) / (y_range[1] - y_range[0]) * height
    x_rates = [(r - x_range[0]) / (x_range[1] - x_range[0]) * width for r in view.majority_rates]
    reserved = [(width - 10.5, y_chance - 1.7, width, y_chance - 0.1)]
    reserved += [(x, 0.0, x + 12.0, 1.8) for x in x_rates]
    lines = [(0.0, y_chance - 0.15, width, y_chance + 0.15)]
    lines += [(x - 0.15, 0.0, x + 0.15, height) for x in x_rates]
    view.offsets = label_offsets([(p.accuracy, p.auc) for p in pts], [p.label for p in pts],
                                 x_range, y_range, aspect=aspect, height=height,
                                 reserved=reserved, lines=lines)  # fmt: skip
    return view


def label_offsets(
    points: list[tuple[float, float]], labels: list[str], x_range: tuple[float, float],
    y_range: tuple[float, float], *, aspect: float = 2.8, height: float = 22.0,
    reserved: Sequence[Box] = (), lines: Sequence[Box] = (),
) -> list[tuple[float, float]]:  # fmt: skip
    """Offsets (in font sizes; x right, y up) from each point to the centre of its label, such that
    no two labels overlap and no label covers a marker, a ``reserved`` box (other text) or leaves
    the plot, where that is possible (else the candidate with the least overlap), and labels
    cross ``lines`` (thin boxes: reference lines) only where nothing else is free. The plot is
    ``height`` font sizes high and ``aspect`` times as wide; boxes are (x0, y0, x1, y1) in font
    sizes from its bottom left; a label is 0.6 font sizes a character wide and 1.4 high."""
    width = height * aspect
    sx = width / max(x_range[1] - x_range[0], 1e-12)
    sy = height / max(y_range[1] - y_range[0], 1e-12)
    pos = [((x - x_range[0]) * sx, (y - y_range[0]) * sy) for x, y in points]
    sizes = [(0.6 * len(t) + 0.6, 1.4) for t in labels]
    marker = 0.8  # half a marker's width
    placed: list[Box] = list(reserved)
    out: list[tuple[float, float]] = [(0.0, 0.0)] * len(points)
    angles = [90, 270, 0, 180, 45, 135, 315, 225, 60, 120, 300, 240, 30, 150, 330, 210]

    def overlap(a, b) -> float:
        w = min(a[2], b[2]) - max(a[0], b[0])
        h = min(a[3], b[3]) - max(a[1], b[1])
        return w * h if w > 0 and h > 0 else 0.0

    # the most crowded points first: they have the fewest free places
    def crowd(i: int) -> float:
        return -sum(1 for j in range(len(pos)) if j != i and math.dist(pos[i], pos[j]) < 6)

    for i in sorted(range(len(points)), key=crowd):
        (px, py), (w, h) = pos[i], sizes[i]
        best, best_cost = None, math.inf
        for r in (1.6, 2.6, 3.8, 5.2, 6.8, 8.6):
            for a in angles:
                # the leader line ends at the box's edge: push the box out by its half-extent
                dx, dy = math.cos(math.radians(a)), math.sin(math.radians(a))
                cx, cy = px + dx * (r + w / 2 * abs(dx)), py + dy * (r + h / 2 * abs(dy))
                box = (cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2)
                cost = sum(overlap(box, b) for b in placed) + 0.3 * sum(overlap(box, b) for b in lines)
                cost += sum(overlap(box, (qx - marker, qy - marker, qx + marker, qy + marker)) for qx, qy in pos)
                outside = max(0.0, -box[0]) + max(0.0, box[2] - width) + max(0.0, -box[1]) + max(0.0, box[3] - height)
                cost += 10 * outside * h
                if cost < best_cost - 1e-9:
                    best, best_cost = (box, cx - px, cy - py), cost
            if best_cost == 0:
                break
        assert best is not None
        placed.append(best[0])
        out[i] = (best[1], best[2])
    return out
