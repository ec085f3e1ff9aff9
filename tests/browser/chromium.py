"""Starting the headless Chromium that the browser tests and the console screenshots use."""

from __future__ import annotations

from pathlib import Path

from selenium import webdriver
from selenium.webdriver.chrome.service import Service

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
INSTALL = "apt-get install chromium chromium-driver"
WINDOW = (1280, 900)


def missing() -> list[str]:
    """The paths of Chromium and chromedriver that are not installed (none: ready)."""
    return [str(path) for path in (CHROMIUM, CHROMEDRIVER) if not path.exists()]


def start_chromium() -> webdriver.Chrome:
    """A new headless Chromium with a fresh profile, driven through chromedriver; the
    caller quits it. Its console messages are kept (``get_log("browser")``); every wait
    is explicit (no implicit wait)."""
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for argument in (
        "--headless=new",
        "--no-sandbox",  # the tests run as root, where Chromium's sandbox refuses to start
        "--disable-dev-shm-usage",  # containers' /dev/shm is small
        f"--window-size={WINDOW[0]},{WINDOW[1]}",
    ):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(executable_path=str(CHROMEDRIVER)))
    driver.implicitly_wait(0)
    return driver
