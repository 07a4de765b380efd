"""The verdict: plain sentences per audited model, generated from results.json's numbers.

A pure function of the results (:func:`verdict`): the audit stores its output in results.json
(``verdict``), and the report shows it at the top; a report drawn from an older results.json
calls the same function. Every sentence carries the figure and its interval that it rests on,
and the thresholds it compares them with are configurable (the audit config's ``verdict``
section) and stated in the output.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["VerdictSection", "verdict"]

Level = Literal["concern", "ok", "info"]


class VerdictSection(BaseModel):
    """Thresholds of the verdict's sentences (config section ``verdict``)."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)
    gap_threshold: float = Field(
        0.1, ge=0, le=1, description="a fairness gap above this is called out (the 0.1 rule of thumb)"
    )
    gaps: list[str] = Field(
        default_factory=lambda: ["demographic_parity_difference", "equalized_odds_difference"],
        description="the fairness gaps the verdict looks at",
    )
    auc_margin: float = Field(
        0.0, ge=0, lt=0.5,
        description="an attack leaks when the lower end of its AUC interval is above 0.5 + this",
    )
    tpr_ratio: float = Field(
        2.0, ge=1, description="TPR at 1% FPR this many times chance (0.01) is called out"
    )
    min_group_size: int = Field(
        30, ge=1, description="per-group claims need at least this many members and non-members"
    )
    max_groups: int = Field(3, ge=1, description="groups named per sentence, at most")
    gpr_margin: float = Field(
        0.05, ge=0, description="a group's held-out GPR this far above its null level is called out"
    )


_GAP_LABEL = {
    "demographic_parity_difference": "demographic parity gap",
    "equalized_odds_difference": "equalized odds gap",
    "equal_opportunity_difference": "equal opportunity gap",
    "accuracy_difference": "accuracy gap",
}


def _iv(lo: Any, hi: Any, nd: int = 2) -> str:
    return "" if lo is None or hi is None else f" [{lo:.{nd}f}, {hi:.{nd}f}]"


def _s(level: Level, topic: str, text: str) -> dict[str, str]:
    return {"level": level, "topic": topic, "text": text}


def _predictor(m: Mapping[str, Any]) -> list[dict[str, str]]:
    f = m.get("fairness")
    if not f:
        return []
    pred = f.get("predictor") or {}
    acc = f["accuracy"]["test"]
    if pred.get("degenerate"):
        return [_s("concern", "predictor",
                   f"Not a useful model: {pred['reason']}. Its fairness gaps are not meaningful and "
                   "are left out of this verdict.")]  # fmt: skip
    if pred:
        return [_s("info", "predictor",
                   f"Test accuracy {acc:.3f} against a majority rate of {pred['majority_rate']:.3f}.")]  # fmt: skip
    return [_s("info", "predictor", f"Test accuracy {acc:.3f}.")]


