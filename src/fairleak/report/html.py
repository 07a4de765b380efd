"""The self-contained HTML report: one file, plotly.js inlined once, every user string escaped.

Figures are plotly figures serialised to JSON inside ``<script type="application/json">`` blocks
(with ``</`` escaped, so no data can close the script element) and drawn by one small loader.
Text that comes from the user's data (column and group names, model names) is HTML-escaped
wherever it lands: in the page and in the figures (plotly renders a subset of HTML in labels).
"""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any

import plotly.graph_objects as go
from plotly.offline import get_plotlyjs
from plotly.utils import PlotlyJSONEncoder

__all__ = ["render_report", "write_report"]

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0 auto;max-width:1180px;padding:1.5rem;color:#1d2330}
h1{font-size:1.6rem;margin-bottom:.2rem} h2{margin-top:2.2rem;border-bottom:1px solid #dde;padding-bottom:.3rem}
h3{margin-top:1.4rem} table{border-collapse:collapse;margin:.6rem 0;font-size:.88rem}
th,td{border:1px solid #dde;padding:.25rem .5rem;text-align:right} th{background:#f3f5fa}
td.l,th.l{text-align:left} .note{color:#5a6275;font-size:.88rem} .warn{color:#9a5b00}
.fig{width:100%;min-height:380px} .grid{display:grid;grid-template-columns:1fr 1fr;gap:1rem}
code{background:#f3f5fa;padding:0 .2rem}
"""


def _e(v: Any) -> str:
    return html.escape(str(v), quote=True)


def _fmt(v: Any, nd: int = 3) -> str:
    if v is None:
        return "–"
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

    def table(self, header: list[str], rows: list[list[str]], left: int = 1) -> None:
        th = "".join(
            f'<th class="{"l" if i < left else ""}">{_e(h)}</th>' for i, h in enumerate(header)
        )
        body = "".join(
            "<tr>"
            + "".join(f'<td class="{"l" if i < left else ""}">{c}</td>' for i, c in enumerate(r))
            + "</tr>"
            for r in rows
        )
        self.add(f"<table><thead><tr>{th}</tr></thead><tbody>{body}</tbody></table>")


def _layout(title: str, **kw: Any) -> dict[str, Any]:
    return {
        "title": {"text": _e(title)},
        "template": "plotly_white",
        "margin": {"t": 50, "l": 60, "r": 20, "b": 50},
        **kw,
    }


def render_report(results: dict[str, Any]) -> str:
    """The report as one HTML string (no network needed to view it)."""
    p = _Page()
    ds = results["dataset"]
    p.add(f"<h1>fairleak audit: {_e(ds['name'])}</h1>")
    p.add(
        f'<p class="note">{_e(ds["rows"])} rows, label <code>{_e(ds["label"])}</code> (positive '
        f"<code>{_e(ds['positive'])}</code>, base rate {_fmt(ds['base_rate'])}), protected: "
        f"{', '.join('<code>' + _e(a) + '</code>' for a in ds['protected'])}. Split: "
        f"{_e(results['split']['members'])} members, {_e(results['split']['nonmembers'])} non-members, "
        f"{_e(results['split']['population'])} population. Seed {_e(results['seed'])}, fairleak "
        f"{_e(results['fairleak_version'])}.</p>"
    )
    for note in results.get("notes", []):
        p.add(f'<p class="note">{_e(note)}</p>')

    # Summary
    p.add("<h2>Summary</h2>")
    rows = []
    for s in results["summary"]:
        rows.append([
            _e(s["model"]), _fmt(s["test_accuracy"]), _fmt(s["epsilon"], 2),
            _fmt(s["demographic_parity_difference"]), _fmt(s["equalized_odds_difference"]),
            _e(s["strongest_attack"] or "–"), _fmt(s["strongest_attack_auc"]),
            _fmt(s["strongest_attack_tpr_at_1%_fpr"]), _fmt(s["gprp"]), _fmt(s["fd_mia_auc"]),
        ])  # fmt: skip
    attr = results["summary"][0]["attribute"] if results["summary"] else ""
    p.table(
        ["model", "test accuracy", "epsilon", f"DP gap ({attr})", f"EO gap ({attr})", "strongest attack",
         "its AUC", "its TPR@1%FPR", f"GPRP ({attr})", "FD-MIA AUC"],
        rows,
    )  # fmt: skip

    # Trade-off
    names = [s["model"] for s in results["summary"]]
    fig = go.Figure(
        go.Scatter(
            x=[s["test_accuracy"] for s in results["summary"]],
            y=[s["strongest_attack_auc"] for s in results["summary"]],
            mode="markers+text", text=[_e(n) for n in names], textposition="top center",
            marker={"size": [12 + 200 * (s["demographic_parity_difference"] or 0) for s in results["summary"]],
                    "color": [s["epsilon"] if s["epsilon"] is not None else -1 for s in results["summary"]],
                    "colorscale": "Viridis", "showscale": True, "colorbar": {"title": "epsilon (-1: none)"}},
        )
    )  # fmt: skip
    fig.update_layout(**_layout(
        "Trade-off: accuracy vs strongest attack AUC (marker size: demographic parity gap)",
        xaxis_title="test accuracy", yaxis_title="strongest attack AUC"))  # fmt: skip
    p.fig(fig)

    # Per model: ROC curves, per-group attack success, fairness
    for name, m in results["models"].items():
        p.add(f"<h2>Model <code>{_e(name)}</code></h2>")
        eps = m["epsilon"]
        p.add(
            f'<p class="note">accuracy: train {_fmt(m["accuracy"]["train"])}, test {_fmt(m["accuracy"]["test"])}; '
            + (
                "not private"
                if eps is None
                else f"(epsilon, delta) = ({_fmt(eps, 3)}, {_e(m['delta'])})"
            )
            + "</p>"
        )
        if m["attacks"]:
            roc = go.Figure()
            for aname, a in m["attacks"].items():
                if "roc" in a:
                    roc.add_trace(go.Scatter(x=a["roc"]["fpr"], y=a["roc"]["tpr"], mode="lines",
                                             name=f"{_e(aname)} (AUC {_fmt(a['auc'])})"))  # fmt: skip
            roc.add_trace(go.Scatter(x=[1e-5, 1], y=[1e-5, 1], mode="lines", name="chance",
                                     line={"dash": "dot", "color": "#999"}))  # fmt: skip
            roc.update_layout(**_layout(f"ROC curves, log-log ({name})", xaxis_type="log", yaxis_type="log",
                                        xaxis_title="false positive rate", yaxis_title="true positive rate"))  # fmt: skip
            p.fig(roc)
            rows = []
            for aname, a in m["attacks"].items():
                warn = "; ".join(a.get("warnings", []))
                ci = a.get("ci", {}).get("auc")
                rows.append([
                    _e(aname), _fmt(a["auc"]) + (f" [{ci[0]:.3f}, {ci[1]:.3f}]" if ci else ""),
                    _fmt(a["tpr_at_0.1%_fpr"]), _fmt(a["tpr_at_1%_fpr"]), _fmt(a["advantage"]),
                    _e(a["n_members"]), _e(a["n_nonmembers"]), f'<span class="warn">{_e(warn)}</span>',
                ])  # fmt: skip
            p.table(["attack", "AUC [95% CI]", "TPR@0.1%FPR", "TPR@1%FPR", "advantage", "members",
                     "non-members", "warnings"], rows)  # fmt: skip
            strongest = m["strongest_attack"]
            by_group = m["attacks"].get(strongest, {}).get("by_group", {})
            if by_group:
                bar = go.Figure()
                for gattr, groups in by_group.items():
                    gl = [g for g, v in groups.items() if v["auc"] is not None]
                    bar.add_trace(go.Bar(x=[_e(f"{gattr}={g}") for g in gl], y=[groups[g]["auc"] for g in gl],
                                         name=_e(gattr),
                                         hovertext=[_e(f"members {groups[g]['n_members']}, non-members {groups[g]['n_nonmembers']}") for g in gl]))  # fmt: skip
                bar.update_layout(**_layout(f"Per-group success of {strongest} ({name})", yaxis_title="AUC",
                                            yaxis_range=[min(0.4, min((v["auc"] or 1) for gs in by_group.values() for v in gs.values()) - 0.02), max(0.7, max((v["auc"] or 0) for gs in by_group.values() for v in gs.values()) + 0.02)]))  # fmt: skip
                p.fig(bar)
        # fairness
        fr = m["fairness"]
        p.add("<h3>Fairness on non-members</h3>")
        rows = []
        for gattr, gaps in fr["gaps"].items():
            for gname, g in gaps.items():
                ci = "" if g["ci_low"] is None else f" [{g['ci_low']:.3f}, {g['ci_high']:.3f}]"
                rows.append(
                    [
                        _e(gattr),
                        _e(gname),
                        _fmt(g["value"]) + ci,
                        f'<span class="note">{_e(g["note"] or "")}</span>',
                    ]
                )
        p.table(["attribute", "gap", "value [95% CI]", "note"], rows, left=2)
        rows = [
            [_e(r["attribute"]), _e(r["group"]), _e(r["count"]), _fmt(r["selection_rate"]), _fmt(r["tpr"]),
             _fmt(r["fpr"]), _fmt(r["precision"]), _fmt(r["accuracy"]), _fmt(r["ece"]),
             "too small" if r["too_small"] else ""]
            for r in fr["groups"]
        ]  # fmt: skip
        p.table(
            [
                "attribute",
                "group",
                "n",
                "selection",
                "TPR",
                "FPR",
                "precision",
                "accuracy",
                "ECE",
                "",
            ],
            rows,
            left=2,
        )
        # group privacy risk
        gr = m.get("group_risk")
        if gr:
            p.add(f"<h3>Group privacy risk (PA-ALOOA, R = {_e(gr['n_models'])} models)</h3>")
            for gattr, methods in gr["gpr"].items():
                fig = go.Figure()
                for method, groups in methods.items():
                    gl = list(groups)
                    fig.add_trace(
                        go.Bar(
                            x=[_e(g) for g in gl], y=[groups[g]["gpr"] for g in gl], name=_e(method)
                        )
                    )
                small = sorted({g for groups in methods.values() for g, v in groups.items() if v.get("too_small")})
                fig.update_layout(**_layout(f"GPR per group of {gattr} ({name}); GPRP: " + ", ".join(
                    f"{k} {_fmt(v)}" for k, v in gr["gprp"][gattr].items())
                    + (f"; too small, not in GPRP: {', '.join(small)}" if small else ""),
                    barmode="group", yaxis_title="GPR"))  # fmt: skip
                p.fig(fig)
                null = (gr.get("null_gpr") or {}).get(gattr)
                if null:
                    first = next(iter(methods.values()))
                    p.table(["group", *methods], [
                        [_e(g) + (" (too small)" if first[g].get("too_small") else ""),
                         *[f"{_fmt(methods[m][g]['gpr'])} <span class='note'>(null {_fmt(null[m][g]['gpr'])})</span>"
                           for m in methods]]
                        for g in first
                    ])  # fmt: skip
            for note in gr.get("notes", []):
                p.add(f'<p class="note">{_e(note)}</p>')

    # FD-MIA
    if results["fd_mia"]:
        p.add("<h2>FD-MIA: discrepancy between the biased and the fair model</h2>")
        for pair in results["fd_mia"]:
            h = pair["discrepancy_histogram"]
            centers = [(a + b) / 2 for a, b in zip(h["edges"][:-1], h["edges"][1:], strict=True)]
            tot_m, tot_n = max(sum(h["members"]), 1), max(sum(h["nonmembers"]), 1)
            fig = go.Figure([
                go.Bar(x=centers, y=[c / tot_m for c in h["members"]], name="members", opacity=0.6),
                go.Bar(x=centers, y=[c / tot_n for c in h["nonmembers"]], name="non-members", opacity=0.6),
            ])  # fmt: skip
            fig.update_layout(**_layout(f"|p_b - p_f| for {pair['biased']} vs {pair['fair']} (fairness weight {pair['fairness_weight']})",
                                        barmode="overlay", xaxis_title="|p_b(y|x) - p_f(y|x)|", yaxis_title="share"))  # fmt: skip
            p.fig(fig)
            rows = [
                [_e(a), _fmt(v["auc"]), _fmt(v["tpr_at_1%_fpr"]), _fmt(v["advantage"])]
                for a, v in pair["attacks"].items()
            ]
            p.table(["attack", "AUC", "TPR@1%FPR", "advantage"], rows)

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
    from fairleak.audit.cache import atomic_write_text

    path = Path(path)
    atomic_write_text(path, render_report(results))
    return path
