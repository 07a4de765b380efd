"""The trade-off view: a majority-rate line, labels that do not overlap, both renderers."""

import itertools

import pytest

from fairleak.report.tradeoff import tradeoff_view


def _results(points, majority=0.7):
    """results.json's summary and predictor checks for (model, accuracy, auc, epsilon) points."""
    return {
        "summary": [{"model": m, "test_accuracy": a, "strongest_attack_auc": u, "epsilon": e,
                     "predictor_warning": None} for m, a, u, e in points],
        "models": {m: {"fairness": {"predictor": {"majority_rate": majority}}} for m, *_ in points},
    }  # fmt: skip


#: the full German audit's crowd: four DP models within a point of accuracy, all near chance
CROWD = [("baseline", 0.732, 0.62, None), ("fair", 0.724, 0.58, None), ("dp_eps1", 0.700, 0.501, 1.0),
         ("dp_eps8", 0.732, 0.512, 8.0), ("dpsgd_s_eps8", 0.728, 0.508, 8.0),
         ("fair_dp_eps8", 0.736, 0.509, 8.0)]  # fmt: skip


def _boxes(view, aspect, height):
    """Label boxes as label_offsets documents them (0.6 font sizes a character, 1.4 high), in
    font sizes from the plot's bottom left, with the marker positions."""
    width = height * aspect
    boxes, marks = [], []
    for p, (dx, dy) in zip(view.points, view.offsets, strict=True):
        px = (p.accuracy - view.x_range[0]) / (view.x_range[1] - view.x_range[0]) * width
        py = (p.auc - view.y_range[0]) / (view.y_range[1] - view.y_range[0]) * height
        w, h = 0.6 * len(p.label) + 0.6, 1.4
        boxes.append((px + dx - w / 2, py + dy - h / 2, px + dx + w / 2, py + dy + h / 2))
        marks.append((px, py))
    return boxes, marks


@pytest.mark.parametrize("aspect, height", [(3.15, 30.0), (2.22, 33.2)])  # the HTML and PNG plots
def test_crowded_labels_do_not_overlap_each_other_the_markers_or_the_chance_line(aspect, height):
    view = tradeoff_view(_results(CROWD), aspect=aspect, height=height)
    boxes, marks = _boxes(view, aspect, height)
    for a, b in itertools.combinations(boxes, 2):
        assert min(a[2], b[2]) <= max(a[0], b[0]) or min(a[3], b[3]) <= max(a[1], b[1]), (a, b)
    y_chance = (0.5 - view.y_range[0]) / (view.y_range[1] - view.y_range[0]) * height
    for box in boxes:
        assert box[0] >= 0 and box[2] <= height * aspect and box[1] >= 0 and box[3] <= height
        assert not box[1] < y_chance < box[3]  # AUC 0.501: its label is off the chance line
        for px, py in marks:  # no label covers a marker's centre
            assert not (box[0] < px < box[2] and box[1] < py < box[3])


def test_view_spans_the_models_and_the_majority_rate():
    view = tradeoff_view(_results(CROWD, majority=0.7))
    assert view.majority_rates == [0.7]
    assert view.x_range[0] < 0.7 < 0.736 < view.x_range[1] and view.x_range[1] - view.x_range[0] < 0.2
    assert view.y_range[0] < 0.5 and view.y_range[1] > 0.62
    assert [p.privacy for p in view.points][:3] == ["non-private", "non-private", "DP, epsilon 1"]
    assert tradeoff_view({"summary": [{"model": "m", "test_accuracy": None}], "models": {}}) is None


def test_html_tradeoff_has_a_majority_rate_line_and_escaped_labels():
    import json
    import re

    from fairleak.report.html import _Page, _tradeoff

    page = _Page()
    _tradeoff(page, _results([*CROWD, ("<b>x</b>", 0.71, 0.55, None)], majority=0.7))
    html = "".join(page.parts)
    assert "<b>x</b>" not in html
    spec = json.loads(re.search(r'data-fig="fig1">(.*?)</script>', html).group(1))
    lines = [s for s in spec["layout"]["shapes"] if s.get("x0") == s.get("x1") == 0.7]
    assert len(lines) == 1 and lines[0]["line"]["dash"] == "dash"
    notes = [a["text"] for a in spec["layout"]["annotations"]]
    assert "majority rate 0.700" in notes
    assert "&lt;b&gt;x&lt;/b&gt;" in notes  # every point labelled, user text escaped
    assert {"baseline", "dp_eps1", "dp_eps8", "dpsgd_s_eps8", "fair_dp_eps8"} <= set(notes)
    assert all(t["mode"] == "markers" for t in spec["data"])  # labels are annotations, not text


def test_static_tradeoff_has_a_majority_rate_line():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from fairleak.report.static import _tradeoff

    fig, ax = plt.subplots()
    try:
        assert _tradeoff(ax, _results(CROWD, majority=0.7))
        vertical = [ln for ln in ax.get_lines() if list(ln.get_xdata()) == [0.7, 0.7]]
        assert len(vertical) == 1 and vertical[0].get_linestyle() == "--"
        texts = [t.get_text() for t in ax.texts]
        assert "majority rate 0.700" in texts and "dpsgd_s_eps8" in texts
    finally:
        plt.close(fig)