def _fairness(m: Mapping[str, Any], th: VerdictSection) -> list[dict[str, str]]:
    f = m.get("fairness")
    if not f or (f.get("predictor") or {}).get("degenerate"):
        return []
    above, largest = [], None
    for attr, gaps in f["gaps"].items():
        for gname in th.gaps:
            g = gaps.get(gname)
            if not g or g.get("value") is None:
                continue
            item = (g["value"], attr, gname, g)
            if largest is None or item[0] > largest[0]:
                largest = item
            if g["value"] > th.gap_threshold:
                above.append(item)
    out = []
    # single attributes first, then intersections; largest first
    above.sort(key=lambda t: ("*" in t[1], -t[0]))
    for value, attr, gname, g in above[: th.max_groups + 1]:
        lo = g.get("ci_low")
        sure = lo is not None and lo > th.gap_threshold
        what = _GAP_LABEL.get(gname, gname.replace("_", " "))
        where = f"the intersection {attr}" if "*" in attr else attr
        tail = (f"above the {th.gap_threshold:g} rule of thumb" if sure else
                f"above the {th.gap_threshold:g} rule of thumb, though its interval reaches below it")  # fmt: skip
        groups = g.get("groups_used") or []
        # a claim needs the interval to clear the threshold; an estimate above it whose interval
        # reaches below is reported as a note, not a concern
        out.append(_s("concern" if sure else "info", "fairness",
                      f"{what[0].upper() + what[1:]} for {where} {value:.2f}{_iv(lo, g.get('ci_high'))}, {tail}"
                      + (f" (groups compared: {', '.join(groups[:6])}{' ...' if len(groups) > 6 else ''})." if groups else ".")))  # fmt: skip
    if len(above) > th.max_groups + 1:
        out.append(_s("concern", "fairness", f"... and {len(above) - th.max_groups - 1} more gap(s) above {th.gap_threshold:g}."))
    if not above and largest is not None:
        value, attr, gname, g = largest
        out.append(_s("ok", "fairness",
                      f"Every {' and '.join(_GAP_LABEL.get(x, x) for x in th.gaps)} is at or below the "
                      f"{th.gap_threshold:g} rule of thumb (largest: {_GAP_LABEL.get(gname, gname)} for {attr} "
                      f"{value:.2f}{_iv(g.get('ci_low'), g.get('ci_high'))})."))  # fmt: skip
    return out


def _membership(m: Mapping[str, Any], th: VerdictSection) -> list[dict[str, str]]:
    a = m.get("attacks")
    if not a or not a.get("strongest"):
        return []
    name = a["strongest"]
    r = a["results"][name]
    auc, ci = r.get("auc"), (r.get("ci") or {}).get("auc")
    if auc is None:
        return []
    lo = ci[0] if ci else None
    bar = 0.5 + th.auc_margin
    tpr = r.get("tpr_at_1%_fpr")
    tpr_txt = ""
    if tpr is not None:
        ratio = tpr / 0.01
        tci = (r.get("ci") or {}).get("tpr_at_1%_fpr")
        tpr_txt = f"; TPR at 1% FPR {tpr:.3f}{_iv(*(tci or (None, None)), nd=3)}, {ratio:.1f}x chance"
    out = []
    if lo is not None and lo > bar:
        out.append(_s("concern", "membership",
                      f"Leaks membership above chance: {name} AUC {auc:.2f}{_iv(*ci)}{tpr_txt}."))  # fmt: skip
    else:
        how = "its interval includes chance" if ci else "no interval"
        out.append(_s("ok", "membership",
                      f"No membership leakage shown beyond chance: strongest attack {name} AUC "
                      f"{auc:.2f}{_iv(*(ci or (None, None)))} ({how}){tpr_txt}."))  # fmt: skip
        if tpr is not None and tpr / 0.01 >= th.tpr_ratio:
            out.append(_s("concern", "membership",
                          f"At a low false-positive rate the attack still finds members: TPR at 1% FPR "
                          f"{tpr / 0.01:.1f}x chance (the verdict calls out {th.tpr_ratio:g}x)."))  # fmt: skip
    leaky = []
    for attr, groups in (r.get("by_group") or {}).items():
        for g, v in groups.items():
            gci = (v.get("ci") or {}).get("auc")
            if v.get("auc") is None or not gci:
                continue
            if min(v["n_members"], v["n_nonmembers"]) < th.min_group_size:
                continue
            if gci[0] > bar:
                leaky.append((v["auc"], attr, g, gci, v))
    if leaky:
        leaky.sort(key=lambda t: ("*" in t[1], -t[0]))
        parts = [f"{attr}={g} (AUC {auc_g:.2f}{_iv(*gci)}, n={min(v['n_members'], v['n_nonmembers'])})"
                 for auc_g, attr, g, gci, v in leaky[: th.max_groups]]  # fmt: skip
        more = f" and {len(leaky) - th.max_groups} more group(s)" if len(leaky) > th.max_groups else ""
        out.append(_s("concern", "membership",
                      f"Above chance for {'; '.join(parts)}{more} ({name}, groups with at least "
                      f"{th.min_group_size} members and non-members)."))  # fmt: skip
    return out


