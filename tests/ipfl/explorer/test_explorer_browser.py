"""The explorer page in a real headless browser (Debian's chromium + chromedriver, Selenium).

Starts ``ipfl explore`` as a subprocess on a free port, loads the page, changes
one client's cost and checks that the graph and payments drawn equal the
mechanism's; then feeds bad input and checks the mechanism's own message
appears beside the field while the server lives on. The server is stopped by
its PID. Skipped when chromium is missing, unless ``IPFL_REQUIRE_BROWSER=1``
(set by ``.ci/run``, which installs it), so CI always runs it.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from mechanism import exact_graph, greedy_graph, payments, utilities
from mechanism.market_dict import market_from_dict

ROOT = Path(__file__).resolve().parents[3]
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
HAVE_BROWSER = Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()

if not HAVE_BROWSER and os.environ.get("IPFL_REQUIRE_BROWSER") != "1":
    pytest.skip("Debian's chromium/chromium-driver are not installed (.ci/run installs them)",
                allow_module_level=True)

webdriver = pytest.importorskip("selenium.webdriver")
from selenium.webdriver.chrome.options import Options  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def server():
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "ipfl.cli", "explore", "--port", "0", "--no-browser",
         "--file", str(ROOT / "examples" / "market.json")],
        cwd=ROOT, env=env, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stderr.readline()
        hit = re.search(r"(http://127\.0\.0\.1:\d+/)", line)
        assert hit, f"no URL in the server's first line: {line!r}"
        yield proc, hit.group(1)
    finally:
        os.kill(proc.pid, signal.SIGTERM)
        proc.wait(timeout=20)


@pytest.fixture(scope="module")
def browser():
    os.environ["SE_OFFLINE"] = "true"  # Selenium Manager must never download a browser
    opts = Options()
    opts.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                "--window-size=1400,1200"):
        opts.add_argument(arg)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)
    driver.set_page_load_timeout(30)
    yield driver
    driver.quit()


def _version(driver) -> int:
    return int(driver.find_element(By.ID, "status").get_attribute("data-version"))


def _computed_from(driver) -> dict:
    return json.loads(driver.find_element(By.ID, "status").get_attribute("data-form"))["market"]


def _type(driver, field_id: str, text: str) -> None:
    box = driver.find_element(By.ID, field_id)
    box.clear()
    box.send_keys(text)


def _wait(driver, predicate, timeout=30):
    return WebDriverWait(driver, timeout, poll_frequency=0.1).until(lambda d: predicate(d))


def test_page_matches_the_mechanism_after_an_edit(server, browser):
    proc, url = server
    browser.get(url)
    _wait(browser, lambda d: _version(d) >= 1)
    before = _version(browser)
    _type(browser, "c-1", "0.5")
    _wait(browser, lambda d: _version(d) > before and _computed_from(d)["clients"][1]["c"] == "0.5"
          and "computed" in d.find_element(By.ID, "status").text)
    doc = json.loads((ROOT / "examples" / "market.json").read_text())
    doc["clients"][1]["c"] = 0.5
    mk = market_from_dict(doc)
    for tag, A in (("greedy", greedy_graph(mk)), ("exact", exact_graph(mk,
                                                                       solver="bruteforce").A)):
        shown = {tuple(map(int, e.get_attribute("data-edge").split("-")))
                 for e in browser.find_elements(By.CSS_SELECTOR, f"#graph-{tag} line[data-edge]")}
        assert shown == {(int(i), int(j)) for i, j in zip(*np.nonzero(A), strict=True)}
        p = [float(td.get_attribute(f"data-{tag}-p"))
             for td in browser.find_elements(By.CSS_SELECTOR, f"td[data-{tag}-p]")]
        U = [float(td.get_attribute(f"data-{tag}-u"))
             for td in browser.find_elements(By.CSS_SELECTOR, f"td[data-{tag}-u]")]
        np.testing.assert_allclose(p, payments(mk, A).p, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(U, utilities(mk, A), rtol=1e-12, atol=1e-12)
    assert (greedy_graph(mk) != greedy_graph(market_from_dict(
        json.loads((ROOT / "examples" / "market.json").read_text())))).any(), \
        "the edit should change the graph, or this test shows nothing"
    steps = browser.find_elements(By.CSS_SELECTOR, "#trace tr[data-j]")
    assert len(steps) == mk.m - 1
    assert proc.poll() is None


@pytest.mark.parametrize("field, text, message", [
    ("N-0", "-5", "clients[0].N = -5.0 must be finite and > 0"),
    ("c-2", "abc", "clients[2].c = 'abc' is not a number"),
    ("lam", "-1", "lam = -1.0 must be finite and >= 0"),
])
def test_bad_input_shows_the_mechanisms_message_beside_the_field(server, browser, field, text,
                                                                   message):
    proc, url = server
    browser.get(url)
    _wait(browser, lambda d: _version(d) >= 1)
    good = browser.find_element(By.ID, field).get_attribute("value")
    _type(browser, field, text)
    _wait(browser, lambda d: d.find_element(By.ID, f"err-{field}").text == message)
    assert "bad" in browser.find_element(By.ID, field).get_attribute("class")
    before = _version(browser)
    _type(browser, field, good)
    _wait(browser, lambda d: _version(d) > before)
    assert browser.find_element(By.ID, f"err-{field}").text == ""
    assert proc.poll() is None


def test_more_than_eight_clients_is_refused_and_the_server_lives_on(server, browser):
    proc, url = server
    browser.get(url)
    _wait(browser, lambda d: _version(d) >= 1)
    for _ in range(4):  # 5 -> 9 clients
        browser.find_element(By.ID, "add").click()
    _wait(browser, lambda d: "the explorer takes 2-8 clients, got 9"
          in d.find_element(By.ID, "err-clients").text)
    before = _version(browser)
    browser.find_element(By.ID, "remove").click()
    _wait(browser, lambda d: _version(d) > before)
    assert len(browser.find_elements(By.CSS_SELECTOR, "#payments tr[data-client]")) == 8
    assert proc.poll() is None
