"""Take docs/explorer.png: the market explorer in headless Chromium at 1280 x 800.

Run from the repository root (needs the ``explore`` extra, selenium, and Debian's
``chromium`` and ``chromium-driver``)::

    .venv/bin/python docs/explorer_screenshot.py      # writes docs/explorer.png

It starts ``ipfl explore`` on a free port, loads the ``roles`` preset (the paper's
inclusive market cut to 8 clients), moves the step-through to its second candidate
and saves the window as it is, unscrolled: what a newcomer sees first. The server is
stopped by its PID; the file is written atomically.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "docs" / "explorer.png"
WINDOW = (1280, 800)


def main() -> None:
    """Start the server, drive the page, write the screenshot."""
    sys.path.insert(0, str(ROOT))
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    from atomicio import atomic_write_bytes

    os.environ["SE_OFFLINE"] = "true"  # Selenium Manager must never download a browser
    proc = subprocess.Popen(
        [sys.executable, "-m", "ipfl.cli", "explore", "--port", "0", "--no-browser"],
        cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, stderr=subprocess.PIPE,
        text=True)
    driver = None
    try:
        hit = re.search(r"(http://127\.0\.0\.1:\d+/)", proc.stderr.readline())
        if not hit:
            raise SystemExit("explorer_screenshot: the server printed no URL")
        opts = Options()
        opts.binary_location = shutil.which("chromium") or "/usr/bin/chromium"
        for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                    "--hide-scrollbars", f"--window-size={WINDOW[0]},{WINDOW[1]}"):
            opts.add_argument(arg)
        driver = webdriver.Chrome(
            service=Service(shutil.which("chromedriver") or "/usr/bin/chromedriver"),
            options=opts)
        wait = WebDriverWait(driver, 30, poll_frequency=0.1)

        def version() -> int:
            return int(driver.find_element(By.ID, "status").get_attribute("data-version"))

        driver.get(hit.group(1))
        wait.until(lambda d: version() >= 1)
        before = version()
        driver.find_element(By.ID, "preset-roles").click()
        wait.until(lambda d: version() > before)
        driver.find_element(By.ID, "step-next").click()
        wait.until(lambda d: d.find_element(By.ID, "step-card").get_attribute("data-step") == "1")
        atomic_write_bytes(OUT, driver.get_screenshot_as_png())
        print(f"wrote {OUT.relative_to(ROOT)}")
    finally:
        if driver is not None:
            driver.quit()
        os.kill(proc.pid, signal.SIGTERM)
        proc.wait(timeout=20)


if __name__ == "__main__":
    main()