def _group_risk(m: Mapping[str, Any], th: VerdictSection) -> list[dict[str, str]]:
    gr = m.get("group_risk")
    if not gr or "gpr" not in gr:
        return []
    attr = gr.get("attribute")
    held = (gr["gpr"].get(attr) or {}).get("pa_alooa_heldout") or {}
    null = ((gr.get("null_gpr") or {}).get(attr) or {}).get("pa_alooa_heldout") or {}
    risky = []
    for g, v in held.items():
        if v.get("too_small") or v.get("gpr") is None:
            continue
        base = (null.get(g) or {}).get("gpr", 0.0) or 0.0
        if v["gpr"] - base > th.gpr_margin:
            risky.append((v["gpr"] - base, g, v["gpr"], base, v["n"]))
    gprp = (gr.get("gprp") or {}).get(attr, {}).get("pa_alooa_heldout")
    if risky:
        risky.sort(reverse=True)
        parts = [f"{attr}={g} (GPR {gpr:.3f} against a null level of {base:.3f}, n={n})"
                 for _, g, gpr, base, n in risky[: th.max_groups]]  # fmt: skip
        return [_s("concern", "group risk", f"Group privacy risk above its null level for {'; '.join(parts)}.")]
    if gprp is not None:
        return [_s("ok", "group risk",
                   f"Group privacy risk (held-out PA-ALOOA) within {th.gpr_margin:g} of its null level for "
                   f"every group of {attr}; GPRP {gprp:.3f}.")]  # fmt: skip
    return []


def _privacy(m: Mapping[str, Any]) -> list[dict[str, str]]:
    eps = m.get("epsilon")
    if eps is None:
        return [_s("info", "privacy", "Not trained with differential privacy.")]
    text = f"Trained with DP-SGD: (epsilon, delta) = ({eps:.2f}, {m.get('delta'):g})"
    public = ((m.get("privacy") or {}).get("public_pretraining") or {}).get("rows")
    if public:  # epsilon covers the fine-tuning, not the start
        text += f", fine-tuned from a model trained without privacy on {public:,} public rows"
    return [_s("info", "privacy", text + ".")]


def _fd_mia(results: Mapping[str, Any], th: VerdictSection) -> list[dict[str, str]]:
    fd = results.get("fd_mia") or {}
    out = []
    for pair in fd.get("pairs", []) if isinstance(fd, Mapping) else []:
        attacks = pair.get("attacks") or {}
        best = max((v for k, v in attacks.items() if k.startswith("fd_mia") and v.get("auc") is not None),
                   key=lambda v: v["auc"], default=None)  # fmt: skip
        if best is None:
            continue
        ci = (best.get("ci") or {}).get("auc")
        leaks = ci is not None and ci[0] > 0.5 + th.auc_margin
        out.append(_s("concern" if leaks else "ok", "FD-MIA",
                      f"An attacker holding both {pair['biased']} and {pair['fair']} "
                      f"({best.get('name', 'FD-MIA')}): AUC {best['auc']:.2f}{_iv(*(ci or (None, None)))}, "
                      + ("above chance." if leaks else "not shown above chance.")))  # fmt: skip
    return out


def verdict(results: Mapping[str, Any], thresholds: VerdictSection | Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Sentences per model (``models[name]``: a list of ``{level, topic, text}``, ``level`` one
    of concern / ok / info) and audit-wide ones (``audit``), with the ``thresholds`` used."""
    th = thresholds if isinstance(thresholds, VerdictSection) else VerdictSection(**(thresholds or {}))
    models = {}
    for name, m in results.get("models", {}).items():
        models[name] = [*_predictor(m), *_membership(m, th), *_fairness(m, th), *_group_risk(m, th), *_privacy(m)]
    return {"thresholds": th.model_dump(), "models": models, "audit": _fd_mia(results, th)}
