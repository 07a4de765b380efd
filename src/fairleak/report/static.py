"""Static copies of the report's figures (PNG, matplotlib, no browser): for people who paste
figures into documents. Drawn from the same blocks as the HTML report (results.json alone), with
the same encodings: intervals as error bars, reference lines (chance, null levels), small groups
grey with their n, non-private models named as such.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from fairleak.audit.blocks import Bars, Block, Curves, Histogram
from fairleak.audit.stages import STAGES
from fairleak.report.tradeoff import tradeoff_view

__all__ = ["write_figures"]

_PALETTE = ("#4c6ef5", "#e8590c", "#2b8a3e", "#ae3ec9", "#1098ad", "#c92a2a", "#5f3dc4", "#868e96")
_MUTED = "#b8bcc6"


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-").lower()[:60] or "figure"


def _bars(ax: Any, b: Bars) -> None:
    import numpy as np

    n_s = max(1, len(b.series))
    width = 0.8 / n_s
    x = np.arange(len(b.categories))
    for i, s in enumerate(b.series):
        vals = [np.nan if v is None else v for v in s.values]
        base = _PALETTE[i % len(_PALETTE)]
        colors = [base] * len(vals) if s.muted is None else [_MUTED if m else base for m in s.muted]
        err = None
        if s.low is not None and s.high is not None:
            lo = [0 if (v is None or lw is None) else v - lw for v, lw in zip(s.values, s.low, strict=True)]
            hi = [0 if (v is None or h is None) else h - v for v, h in zip(s.values, s.high, strict=True)]
            err = [lo, hi]
        ax.bar(x + (i - (n_s - 1) / 2) * width, vals, width, color=colors, label=s.name,
               yerr=err, capsize=2, ecolor="#333", edgecolor=base, linewidth=0.6)  # fmt: skip
    for line in b.lines:
        ax.axhline(line.value, ls="--", color="#777", lw=1)
        ax.annotate(line.label, (0, line.value), xycoords=("axes fraction", "data"),
                    xytext=(2, 2), textcoords="offset points", fontsize=7, color="#555")  # fmt: skip
    ax.set_xticks(x, b.categories, rotation=30 if len(b.categories) > 4 else 0, ha="right" if len(b.categories) > 4 else "center", fontsize=7)
    ax.set_ylabel(b.y_label)
    if b.y_range is not None:
        ax.set_ylim(*b.y_range)
    if len(b.series) > 1 or any(s.muted for s in b.series):
        ax.legend(fontsize=7, frameon=False)


def _curves(ax: Any, c: Curves) -> None:
    for name, x, y in c.series:
        if c.log:
            pts = [(a, b) for a, b in zip(x, y, strict=True) if a > 0 and b > 0]
            x, y = [a for a, _ in pts], [b for _, b in pts]
        ax.step(x, y, where="post", label=name, lw=1.2)
    if c.diagonal:
        lo = 1e-5 if c.log else 0.0
        ax.plot([lo, 1], [lo, 1], ls=":", color="#999", label=c.diagonal)
    if c.log:
        ax.set_xscale("log")
        ax.set_yscale("log")
    ax.set_xlabel(c.x_label)
    ax.set_ylabel(c.y_label)
    ax.legend(fontsize=6, frameon=False)


def _histogram(ax: Any, h: Histogram) -> None:
    centers = [(a + b) / 2 for a, b in zip(h.edges[:-1], h.edges[1:], strict=True)]
    w = (h.edges[1] - h.edges[0]) if len(h.edges) > 1 else 1.0
    for name, counts in h.series:
        total = max(sum(counts), 1)
        ax.bar(centers, [c / total for c in counts], w, alpha=0.55, label=name)
    ax.set_xlabel(h.x_label)
    ax.set_ylabel("share")
    ax.legend(fontsize=7, frameon=False)


#: the trade-off axes in points (the figure's size and margins in write_figures) and label font
_TRADE_PLOT, _TRADE_FONT = (480.0, 216.0), 6.5


def _tradeoff(ax: Any, results: dict[str, Any]) -> bool:
    view = tradeoff_view(results, aspect=_TRADE_PLOT[0] / _TRADE_PLOT[1], height=_TRADE_PLOT[1] / _TRADE_FONT)
    if view is None:
        return False
    for i, (pt, (dx, dy)) in enumerate(zip(view.points, view.offsets, strict=True)):
        color = _PALETTE[i % len(_PALETTE)]
        ax.scatter([pt.accuracy], [pt.auc], s=60, label=f"{pt.model}: {pt.privacy}",
                   marker="o" if pt.epsilon is None else "D", facecolors="none" if pt.epsilon is None else color,
                   edgecolors=color, linewidths=1.5, zorder=3)  # fmt: skip
        # the label beside its point with a leader line, placed clear of the others (tradeoff.py)
        ax.annotate(pt.label, (pt.accuracy, pt.auc), xytext=(dx * _TRADE_FONT, dy * _TRADE_FONT),
                    textcoords="offset points", ha="center", va="center", fontsize=_TRADE_FONT, color=color,
                    arrowprops={"arrowstyle": "-", "color": "#888", "lw": 0.6, "shrinkA": 0, "shrinkB": 4})  # fmt: skip
    ax.axhline(0.5, ls=":", color="#999")
    ax.annotate("chance (AUC 0.5)", (1.0, 0.5), xycoords=("axes fraction", "data"), xytext=(-2, -8),
                textcoords="offset points", ha="right", fontsize=7, color="#555")  # fmt: skip
    for rate in view.majority_rates:
        ax.axvline(rate, ls="--", color="#666", lw=1, label=None)
        # below the chance line, where models (AUC above 0.5) seldom are
        ax.annotate(f"majority rate {rate:.3f}", (rate, 0.0), xycoords=("data", "axes fraction"),
                    xytext=(3, 4), textcoords="offset points", ha="left", va="bottom",
                    fontsize=7, color="#555")  # fmt: skip
    ax.set_xlim(*view.x_range)
    ax.set_ylim(*view.y_range)
    ax.set_xlabel("test accuracy")
    ax.set_ylabel("strongest attack AUC")
    ax.legend(fontsize=6.5, frameon=False, title="model: privacy", title_fontsize=6.5, ncol=3,
              loc="upper center", bbox_to_anchor=(0.5, -0.2))  # fmt: skip
    return True


def _blocks(results: dict[str, Any]) -> list[tuple[str, Block]]:
    out: list[tuple[str, Block]] = []
    skip = {"kind", "recipe", "reference_recipe", "epsilon", "delta", "noise_multiplier", "privacy", "notes"}
    for name, m in results["models"].items():
        for key, data in m.items():
            if key in skip or key not in STAGES:
                continue
            out += [(name, b) for b in STAGES[key].report({name: data}, name)]
    for key, data in results.items():
        if key in STAGES and STAGES[key].scope == "audit":
            out += [("audit", b) for b in STAGES[key].report(data, None)]
    return [(w, b) for w, b in out if isinstance(b, Bars | Curves | Histogram)]


def write_figures(results: dict[str, Any], folder: Path | str, fmt: str = "png") -> list[Path]:
    """Write every chart of the report as a static file (``png`` or ``svg``) into ``folder``;
    returns their paths in report order."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    figs: list[tuple[str, Any]] = [("trade-off", None), *_blocks(results)]
    for i, (where, block) in enumerate(figs, 1):
        fig, ax = plt.subplots(figsize=(7.5, 4.2))
        try:
            bottom = 0.24
            if block is None:
                if not _tradeoff(ax, results):
                    continue
                title = "Trade-off: test accuracy vs strongest attack AUC"
                fig.set_size_inches(7.5, 5.0)  # its legend goes below the axes (_TRADE_PLOT)
                bottom = 0.3
            else:
                {Bars: _bars, Curves: _curves, Histogram: _histogram}[type(block)](ax, block)
                title = block.title
            ax.set_title(title, fontsize=9, loc="left", wrap=True)
            # fixed margins: tight_layout drew every figure twice (half the time of this function)
            fig.subplots_adjust(left=0.09, right=0.98, top=0.9, bottom=bottom)
            path = folder / f"{i:02d}-{_slug(where)}-{_slug(title)}.{fmt}"
            fig.savefig(path, dpi=110)
            paths.append(path)
        finally:
            plt.close(fig)
    return paths
