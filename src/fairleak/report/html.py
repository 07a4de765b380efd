"""The self-contained HTML report: one file, plotly.js inlined once, every user string escaped.

The page is drawn from results.json alone: a header, the summary table (its columns are the ones
the stages declared, the same the CLI prints), a trade-off chart, then each audited model's
section and each audit-wide section, made of the blocks the registered stages describe
(:mod:`fairleak.audit.blocks`). Results of a stage that is not registered are shown as plain tables.

Figures are plotly figures serialised to JSON inside ``<script type="application/json">`` blocks
(with ``</`` escaped, so no data can close the script element) and drawn by one small loader.
Text that comes from the user's data (column and group names, model names) is HTML-escaped
wherever it lands: in the page and in the figures (plotly renders a subset of HTML in labels).
"""

from __future__ import annotations

import html
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import plotly.graph_objects as go
from plotly.offline import get_plotlyjs
from plotly.utils import PlotlyJSONEncoder

from fairleak.audit.blocks import Bars, Block, Curves, Estimate, Front, Histogram, Table, Text
from fairleak.audit.stages import STAGES
from fairleak.files import atomic_write_text

__all__ = ["render_report", "write_report"]

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0 auto;max-width:1180px;padding:1.5rem;color:#1d2330}
h1{font-size:1.6rem;margin-bottom:.2rem} h2{margin-top:2.2rem;border-bottom:1px solid #dde;padding-bottom:.3rem}
h3{margin-top:1.4rem} table{border-collapse:collapse;margin:.6rem 0;font-size:.88rem}
th,td{border:1px solid #dde;padding:.25rem .5rem;text-align:right;white-space:nowrap} th{background:#f3f5fa}
td.l,th.l{text-align:left;white-space:normal} .note{color:#5a6275;font-size:.88rem} .warn{color:#9a5b00}
.fig{width:100%;min-height:380px} code{background:#f3f5fa;padding:0 .2rem} dt{font-weight:600} dd{margin:0 0 .4rem 1rem}
"""
_MUTED = "#b8bcc6"
_PALETTE = ("#4c6ef5", "#e8590c", "#2b8a3e", "#ae3ec9", "#1098ad", "#c92a2a", "#5f3dc4", "#868e96")


def _e(v: Any) -> str:
    return html.escape(str(v), quote=True)


def _fmt(v: Any, nd: int = 3) -> str:
    if v is None:
        return "–"
    if isinstance(v, Estimate):
        if v.value is None:
            return "–"
        s = f"{v.value:.{v.digits}f}"
        if v.low is not None and v.high is not None:
            s += f" <span class='note'>[{v.low:.{v.digits}f}, {v.high:.{v.digits}f}]</span>"
        return s
    if isinstance(v, bool):
        return "yes" if v else ""
    if isinstance(v, float):
        return f"{v:.{nd}f}"
    return _e(v)


class _Page:
    def __init__(self) -> None:
        self.parts: list[str] = []
        self.n_fig = 0

    def add(self, s: str) -> None:
        self.parts.append(s)

    def fig(self, fig: go.Figure) -> None:
        self.n_fig += 1
        fid = f"fig{self.n_fig}"
        payload = json.dumps(fig.to_plotly_json(), cls=PlotlyJSONEncoder).replace("</", "<\\/")
        self.add(
            f'<div class="fig" id="{fid}"></div><script type="application/json" data-fig="{fid}">{payload}</script>'
        )

    def table(self, header: list[str], rows: list[list[Any]], left: int = 1, title: str | None = None) -> None:
        if title:
            self.add(f"<p><b>{_e(title)}</b></p>")
        th = "".join(f'<th class="{"l" if i < left else ""}">{_e(h)}</th>' for i, h in enumerate(header))
        body = "".join(
            "<tr>" + "".join(f'<td class="{"l" if i < left else ""}">{_fmt(c)}</td>' for i, c in enumerate(r)) + "</tr>"
            for r in rows
        )
        self.add(f"<table><thead><tr>{th}</tr></thead><tbody>{body}</tbody></table>")


def _layout(title: str, **kw: Any) -> dict[str, Any]:
    return {
        "title": {"text": _e(title), "font": {"size": 15}},
        "template": "plotly_white",
        "margin": {"t": 60, "l": 60, "r": 20, "b": 60},
        **kw,
    }


def _bars(b: Bars) -> go.Figure:
    fig = go.Figure()
    cats = [_e(c) for c in b.categories]
    for i, s in enumerate(b.series):
        err = None
        if s.low is not None and s.high is not None:
            plus = [None if (h is None or v is None) else h - v for v, h in zip(s.values, s.high, strict=True)]
            minus = [None if (lo is None or v is None) else v - lo for v, lo in zip(s.values, s.low, strict=True)]
            err = {"type": "data", "symmetric": False, "array": plus, "arrayminus": minus, "thickness": 1.2}
        base = _PALETTE[i % len(_PALETTE)]
        colors = [base] * len(cats) if s.muted is None else [_MUTED if m else base for m in s.muted]
        hover = None if s.counts is None else [f"n = {n}" if n is not None else "" for n in s.counts]
        marker = {"color": colors}
        fig.add_trace(go.Bar(x=cats, y=s.values, name=_e(s.name), error_y=err, hovertext=hover, marker=marker))
    for line in b.lines:
        fig.add_hline(y=line.value, line_dash=line.dash, line_color="#777",
                      annotation_text=_e(line.label), annotation_position="top left")  # fmt: skip
    kw: dict[str, Any] = {"barmode": "group", "yaxis_title": _e(b.y_label)}
    if b.y_range is not None:
        kw["yaxis_range"] = list(b.y_range)
    fig.update_layout(**_layout(b.title, **kw))
    return fig


def _curves(c: Curves) -> go.Figure:
    fig = go.Figure()
    for name, x, y in c.series:
        fig.add_trace(go.Scatter(x=x, y=y, mode="lines", name=_e(name), line_shape="hv"))
    if c.diagonal:
        lo = 1e-5 if c.log else 0.0
        fig.add_trace(go.Scatter(x=[lo, 1], y=[lo, 1], mode="lines", name=_e(c.diagonal),
                                 line={"dash": "dot", "color": "#999"}))  # fmt: skip
    kw: dict[str, Any] = {"xaxis_title": _e(c.x_label), "yaxis_title": _e(c.y_label)}
    if c.log:
        kw.update(xaxis_type="log", yaxis_type="log")
    fig.update_layout(**_layout(c.title, **kw))
    return fig


def _histogram(h: Histogram) -> go.Figure:
    centers = [(a + b) / 2 for a, b in zip(h.edges[:-1], h.edges[1:], strict=True)]
    fig = go.Figure()
    for name, counts in h.series:
        total = max(sum(counts), 1)
        fig.add_trace(go.Bar(x=centers, y=[c / total for c in counts], name=_e(name), opacity=0.6))
    fig.update_layout(**_layout(h.title, barmode="overlay", xaxis_title=_e(h.x_label), yaxis_title="share"))
    return fig


_SYMBOLS = ("circle", "square", "diamond", "triangle-up", "cross", "x", "pentagon", "hexagon")


def _front(b: Front) -> list[go.Figure]:
    """The candidates in objective space: the first two objectives as axes (the third, if any,
    as colour), the front as a staircase, the chosen model as a star; a 3-D view when there are
    three objectives. Hover: each candidate's settings and P(front)."""
    n = len(b.names)
    ok = [i for i in range(n) if all(v is not None for v in b.values[i])]
    families = sorted({b.families[i] for i in ok})
    hover = [_e(b.hover[i]) if i < len(b.hover) else "" for i in range(n)]
    three = len(b.axes) == 3
    figs = []
    fig = go.Figure()
    z_all = [b.values[i][2] for i in ok] if three else []
    cmin, cmax = (min(z_all), max(z_all)) if z_all else (0, 1)
    for k, fam in enumerate(families):
        idx = [i for i in ok if b.families[i] == fam]
        marker: dict[str, Any] = {
            "size": [13 if b.on_front[i] else 9 for i in idx],
            "symbol": [_SYMBOLS[k % len(_SYMBOLS)] + ("" if b.on_front[i] else "-open") for i in idx],
            "line": {"width": 1.5},
        }
        if three:
            marker.update(color=[b.values[i][2] for i in idx], colorscale="Viridis", cmin=cmin, cmax=cmax,
                          showscale=k == 0, colorbar={"title": _e(b.axes[2])})  # fmt: skip
        else:
            marker["color"] = _PALETTE[k % len(_PALETTE)]
        fig.add_trace(go.Scatter(
            x=[b.values[i][0] for i in idx], y=[b.values[i][1] for i in idx], mode="markers",
            name=_e(fam), marker=marker, text=[_e(b.names[i]) for i in idx],
            customdata=[hover[i] for i in idx],
            hovertemplate="<b>%{text}</b><br>%{x:.4f}, %{y:.4f}<br>%{customdata}<extra></extra>",
        ))  # fmt: skip
    front = sorted((i for i in ok if b.on_front[i]), key=lambda i: (b.values[i][0], b.values[i][1]))
    if len(front) > 1:
        xs, ys, best = [], [], None
        for i in front:  # the 2-D projection's staircase through the front points
            x, y = b.values[i][0], b.values[i][1]
            if best is None or y < best:
                if best is not None:
                    xs.append(x)
                    ys.append(best)
                xs.append(x)
                ys.append(y)
                best = y
        fig.add_trace(go.Scatter(x=xs, y=ys, mode="lines", name="front (projection)",
                                 line={"color": "#999", "dash": "dot"}, hoverinfo="skip"))  # fmt: skip
    if b.chosen is not None and b.chosen in ok:
        c = b.chosen
        fig.add_trace(go.Scatter(
            x=[b.values[c][0]], y=[b.values[c][1]], mode="markers+text", name="chosen",
            text=[_e(b.names[c])], textposition="top center",
            marker={"symbol": "star", "size": 22, "color": "#e03131", "line": {"width": 1, "color": "#000"}},
            hovertemplate=f"<b>chosen: {_e(b.names[c])}</b><br>{hover[c]}<extra></extra>",
        ))  # fmt: skip
    fig.update_layout(**_layout(b.title, xaxis_title=_e(b.axes[0]), yaxis_title=_e(b.axes[1]),
                                legend={"orientation": "h", "y": -0.2}))  # fmt: skip
    figs.append(fig)
    if three:
        fig3 = go.Figure()
        for k, fam in enumerate(families):
            idx = [i for i in ok if b.families[i] == fam]
            fig3.add_trace(go.Scatter3d(
                x=[b.values[i][0] for i in idx], y=[b.values[i][1] for i in idx],
                z=[b.values[i][2] for i in idx], mode="markers", name=_e(fam),
                text=[_e(b.names[i]) for i in idx], customdata=[hover[i] for i in idx],
                marker={"size": [7 if b.on_front[i] else 4 for i in idx], "color": _PALETTE[k % len(_PALETTE)],
                        "opacity": 0.9},
                hovertemplate="<b>%{text}</b><br>%{customdata}<extra></extra>",
            ))  # fmt: skip
        if b.chosen is not None and b.chosen in ok:
            c = b.chosen
            fig3.add_trace(go.Scatter3d(
                x=[b.values[c][0]], y=[b.values[c][1]], z=[b.values[c][2]], mode="markers+text",
                text=[_e(b.names[c])], name="chosen", marker={"size": 10, "color": "#e03131", "symbol": "diamond"},
            ))  # fmt: skip
        fig3.update_layout(**_layout(b.title + " (3-D: drag to turn)", height=620, scene={
            "xaxis_title": _e(b.axes[0]), "yaxis_title": _e(b.axes[1]), "zaxis_title": _e(b.axes[2]),
            "aspectmode": "cube"}))  # fmt: skip
        figs.append(fig3)
    return figs


def _render(p: _Page, blocks: list[Block]) -> None:
    for b in blocks:
        if isinstance(b, Text):
            cls = {"note": "note", "warn": "warn"}.get(b.kind, "")
            p.add(f'<p class="{cls}">{_e(b.text)}</p>')
        elif isinstance(b, Table):
            p.table(b.columns, b.rows, left=b.left, title=b.title)
        elif isinstance(b, Bars):
            p.fig(_bars(b))
            if b.note:
                p.add(f'<p class="note">{_e(b.note)}</p>')
        elif isinstance(b, Curves):
            p.fig(_curves(b))
        elif isinstance(b, Histogram):
            p.fig(_histogram(b))
        elif isinstance(b, Front):
            for fig in _front(b):
                p.fig(fig)


def _section(p: _Page, tag: str, key: str, data: Any, model: str | None) -> None:
    """One stage's section (for ``model``, or audit-wide); a stage this installation does not
    know (results from a plugin not installed) is shown as a plain table."""
    stage = STAGES.get(key)
    p.add(f"<{tag}>{_e(stage.title if stage else key)}</{tag}>")
    if stage is not None:
        _render(p, stage.report(data, model))
    else:
        _generic(p, data[model] if model is not None else data)


def _generic(p: _Page, data: Any) -> None:
    """A stage this installation does not know: its scalar results as a table."""
    if isinstance(data, Mapping):
        rows = [[k, v] for k, v in data.items() if not isinstance(v, dict | list)]
        if rows:
            p.table(["key", "value"], rows)


def _tradeoff(p: _Page, summary: list[dict[str, Any]]) -> None:
    pts = [s for s in summary if s.get("test_accuracy") is not None and s.get("strongest_attack_auc") is not None]
    if not pts:
        return
    fig = go.Figure()
    private = [s for s in pts if s.get("epsilon") is not None]
    public = [s for s in pts if s.get("epsilon") is None]
    if public:
        fig.add_trace(go.Scatter(
            x=[s["test_accuracy"] for s in public], y=[s["strongest_attack_auc"] for s in public],
            mode="markers+text", text=[_e(s["model"]) for s in public], textposition="top center",
            name="not private", marker={"size": 12, "color": "#555", "symbol": "circle-open"},
        ))  # fmt: skip
    if private:
        fig.add_trace(go.Scatter(
            x=[s["test_accuracy"] for s in private], y=[s["strongest_attack_auc"] for s in private],
            mode="markers+text", text=[_e(s["model"]) for s in private], textposition="bottom center",
            name="DP (colour: epsilon)",
            marker={"size": 12, "color": [s["epsilon"] for s in private], "colorscale": "Viridis",
                    "showscale": True, "colorbar": {"title": "epsilon"}},
        ))  # fmt: skip
    fig.add_hline(y=0.5, line_dash="dot", line_color="#999", annotation_text="chance")
    fig.update_layout(**_layout("Trade-off: test accuracy vs the strongest attack's AUC",
                                xaxis_title="test accuracy", yaxis_title="strongest attack AUC"))  # fmt: skip
    p.fig(fig)


_MODEL_FIELDS = {"kind", "recipe", "reference_recipe", "epsilon", "delta", "noise_multiplier", "privacy", "notes"}
_TOP_FIELDS = {"schema_version", "fairleak_version", "seed", "config", "dataset", "split",
               "summary_columns", "summary", "models", "notes"}  # fmt: skip


def render_report(results: dict[str, Any]) -> str:
    """The report as one HTML string (no network needed to view it)."""
    p = _Page()
    ds, split = results["dataset"], results["split"]
    p.add(f"<h1>fairleak audit: {_e(ds['name'])}</h1>")
    p.add(
        f'<p class="note">{_e(ds["rows"])} rows, label <code>{_e(ds["label"])}</code> (positive '
        f"<code>{_e(ds['positive'])}</code>, base rate {_fmt(ds['base_rate'])}), protected: "
        f"{', '.join('<code>' + _e(a) + '</code>' for a in ds['protected'])}. Split: "
        f"{_e(split['members'])} members, {_e(split['nonmembers'])} non-members, "
        f"{_e(split['population'])} population. Seed {_e(results['seed'])}, fairleak "
        f"{_e(results['fairleak_version'])}.</p>"
    )
    for note in results.get("notes", []):
        p.add(f'<p class="note">{_e(note)}</p>')

    p.add("<h2>Summary</h2>")
    cols = results["summary_columns"]
    attr = ds["protected"][0] if ds["protected"] else ""
    p.table([c["label"] + (f" ({attr})" if c["key"] in ("demographic_parity_difference",
             "equalized_odds_difference", "gprp") else "") for c in cols],
            [[s.get(c["key"]) for c in cols] for s in results["summary"]])  # fmt: skip
    _tradeoff(p, results["summary"])

    for name, m in results["models"].items():
        p.add(f"<h2>Model <code>{_e(name)}</code></h2>")
        eps = m.get("epsilon")
        privacy = "not private" if eps is None else f"(epsilon, delta) = ({_fmt(eps, 3)}, {_e(m.get('delta'))})"
        p.add(f'<p class="note">{_e(m.get("kind", ""))} model; {privacy}</p>')
        for note in m.get("notes", []):
            p.add(f'<p class="warn">{_e(note)}</p>')
        for key, data in m.items():
            if key not in _MODEL_FIELDS:
                _section(p, "h3", key, {name: data}, name)
    for key, data in results.items():
        if key not in _TOP_FIELDS:
            _section(p, "h2", key, data, None)

    terms = {t: d for st in STAGES.values() for t, d in st.glossary.items()}
    if terms:
        p.add("<h2>Glossary</h2><dl>" + "".join(f"<dt>{_e(t)}</dt><dd>{_e(d)}</dd>" for t, d in terms.items()) + "</dl>")

    loader = (
        "document.querySelectorAll('script[data-fig]').forEach(function(s){"
        "var f=JSON.parse(s.textContent);Plotly.newPlot(s.getAttribute('data-fig'),f.data,f.layout,"
        "{responsive:true,displaylogo:false});});"
    )
    return (
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>fairleak audit: {_e(ds['name'])}</title><style>{_CSS}</style>"
        f"<script>{get_plotlyjs()}</script></head><body>"
        + "".join(p.parts)
        + f"<script>{loader}</script></body></html>"
    )


def write_report(results: dict[str, Any], path: Path | str) -> Path:
    """Write :func:`render_report` to ``path`` atomically."""
    path = Path(path)
    atomic_write_text(path, render_report(results))
    return path
