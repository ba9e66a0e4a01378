"""The explorer page in a real headless browser (Debian's chromium + chromedriver, Selenium).

Starts ``ipfl explore`` as a subprocess on a free port, loads the page, changes
one client's cost and checks that the graph and payments drawn equal the
mechanism's; then feeds bad input and checks the mechanism's own message
appears beside the field while the server lives on. Drags a slider with real
pointer events (and moves one with arrow keys) and checks that the page
recomputes while the slider is held, that graph and payments change to the
mechanism's, and that the slider keeps the focus; loads each preset; walks the
Algorithm 2 step-through; checks graphs and payments sit above the fold in a
1280 x 800 window. The server is stopped by its PID. Skipped when chromium is
missing, unless ``IPFL_REQUIRE_BROWSER=1`` (set by ``.ci/run``, which installs
it), so CI always runs it.
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

from ipfl.explorer.compute import step_through
from ipfl.explorer.presets import presets
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
from selenium.webdriver.common.action_chains import ActionChains  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.common.keys import Keys  # noqa: E402
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
                "--window-size=1280,800"):
        opts.add_argument(arg)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)
    driver.set_page_load_timeout(30)
    yield driver
    driver.quit()


def _computed_from_form(driver) -> dict:
    return json.loads(driver.find_element(By.ID, "status").get_attribute("data-form"))


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


def _seen_market(form: dict):
    """The market the mechanism saw for a form the page sent (the liar's report applied)."""
    mk = market_from_dict(form["market"])
    if form.get("liar"):
        i = int(form["liar"]["client"])
        mk = mk.with_report(i, N=float(form["liar"]["N"]) * mk.N[i])
    return mk


def _shown_edges(driver, tag: str) -> set[tuple[int, int]]:
    return {tuple(map(int, e.get_attribute("data-edge").split("-")))
            for e in driver.find_elements(By.CSS_SELECTOR, f"#graph-{tag} line[data-edge]")}


def _shown_p(driver, tag: str) -> list[float]:
    return [float(td.get_attribute(f"data-{tag}-p"))
            for td in driver.find_elements(By.CSS_SELECTOR, f"td[data-{tag}-p]")]


def _assert_page_is_the_mechanism(driver) -> None:
    """The drawn greedy graph and both payment columns equal the mechanism's for the form."""
    form = json.loads(driver.find_element(By.ID, "status").get_attribute("data-form"))
    mk = _seen_market(form)
    A = greedy_graph(mk, form["variant"])
    assert _shown_edges(driver, "greedy") == {(int(i), int(j)) for i, j in zip(*np.nonzero(A),
                                                                             strict=True)}
    np.testing.assert_allclose(_shown_p(driver, "greedy"), payments(mk, A).p, rtol=1e-12,
                               atol=1e-12)
    opt = exact_graph(mk, solver="bruteforce").A
    np.testing.assert_allclose(_shown_p(driver, "exact"), payments(mk, opt).p, rtol=1e-12,
                               atol=1e-12)


def _load_preset(driver, url: str, name: str) -> dict:
    preset = next(p for p in presets() if p["name"] == name)
    driver.get(url)
    _wait(driver, lambda d: _version(d) >= 1)
    before = _version(driver)
    driver.find_element(By.ID, f"preset-{name}").click()
    want = [str(cl["N"]) for cl in preset["market"]["clients"]]
    _wait(driver, lambda d: _version(d) > before
          and [c["N"] for c in _computed_from(d)["clients"]] == want)
    return preset


def _focused(driver) -> str:
    return driver.switch_to.active_element.get_attribute("id")


#: records, at each recompute the page draws, whether a mouse button is down, what has the
#: focus, lambda's field and the greedy graph's edge count (a drag is one action chain, so
#: the test can only look afterwards)
RECORDER = """
window.__drawn = []; let down = false;
document.addEventListener("pointerdown", () => { down = true; }, true);
document.addEventListener("pointerup", () => { down = false; }, true);
const status = document.getElementById("status");
new MutationObserver(() => window.__drawn.push({
  version: +status.dataset.version, down: down, focus: document.activeElement.id,
  lam: JSON.parse(status.dataset.form).market.lam,
  edges: document.querySelectorAll("#graph-greedy line[data-edge]").length,
})).observe(status, {attributes: true, attributeFilter: ["data-version"]});
"""


def test_dragging_lambda_recomputes_while_held_and_keeps_the_focus(server, browser):
    """Real pointer drag on the lambda slider of the attacker preset, from 1.5 down to 0."""
    proc, url = server
    _load_preset(browser, url, "attacker")
    before_edges, before_p = _shown_edges(browser, "greedy"), _shown_p(browser, "greedy")
    assert not any(j == 4 for _, j in before_edges)  # nobody imports the attacker at lambda 1
    browser.execute_script(RECORDER)
    slider = browser.find_element(By.ID, "lam-range")
    # Execute: press on the slider's middle (lambda 1.5), drag left in steps, pausing while held
    (ActionChains(browser).click_and_hold(slider).pause(1.0)
     .move_by_offset(-30, 0).pause(1.0).move_by_offset(-30, 0).pause(1.0)
     .move_by_offset(-90, 0).pause(1.0).release().perform())
    _wait(browser, lambda d: _computed_from(d)["lam"] == d.find_element(By.ID, "lam")
          .get_attribute("value") and "computed" in d.find_element(By.ID, "status").text)
    # Assert: pictures were drawn while the button was down, for several lambdas, the slider
    # kept the focus throughout, and the last picture is the mechanism's for lambda = 0
    drawn = browser.execute_script("return window.__drawn")
    held = [x for x in drawn if x["down"]]
    assert len({x["lam"] for x in held}) >= 3, drawn
    assert all(x["focus"] == "lam-range" for x in drawn), drawn
    assert browser.find_element(By.ID, "lam").get_attribute("value") == "0"
    assert _focused(browser) == "lam-range"
    _assert_page_is_the_mechanism(browser)
    after_edges = _shown_edges(browser, "greedy")
    assert {(i, 4) for i in range(4)} <= after_edges != before_edges
    assert _shown_p(browser, "greedy") != before_p
    assert len({x["edges"] for x in drawn}) >= 2  # the graph changed during the drag
    assert proc.poll() is None


def test_arrow_keys_on_a_cost_slider_recompute_and_keep_the_focus(server, browser):
    proc, url = server
    browser.get(url)
    _wait(browser, lambda d: _version(d) >= 1)
    before_p = _shown_p(browser, "greedy")
    slider = browser.find_element(By.ID, "c-1-range")
    browser.execute_script("arguments[0].focus()", slider)
    for _ in range(40):  # c_1 = 0.10 -> 0.50, one hundredth a key
        slider.send_keys(Keys.ARROW_RIGHT)
    assert browser.find_element(By.ID, "c-1").get_attribute("value") == "0.5"
    _wait(browser, lambda d: _computed_from(d)["clients"][1]["c"] == "0.5"
          and "computed" in d.find_element(By.ID, "status").text)
    assert _focused(browser) == "c-1-range"
    _assert_page_is_the_mechanism(browser)
    assert _shown_p(browser, "greedy") != before_p
    # a number typed in the field moves the slider (and recomputes on input)
    _type(browser, "c-1", "inf")
    assert browser.find_element(By.ID, "c-1-range").get_attribute("value") == "201"
    _wait(browser, lambda d: _computed_from(d)["clients"][1]["c"] == "inf")
    assert proc.poll() is None


@pytest.mark.parametrize("name", ["roles", "liar", "attacker"])
def test_each_preset_loads_and_is_the_mechanism(server, browser, name):
    proc, url = server
    preset = _load_preset(browser, url, name)
    _assert_page_is_the_mechanism(browser)
    rows = browser.find_elements(By.CSS_SELECTOR, "#payments tr[data-client]")
    assert len(rows) == len(preset["market"]["clients"])
    assert browser.find_element(By.ID, "what").text == preset["what"]
    pays = browser.find_elements(By.CSS_SELECTOR, "#liar-box [data-liar-pays]")
    assert len(pays) == (preset["liar"] is not None)
    if pays:
        form = _computed_from(browser)
        true = market_from_dict(form)
        res_lie = greedy_graph(true.with_report(0, N=10 * true.N[0]))
        from proofs_checks import liar_utility
        lying = liar_utility(true, true.with_report(0, N=10 * true.N[0]), 0, res_lie)["U"]
        truthful = utilities(true, greedy_graph(true))[0]
        assert pays[0].get_attribute("data-liar-pays") == str(lying > truthful).lower()
    assert proc.poll() is None


def test_step_through_walks_algorithm_2_for_the_chosen_client(server, browser):
    proc, url = server
    _load_preset(browser, url, "roles")
    for client in (0, 3):
        if client:
            browser.find_element(By.CSS_SELECTOR, f"#client option[value='{client}']").click()
            _wait(browser, lambda d, c=client: _computed_from_form(d)["client"] == str(c))
        frames = step_through(_seen_market(json.loads(browser.find_element(
            By.ID, "status").get_attribute("data-form"))), client)
        for k, f in enumerate(frames):
            if k:
                browser.find_element(By.ID, "step-next").click()
            card = browser.find_element(By.ID, "step-card")
            assert card.get_attribute("data-step") == str(k)
            assert card.get_attribute("data-j") == str(f["j"])
            assert browser.find_element(By.ID, "step-test").text == f["test"]
            assert browser.find_element(By.ID, "step-price").text == f["price"]
            cand = browser.find_element(By.CSS_SELECTOR, "#graph-greedy line[data-candidate]")
            assert cand.get_attribute("data-candidate") == f"{client}-{f['j']}"
            assert cand.get_attribute("data-action") == f["action"]
            cur = browser.find_element(By.CSS_SELECTOR, "#trace tr.current")
            assert cur.get_attribute("data-j") == str(f["j"])
        browser.find_element(By.ID, "step-next").click()  # stays on the last candidate
        assert browser.find_element(By.ID, "step-card").get_attribute("data-step") == str(
            len(frames) - 1)
        browser.find_element(By.ID, "step-first").click()
        assert browser.find_element(By.ID, "step-card").get_attribute("data-step") == "0"
        # the keyboard on the buttons: End, then one to the left
        browser.find_element(By.ID, "step-first").send_keys(Keys.END, Keys.ARROW_LEFT)
        assert browser.find_element(By.ID, "step-card").get_attribute("data-step") == str(
            max(len(frames) - 2, 0))
    assert proc.poll() is None


def test_graphs_and_payments_are_above_the_fold_at_1280x800(server, browser):
    """The largest market (8 clients, the roles preset) in a 1280 x 800 window, unscrolled."""
    proc, url = server
    _load_preset(browser, url, "roles")
    browser.execute_script("window.scrollTo(0, 0)")
    W, H = browser.execute_script("return [window.innerWidth, window.innerHeight]")
    assert W <= 1280 and H <= 800
    for box in ("graph-greedy", "graph-exact", "payments", "lam-range", "N-7-range"):
        r = browser.execute_script("const r = document.getElementById(arguments[0])"
                                   ".getBoundingClientRect(); return [r.left, r.top, r.right,"
                                   " r.bottom]", box)
        assert r[0] >= 0 and r[1] >= 0 and r[2] <= W and r[3] <= H, (box, r, (W, H))
    assert browser.execute_script("return document.documentElement.scrollWidth") <= W
