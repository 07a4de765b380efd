"""The HTML report: self-contained, renders its plots in headless Chromium, escapes user strings."""

import shutil

import numpy as np
import pandas as pd
import pytest

from fairleak.audit.pipeline import run_audit
from fairleak.report import render_report, write_report

from ..audit.conftest import tiny_config

XSS = "<script>alert(1)</script>"


@pytest.fixture(scope="module")
def hostile_report(tmp_path_factory):
    """An audit of user data whose protected column and group names are HTML."""
    out = tmp_path_factory.mktemp("report")
    rng = np.random.default_rng(0)
    n = 1500
    df = pd.DataFrame({f"x{i}": rng.normal(size=n) for i in range(4)})
    df[XSS] = rng.choice(["<b>bold</b>", "plain & simple"], n)
    df["outcome"] = (df["x0"] + rng.normal(size=n) > 0).map({True: "yes", False: "no"})
    path = out / "hostile.csv"
    df.to_csv(path, index=False)
    cfg = tiny_config(dataset=str(path), label="outcome", positive="yes", protected=[XSS])
    result = run_audit(cfg, out_dir=out)
    return write_report(result.results, out / "report.html"), result


def test_report_is_self_contained_and_escaped(hostile_report):
    path, _ = hostile_report
    page = path.read_text()
    assert XSS not in page.replace("<\\/script>", "")  # never raw in the page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<b>bold</b>" not in page
    assert "http://" not in page.split("<script>", 1)[0]  # nothing fetched before plotly.js
    assert page.count("Plotly.newPlot") == 1 and "data-fig" in page
    assert 'src="http' not in page and "src='http" not in page


def test_static_figures_are_written_beside_the_report(hostile_report):
    path, _ = hostile_report
    pngs = sorted((path.parent / "figures").glob("*.png"))
    assert len(pngs) >= 5 and pngs[0].name.startswith("01-trade-off")
    assert all(p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and p.stat().st_size > 5000 for p in pngs)
    assert any("per-group-auc" in p.name for p in pngs) and any("gpr-per-group" in p.name for p in pngs)


def test_render_escapes_model_and_dataset_names(hostile_report):
    _, result = hostile_report
    res = dict(result.results)
    res["dataset"] = {**res["dataset"], "name": "<img src=x onerror=alert(2)>"}
    page = render_report(res)
    assert "<img src=x" not in page and "&lt;img src=x onerror=alert(2)&gt;" in page


def _chrome():
    if not (shutil.which("chromium") and shutil.which("chromedriver")):
        pytest.skip("Debian chromium and chromium-driver are not installed")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    for a in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
              "--disable-background-networking", "--disable-component-update", "--disable-sync",
              "--no-first-run"):  # fmt: skip
        opts.add_argument(a)
    opts.binary_location = shutil.which("chromium")
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=opts)


@pytest.mark.browser
def test_report_opens_in_headless_chromium_with_plots_and_no_errors(hostile_report):
    from selenium.common.exceptions import NoAlertPresentException
    from selenium.webdriver.common.by import By

    path, _ = hostile_report
    driver = _chrome()
    try:
        driver.get(path.as_uri())
        driver.implicitly_wait(10)
        plots = driver.find_elements(By.CSS_SELECTOR, ".js-plotly-plot .main-svg")
        n_figs = len(driver.find_elements(By.CSS_SELECTOR, "div.fig"))
        assert (
            n_figs >= 5
            and len(
                {
                    p.find_element(
                        By.XPATH, "./ancestor::div[@class='fig' or contains(@class,'fig')]"
                    ).get_attribute("id")
                    for p in plots
                }
            )
            == n_figs
        )
        with pytest.raises(NoAlertPresentException):
            driver.switch_to.alert.text  # noqa: B018  the column name did not run as a script
        body = driver.find_element(By.TAG_NAME, "body").text
        assert XSS in body  # shown as text
        assert "<b>bold</b>" in body
        severe = [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]
        assert severe == [], severe
        # the top: a verdict per model, in plain sentences with intervals, and its thresholds
        verdict = driver.find_element(By.ID, "verdict")
        assert verdict.location["y"] < 900  # near the top, before the tables
        boxes = driver.find_elements(By.CSS_SELECTOR, "div.verdict")
        assert len(boxes) >= 3 and "baseline" in boxes[0].text
        assert "AUC" in boxes[0].text and "[" in boxes[0].text
        assert "rule of thumb" in driver.find_element(By.TAG_NAME, "body").text
        toc = driver.find_elements(By.CSS_SELECTOR, "nav.toc a")
        assert {"Verdict", "Glossary"} <= {a.text for a in toc}
        # one model section: collapsible, with its figures drawn, and it collapses
        section = driver.find_element(By.CSS_SELECTOR, "details.model")
        assert section.get_attribute("open") is not None
        assert section.find_elements(By.CSS_SELECTOR, ".js-plotly-plot .main-svg")
        section.find_element(By.TAG_NAME, "summary").click()
        assert section.get_attribute("open") is None
        # the trade-off view: non-private models named as such, chance and majority-rate lines
        trade = driver.find_element(By.XPATH, "//div[@id='tradeoff']/following-sibling::div[1]")
        text = trade.text
        assert "non-private" in text and "chance" in text and "epsilon -1" not in text
        assert "majority rate" in text
        terms = driver.find_elements(By.XPATH, "//h2[@id='glossary']/following-sibling::dl[1]/dt")
        assert {"AUC", "GPR", "TPR@1%FPR", "constant predictor"} <= {t.text for t in terms}
    finally:
        driver.quit()


def test_report_says_what_epsilon_covers_for_dp_models_only(hostile_report):
    path, result = hostile_report
    html = path.read_text()
    assert html.count("Epsilon covers:") == sum(m["epsilon"] is not None for m in result.results["models"].values()) > 0
    assert "preprocessing fitted on private rows" in html
