"""`convcalc report -o net.html` in a real browser: headless Chromium loads the page, a click on a unit
draws its region and support, read back from the DOM and compared with `convcalc rf --unit` JSON.

Skips cleanly without chromium, chromedriver or selenium (`.ci/run` installs Debian's chromium and
chromium-driver). A screenshot goes to pytest's tmp dir (not committed).
"""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from cli.main import app

runner = CliRunner()

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DRIVER = shutil.which("chromedriver")

FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed")
    if CHROMIUM is None or DRIVER is None:
        pytest.skip("chromium or chromedriver is not installed (apt-get install chromium chromium-driver)")
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in FLAGS:
        options.add_argument(flag)
    profile = tempfile.mkdtemp(prefix="convcalc-chromium-")
    options.add_argument(f"--user-data-dir={profile}")
    options.add_argument("--window-size=1200,1600")
    driver = webdriver.Chrome(options=options, service=Service(DRIVER))
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def page(tmp_path: Path, stack: str, *args: str) -> Path:
    out = tmp_path / "net.html"
    result = runner.invoke(app, ["report", stack, "-o", str(out), *args], prog_name="convcalc")
    assert result.exit_code == 0, result.output
    return out


def unit_json(stack: str, unit: str, layer: str) -> dict[str, Any]:
    result = runner.invoke(app, ["rf", stack, "--unit", unit, "--layer", layer, "--format", "json"])
    assert result.exit_code == 0, result.output
    return dict(json.loads(result.stdout)["unit"])


def click(driver: Any, index: str) -> dict[str, Any]:
    from selenium.webdriver.common.by import By

    driver.find_element(By.CSS_SELECTOR, f'rect.unit[data-index="{index}"]').click()
    read = driver.find_element(By.ID, "readout")
    region = driver.find_element(By.ID, "region")
    support = driver.find_element(By.ID, "support")
    return {
        "unit": read.get_attribute("data-unit"),
        "region": json.loads(region.get_attribute("data-interval") or "null"),
        "support": json.loads(support.get_attribute("data-interval") or "null"),
        # The drawn rectangle, in input pixels: must be the support box.
        "box": [float(support.get_attribute(k) or "nan") for k in ("x", "y", "width", "height")],
        "text": read.text,
    }


@pytest.mark.parametrize(
    ("stack", "layer", "units"),
    [
        # Unit 0,12: the region reaches into the padding ([-6, 6] along H), the support does not.
        ("configs/seed_dilation.yaml", "d3", ["0,12", "15,15", "31,0"]),
        # A residual network with strides: border and interior units of a stride-8 layer.
        ("resnet18", "layer2.1.relu", ["0,0", "13,13", "27,5"]),
    ],
)
def test_clicking_a_unit_shows_its_region_and_support(
    browser: Any, tmp_path: Path, stack: str, layer: str, units: list[str]
) -> None:
    html = page(tmp_path, stack, "--layer", layer)
    text = html.read_text(encoding="utf-8")
    assert "http://" not in text.replace("http://www.w3.org/2000/svg", "")
    assert "https://" not in text
    assert "<script src" not in text
    assert "<link" not in text
    browser.get(html.as_uri())
    for unit in units:
        shown = click(browser, unit)
        expected = unit_json(stack, unit, layer)
        assert shown["unit"] == unit
        assert shown["region"] == expected["region"]
        assert shown["support"] == expected["support"]
        (h0, h1), (w0, w1) = expected["support"]
        assert shown["box"] == [w0, h0, w1 - w0 + 1, h1 - h0 + 1]
        assert f"support H [{h0}, {h1}]  W [{w0}, {w1}]" in shown["text"]
    browser.save_screenshot(str(tmp_path / "report.png"))
    assert (tmp_path / "report.png").stat().st_size > 0


def test_path_counts_on_the_page_equal_coverage(browser: Any, tmp_path: Path) -> None:
    # Three 3×3 convs with dilation 2: along each axis the centre unit's counts are 1 0 3 0 6 0 7 0 6 0 3 0 1
    # (the trinomial coefficients of (1 + x² + x⁴)³), from input position 9.
    from selenium.webdriver.common.by import By

    stack = tmp_path / "gridding.yaml"
    stack.write_text(
        "input: [1, 32, 32]\nlayers:\n" + "  - {op: conv, kernel: 3, dilation: 2, padding: 2}\n" * 3, encoding="utf-8"
    )
    browser.get(page(tmp_path, str(stack)).as_uri())
    click(browser, "15,15")
    bars = browser.find_elements(By.CSS_SELECTOR, 'rect.count[data-axis="1"]')
    got = {int(b.get_attribute("data-pos")): int(b.get_attribute("data-count")) for b in bars}
    assert [got[p] for p in range(9, 22)] == [1, 0, 3, 0, 6, 0, 7, 0, 6, 0, 3, 0, 1]
