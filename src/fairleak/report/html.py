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
from fairleak.audit.verdict import verdict as make_verdict
from fairleak.files import atomic_write_text
from fairleak.report.tradeoff import tradeoff_view

__all__ = ["render_report", "write_report"]

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0 auto;max-width:1180px;padding:1.5rem;color:#1d2330}
h1{font-size:1.6rem;margin-bottom:.2rem} h2{margin-top:2.2rem;border-bottom:1px solid #dde;padding-bottom:.3rem}
h3{margin-top:1.4rem} table{border-collapse:collapse;margin:.6rem 0;font-size:.88rem}
th,td{border:1px solid #dde;padding:.25rem .5rem;text-align:right;white-space:nowrap} th{background:#f3f5fa}
td.l,th.l{text-align:left;white-space:normal} .note{color:#5a6275;font-size:.88rem} .warn{color:#9a5b00}
.fig{width:100%;min-height:380px} code{background:#f3f5fa;padding:0 .2rem} dt{font-weight:600} dd{margin:0 0 .4rem 1rem}
nav.toc{background:#f6f7fb;border:1px solid #dde;padding:.5rem 1rem;font-size:.9rem} nav.toc a{text-decoration:none}
nav.toc ul{margin:.2rem 0;padding-left:1.2rem} .verdict{border:1px solid #dde;border-radius:6px;padding:.4rem 1rem;margin:.6rem 0}
.verdict h3{margin:.4rem 0} .verdict ul{list-style:none;padding-left:.4rem} .verdict li{margin:.25rem 0}
.lv{display:inline-block;min-width:4.6rem;font-size:.78rem;font-weight:700;text-transform:uppercase}
.lv.concern{color:#c92a2a} .lv.ok{color:#2b8a3e} .lv.info{color:#5a6275}
details.model{border-top:1px solid #dde;margin-top:1.6rem} details.model>summary{cursor:pointer;list-style-position:outside}
details.model>summary h2{display:inline;border:none} .flag{color:#c92a2a;font-weight:600}
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
        "title": {"text": _e(title), "font": {"size": 14}, "automargin": True, "x": 0.01, "xanchor": "left"},
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
        if c.log:  # log axes cannot show 0: start where the curve leaves 0 (no drop to -inf)
            pts = [(a, b) for a, b in zip(x, y, strict=True) if a > 0 and b > 0]
            x, y = [a for a, _ in pts], [b for _, b in pts]
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


_TRADE_FONT = 11  # px, the point labels
_TRADE_PLOT = (1040, 330)  # px, about the plot area at the page's width (legend below)


def _tradeoff(p: _Page, results: dict[str, Any]) -> None:
    view = tradeoff_view(results, aspect=_TRADE_PLOT[0] / _TRADE_PLOT[1], height=_TRADE_PLOT[1] / _TRADE_FONT)
    if view is None:
        return
    fig = go.Figure()
    for i, (pt, (dx, dy)) in enumerate(zip(view.points, view.offsets, strict=True)):
        color = _PALETTE[i % len(_PALETTE)]
        fig.add_trace(go.Scatter(
            x=[pt.accuracy], y=[pt.auc], mode="markers", name=_e(f"{pt.model}: {pt.privacy}"),
            hovertext=[_e(f"{pt.label}: accuracy {pt.accuracy:.3f}, AUC {pt.auc:.3f}")], hoverinfo="text",
            marker={"size": 13, "color": color,
                    "symbol": "circle-open" if pt.epsilon is None else "diamond", "line": {"width": 2}},
        ))  # fmt: skip
        # the label beside its point with a leader line, placed clear of the others (tradeoff.py)
        fig.add_annotation(
            x=pt.accuracy, y=pt.auc, text=_e(pt.label), showarrow=True, arrowhead=0, arrowwidth=0.8,
            arrowcolor="#888", standoff=6, ax=dx * _TRADE_FONT, ay=-dy * _TRADE_FONT,
            font={"size": _TRADE_FONT, "color": color},
        )  # fmt: skip
    fig.add_hline(y=0.5, line_dash="dot", line_color="#999", annotation_text="chance (AUC 0.5)",
                  annotation_position="bottom right")  # fmt: skip
    for rate in view.majority_rates:
        fig.add_vline(x=rate, line_dash="dash", line_color="#666", annotation_text=f"majority rate {rate:.3f}",
                      annotation_position="bottom right")  # fmt: skip  (below chance: seldom a model)
    fig.update_layout(**_layout(
        "Trade-off: test accuracy vs strongest attack AUC (open circle: non-private, diamond: DP; "
        "left of the dashed line: no better than always predicting the majority class)",
        xaxis_title="test accuracy", yaxis_title="strongest attack AUC", xaxis_range=list(view.x_range),
        yaxis_range=list(view.y_range), height=_TRADE_PLOT[1] + 150, showlegend=True,
        legend={"title": {"text": "model: privacy"}, "orientation": "h", "y": -0.22, "x": 0},
        margin={"t": 60, "l": 60, "r": 20, "b": 90},
    ))  # fmt: skip
    p.add('<div id="tradeoff"></div>')
    p.fig(fig)


_GLOSSARY = {
    "epsilon, delta": "differential privacy's guarantee: for any one record, the odds of any outcome change by "
    "at most a factor e^epsilon (smaller is more private), except with probability delta",
    "non-private": "trained without differential privacy: no epsilon applies",
    "membership inference": "an attack that guesses whether a record was in the model's training data",
    "confidence interval": "the range [low, high] that holds the true value with the stated probability "
    "(bootstrap: percentiles for attack figures; for a fairness gap, the signed differences between groups, "
    "so that it reaches 0 when no difference is shown); a claim is made only when the whole interval is past "
    "the threshold",
    "chance": "what guessing achieves: AUC 0.5, TPR at 1% FPR of 0.01",
    "DP-SGD / DP-SGD-S": "stochastic gradient descent with clipped per-example gradients and Gaussian noise; "
    "DP-SGD-S clips each group with its own bound",
    "FD-MIA": "fairness-discrepancy membership inference: an attacker holding both a model and its fair version "
    "uses the difference of their outputs",
    "PA-ALOOA": "the group privacy game of Yang et al. 2025: models trained with and without each record, "
    "scored per record (IPR) and per group (GPR)",
    "null level": "what a figure shows with no leakage at all (models that never saw the records): a "
    "bar only means risk where it stands clearly above its null level",
    "n": "how many records a figure rests on; small groups (grey) have wide intervals",
}


def _anchor(name: str) -> str:
    return "s-" + "".join(c if c.isalnum() or c in "-_" else "-" for c in str(name))


_LEVEL = {"concern": "concern", "ok": "ok", "info": "note"}


def _sentence(s: dict[str, str]) -> str:
    level = s["level"] if s["level"] in _LEVEL else "info"
    return f'<li class="{level}"><span class="lv {level}">{_LEVEL[level]}</span> {_e(s["text"])}</li>'


def _verdict(p: _Page, results: dict[str, Any]) -> None:
    """The verdict at the top: sentences stored in results.json (or made from it by the same pure
    function, for results written before the verdict existed)."""
    v = results.get("verdict") or make_verdict(results, (results.get("config") or {}).get("verdict"))
    th = v["thresholds"]
    p.add('<h2 id="verdict">Verdict</h2>')
    p.add(
        '<p class="note">Sentences made from the figures below and their 95% intervals. A claim is '
        f"made when the interval clears the threshold: fairness gaps above {th['gap_threshold']:g} (a "
        f"common rule of thumb), attack AUC above {0.5 + th['auc_margin']:g} (chance), TPR at 1% FPR "
        f"of {th['tpr_ratio']:g}x chance, group privacy risk {th['gpr_margin']:g} above its null "
        f"level; groups need {th['min_group_size']} members and non-members. An estimate above a "
        "threshold whose interval reaches below it is a note, not a concern. Change them in the "
        "config's <code>verdict</code> section.</p>"
    )
    for name, sentences in v["models"].items():
        items = "".join(_sentence(s) for s in sentences)
        p.add(f'<div class="verdict"><h3><a href="#{_anchor(name)}">{_e(name)}</a></h3><ul>{items}</ul></div>')
    if v.get("audit"):
        items = "".join(_sentence(s) for s in v["audit"])
        p.add(f'<div class="verdict"><h3>Across models</h3><ul>{items}</ul></div>')


_MODEL_FIELDS = {"kind", "recipe", "reference_recipe", "epsilon", "delta", "noise_multiplier", "privacy", "notes"}
_TOP_FIELDS = {"schema_version", "fairleak_version", "seed", "config", "dataset", "split",
               "summary_columns", "summary", "models", "notes", "verdict"}  # fmt: skip


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
    audit_sections = [k for k in results if k not in _TOP_FIELDS and k != "verdict"]
    toc = ['<li><a href="#verdict">Verdict</a></li>', '<li><a href="#summary">Summary and trade-off</a></li>',
           "<li>Models: " + ", ".join(f'<a href="#{_anchor(n)}">{_e(n)}</a>' for n in results["models"]) + "</li>"]
    toc += [f'<li><a href="#{_anchor(k)}">{_e(STAGES[k].title if k in STAGES else k)}</a></li>' for k in audit_sections]
    toc.append('<li><a href="#glossary">Glossary</a></li>')
    p.add('<nav class="toc"><b>Contents</b><ul>' + "".join(toc) + "</ul></nav>")
    _verdict(p, results)

    p.add('<h2 id="summary">Summary</h2>')
    cols = results["summary_columns"]
    attr = ds["protected"][0] if ds["protected"] else ""
    p.table([c["label"] + (f" ({attr})" if c["key"] in ("demographic_parity_difference",
             "equalized_odds_difference", "gprp") else "") for c in cols],
            [[s.get(c["key"]) for c in cols] for s in results["summary"]])  # fmt: skip
    _tradeoff(p, results)

    for name, m in results["models"].items():
        flag = (m.get("fairness") or {}).get("predictor") or {}
        badge = f' <span class="flag">{_e("constant predictor" if flag.get("constant") else "no better than the majority rate")}</span>' if flag.get("degenerate") else ""
        p.add(f'<details class="model" open id="{_anchor(name)}"><summary><h2>Model <code>{_e(name)}</code>{badge}</h2></summary>')
        eps = m.get("epsilon")
        privacy = "not private" if eps is None else f"(epsilon, delta) = ({_fmt(eps, 3)}, {_e(m.get('delta'))})"
        p.add(f'<p class="note">{_e(m.get("kind", ""))} model; {privacy}</p>')
        mech = m.get("privacy") or {}
        if eps is not None and mech.get("covers"):  # what the accountant's epsilon covers, and not
            p.add(f'<p class="note">Epsilon covers: {_e(mech["covers"])}. It does not cover: '
                  f'{_e(mech.get("does_not_cover", ""))}. Noise: {_e(mech.get("noise", ""))}.</p>')
        for note in m.get("notes", []):
            p.add(f'<p class="warn">{_e(note)}</p>')
        for key, data in m.items():
            if key not in _MODEL_FIELDS:
                _section(p, "h3", key, {name: data}, name)
        p.add("</details>")
    for key in audit_sections:
        p.add(f'<div id="{_anchor(key)}"></div>')
        _section(p, "h2", key, results[key], None)

    terms = {**_GLOSSARY, **{t: d for st in STAGES.values() for t, d in st.glossary.items()}}
    p.add('<h2 id="glossary">Glossary</h2><dl>' + "".join(
        f"<dt>{_e(t)}</dt><dd>{_e(d)}</dd>" for t, d in sorted(terms.items(), key=lambda kv: kv[0].lower())) + "</dl>")

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


def write_report(results: dict[str, Any], path: Path | str, *, figures: bool = True) -> Path:
    """Write :func:`render_report` to ``path`` atomically, and (``figures``) a static PNG of every
    chart into ``figures/`` beside it (:func:`fairleak.report.static.write_figures`)."""
    path = Path(path)
    atomic_write_text(path, render_report(results))
    if figures:
        from fairleak.report.static import write_figures

        write_figures(results, path.parent / "figures")
    return path
