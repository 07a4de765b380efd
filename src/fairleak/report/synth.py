"""The page of ``fairleak synth``: drawn from its results JSON alone (it never computes)."""

from __future__ import annotations

import html
import json
from typing import Any

__all__ = ["render_synth_report"]

_STYLE = """body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;color:#222}
table{border-collapse:collapse;margin:.5em 0 1.5em}td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}
th{background:#f3f3f3}td:first-child,th:first-child{text-align:left}.note{color:#555}
.warn{color:#a33;font-weight:600}"""


def _e(v: Any) -> str:
    return html.escape(str(v), quote=True)


def _n(v: Any, d: int = 3) -> str:
    if v is None:
        return "–"
    if isinstance(v, bool):
        return str(v)
    if isinstance(v, int):
        return f"{v:,}"
    if isinstance(v, float):
        return f"{v:.{d}f}"
    return _e(v)


def _table(head: list[str], rows: list[list[Any]]) -> str:
    h = "".join(f"<th>{_e(c)}</th>" for c in head)
    body = "".join("<tr>" + "".join(f"<td>{c if isinstance(c, str) and c.startswith('<') else _n(c)}</td>"
                                    for c in r) + "</tr>" for r in rows)  # fmt: skip
    return f"<table><tr>{h}</tr>{body}</table>"


def _kv(d: dict[str, Any]) -> str:
    return _table(["", "value"], [[_e(k), v if not isinstance(v, list | dict) else _e(json.dumps(v))] for k, v in d.items()])


def render_synth_report(results: dict[str, Any]) -> str:
    """HTML page of a ``fairleak synth`` results dict (user strings escaped)."""
    r = results
    data, priv = r.get("data", {}), r.get("privacy", {})
    out = [f"<!doctype html><html><head><meta charset='utf-8'><title>fairleak synth: {_e(data.get('name'))}</title>"
           f"<style>{_STYLE}</style></head><body>"]  # fmt: skip
    out.append(f"<h1>Synthetic copy of {_e(data.get('name'))}</h1>")
    out.append(f"<p class='note'>{_e(r.get('method'))}. {_n(r.get('synthetic_rows'))} synthetic rows; the generator "
               f"trained on {_n(data.get('train_rows'))} of {_n(data.get('rows'))} rows.</p>")  # fmt: skip
    for note in [*data.get("notes", []), *r.get("notes", [])]:
        out.append(f"<p class='note'>{_e(note)}</p>")
    out.append("<h2>Privacy (what epsilon covers)</h2>")
    eps = r.get("epsilon")
    out.append(f"<p>epsilon = <b>{_n(eps)}</b>, delta = {_e(format(priv.get('delta') or 0, 'g'))} ({_e(priv.get('accountant'))} "
               f"accountant, max over groups; noise {_e(priv.get('noise'))}).</p>" if eps is not None
               else "<p class='warn'>Not private: trained without differential privacy.</p>")  # fmt: skip
    if not priv.get("preprocessing_private", True):
        out.append("<p class='warn'>preprocessing not private: the schema was read from the training rows.</p>")
    if priv.get("covers"):
        out.append("<p>Covered: " + "; ".join(_e(c) for c in priv["covers"]) + ". Not covered: "
                   + "; ".join(_e(c) for c in priv.get("not_covered", [])) + ".</p>")
    groups = priv.get("groups", {})
    if groups:
        out.append(_table(["group (" + str(priv.get("group_view")) + ")", "epsilon", "sample rate", "noise multiplier",
                           "latent-mean noise", "joint"],
                          [[_e(g), v.get("epsilon"), v.get("sample_rate"), v.get("noise_multiplier"),
                            v.get("mean_noise_multiplier"), v.get("joint_noise_multiplier")] for g, v in groups.items()]))  # fmt: skip
    ev = r.get("evaluation")
    if ev:
        out.append("<p class='note'>The figures below read real rows (training, holdout and test): they are for the "
                   "data owner and not part of the DP release.</p>")  # fmt: skip
        fid = ev.get("fidelity", {})
        out.append("<h2>Fidelity</h2>")
        out.append(_kv({k: v for k, v in fid.items() if k != "columns"}))
        out.append(_table(["column", "kind", "TVD", "KS", "W1 (std)"],
                          [[_e(c), v.get("kind"), v.get("tvd"), v.get("ks"), v.get("w1_std")]
                           for c, v in fid.get("columns", {}).items()]))  # fmt: skip
        ut = ev.get("utility", {})
        out.append(f"<h2>Utility (label {_e(ut.get('label'))}: train on synthetic vs real, test on real)</h2>")
        rows = []
        for m, v in ut.get("models", {}).items():
            for src in ("synthetic", "real"):
                s = v.get(src, {})
                rows.append([_e(m), src, s.get("auc"), s.get("accuracy"), s.get("balanced_error")])
        out.append(_table(["model", "trained on", "AUC", "accuracy", "balanced error"], rows))
        out.append("<h2>Fairness of the downstream models (on real test rows)</h2>")
        rows = []
        for m, v in ut.get("models", {}).items():
            for src in ("synthetic", "real"):
                for attr, gaps in v.get(src, {}).get("gaps", {}).items():
                    rows.append([_e(m), src, _e(attr), gaps.get("demographic_parity_difference"),
                                 gaps.get("equalized_odds_difference"), gaps.get("equal_opportunity_difference")])  # fmt: skip
        out.append(_table(["model", "trained on", "attribute", "DP diff", "EO diff", "EqOpp diff"], rows))
        pp = ev.get("protected_predictability", {})
        out.append(f"<p>How well '{_e(pp.get('attribute'))}' is predicted from the other columns (5-fold AUC, 0.5 = "
                   f"independent): synthetic {_n(pp.get('synthetic'))}, real {_n(pp.get('real'))}.</p>")  # fmt: skip
        pv = ev.get("privacy", {})
        out.append("<h2>Privacy, measured</h2>")
        out.append(_kv({"DCR share (0.5 = no copying)": pv.get("dcr_share"), "DCR share 95% CI": pv.get("dcr_share_ci"),
                        "mDCR ratio": pv.get("mdcr_ratio"), "exact matches": pv.get("exact_match_rate"),
                        "rows compared": pv.get("sizes")}))  # fmt: skip
        mia = pv.get("membership_attack", {})
        rows = [["all", "", mia.get("auc"), mia.get("advantage"), mia.get("tpr_at_1%_fpr"), mia.get("n_members")]]
        for attr, gs in mia.get("by_group", {}).items():
            for g, m in gs.items():
                rows.append([_e(attr), _e(g), m.get("auc"), m.get("advantage"), m.get("tpr_at_1%_fpr"), m.get("n_members")])
        out.append("<p>Membership attack on the generator (score: minus the Gower distance to the closest synthetic row):</p>")
        out.append(_table(["attribute", "group", "AUC", "advantage", "TPR@1%FPR", "members"], rows))
    t = r.get("timing", {})
    out.append("<h2>Run</h2>" + _kv(t))
    out.append("</body></html>")
    return "\n".join(out)
