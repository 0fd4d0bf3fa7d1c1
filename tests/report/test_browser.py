"""The HTML report in a real browser: headless Chromium opens the file (no network needed)
and every chart has drawn its traces with the expected number of data points."""
import math
import shutil

import pytest

from aimc.report.charts import build_charts
from aimc.report.html import write_report
from aimc.report.run import load_run

from .conftest import sweep_rows, write_run

BROWSER = next((b for b in (shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome")) if b), None)
DRIVER = shutil.which("chromedriver")

pytestmark = pytest.mark.skipif(BROWSER is None or DRIVER is None,
                                reason="no headless browser: install Chromium and its driver "
                                       "(Debian: apt-get install chromium chromium-driver)")

# Per chart div: per trace the number of x values, and the SVG points drawn (markers, bars).
_JS = """
const out = {};
for (const d of document.querySelectorAll('.js-plotly-plot')) {
  const layers = d.querySelectorAll('.scatterlayer .trace, .barlayer .trace');
  out[d.id] = (d._fullData || []).map((t, i) => ({
    n: (t.x || []).length, type: t.type, mode: t.mode || '',
    drawn: layers[i] ? layers[i].querySelectorAll('.point').length : -1,
    line: layers[i] ? Array.from(layers[i].querySelectorAll('path.js-line')).map(p => p.getAttribute('d') || '').join('').length : 0}));
}
return out;
"""


@pytest.fixture(scope="module")
def driver():
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed (pip install selenium)")
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = BROWSER
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu", "--window-size=1200,900"):
        opts.add_argument(arg)
    drv = webdriver.Chrome(service=Service(DRIVER), options=opts)
    drv.set_page_load_timeout(120)
    yield drv
    drv.quit()


def _rendered(driver, page):
    from selenium.webdriver.support.ui import WebDriverWait

    driver.get(page.resolve().as_uri())
    WebDriverWait(driver, 60).until(lambda d: d.execute_script(
        "const p = document.querySelectorAll('.js-plotly-plot');"
        "return p.length > 0 && Array.from(p).every(x => x._fullData && x.querySelector('.main-svg'));"))
    return driver.execute_script(_JS)


def _check(run_dir, out, driver, threshold=None):
    charts = build_charts(load_run(run_dir), threshold)
    page = write_report(run_dir, out, png=False, threshold=threshold)[0]
    seen = _rendered(driver, page)
    assert set(seen) == {f"chart-{c.key}" for c in charts}
    for c in charts:
        got = seen[f"chart-{c.key}"]
        assert len(got) == len(c.traces), c.key
        for t, g in zip(c.traces, got):
            assert g["n"] == len(t.x) > 0, (c.key, t.name)
            finite = sum(1 for y in t.y if isinstance(y, (int, float)) and math.isfinite(y))
            if "markers" in t.mode or t.mode == "bar":
                assert g["drawn"] == finite, (c.key, t.name, g)
            else:
                assert g["line"] > 0, (c.key, t.name, g)  # a drawn line path
    return charts


def test_sweep_report_renders(sweep_run, tmp_path, driver):
    charts = _check(sweep_run, tmp_path / "out", driver)
    assert {"accuracy_vs_time", "accuracy_vs_adc_bits", "energy", "pareto"} <= {c.key for c in charts}


def test_yield_report_renders(tmp_path, driver):
    import numpy as np

    rng = np.random.default_rng(1)
    cols: dict[str, list] = {k: [] for k in ("point_id", "seed", "p.d0_per_cm2", "p.spare_cols", "m.alive",
                                             "m.accuracy", "m.dies_per_wafer", "m.wafer_cost_usd")}
    pid = 0
    for d0 in (0.1, 1.0, 10.0):
        for sp in (0, 8):
            for s in range(20):
                alive = rng.random() < np.exp(-0.04 * d0)
                acc = 0.97 - (0.0 if sp else 0.02 * d0 * rng.random()) if alive else float("nan")
                for k, v in zip(cols, (pid, s, d0, sp, float(alive), acc, 1600.0 - sp, 3984.0)):
                    cols[k].append(v)
            pid += 1
    charts = _check(write_run(tmp_path / "y", cols), tmp_path / "yo", driver, threshold=0.95)
    assert {"yield_vs_threshold", "yield_vs_d0", "cost_per_good_die"} <= {c.key for c in charts}
