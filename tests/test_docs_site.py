"""The documentation site: `mkdocs build --strict` succeeds (warnings are errors), and the built
site opens in a real headless Chromium with every image loaded.

The build needs the `docs` extra (part of the `test` extra). The browser test needs Chromium and
its driver from Debian's packages (`apt-get install chromium chromium-driver`, done by .ci/run) and
selenium; it is skipped, with the reason, when they are missing. Screenshots of the pages it opens
are saved in build/screenshots/.
"""

from __future__ import annotations

import functools
import http.server
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCREENSHOTS = ROOT / "build" / "screenshots"
CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--window-size=1280,1000")
PAGES = {  # screenshot name -> page of the site, and a text the page must show
    "landing": ("", "hdetach-np"),
    "notebook": ("notebooks/01_lstm_forward_backward/", "The LSTM forward and backward pass"),
    "api": ("api/core/", "lstm_forward"),
}


def _missing_docs_packages() -> list[str]:
    missing = []
    for module in ("mkdocs", "material", "mkdocstrings_handlers.python", "mkdocs_jupyter"):
        try:
            __import__(module)
        except ImportError:
            missing.append(module)
    return missing


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    missing = _missing_docs_packages()
    if missing:
        pytest.skip(f"the docs build needs {', '.join(missing)}: pip install -e \".[docs]\"")
    out = tmp_path_factory.mktemp("docs") / "site"
    proc = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(out)],
                          cwd=ROOT, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "NO_MKDOCS_2_WARNING": "1"})
    assert proc.returncode == 0, f"mkdocs build --strict failed:\n{proc.stdout}\n{proc.stderr}"
    return out


def test_site_has_landing_page_notebooks_and_api(site):
    index = (site / "index.html").read_text(encoding="utf-8")
    assert re.search(r'<img[^>]+src="[^"]*figures/[^"]+\.png"', index), "the landing page is README.md with its figures"
    assert 'src="docs/' not in index and 'href="docs/' not in index, "README's links are rewritten for the site"
    for nb in sorted((ROOT / "notebooks").glob("*.ipynb")):
        page = site / "notebooks" / nb.stem / "index.html"
        assert page.is_file(), f"no page for {nb.name}"
        assert "data:image/png;base64" in page.read_text(encoding="utf-8") or nb.stem.startswith("05"), \
            f"{nb.name} is rendered without its committed figures"
    for name in ("core", "paths", "training", "teaching", "cli"):
        assert (site / "api" / name / "index.html").is_file()
    assert "lstm_step_backward" in (site / "api" / "core" / "index.html").read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def server(site):
    handler = functools.partial(_QuietHandler, directory=str(site))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/"
    httpd.shutdown()
    httpd.server_close()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args):  # noqa: A002 (the base class's signature)
        pass


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        pytest.skip("selenium is not installed (it is in the test extra)")
    for path in (CHROMIUM, CHROMEDRIVER):
        if not path.exists():
            pytest.skip(f"no {path}: install Debian's chromium and chromium-driver "
                        "(apt-get install -y chromium chromium-driver)")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    profile = tmp_path_factory.mktemp("chromium-profile")
    options.add_argument(f"--user-data-dir={profile}")
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    driver.set_page_load_timeout(60)
    yield driver
    driver.quit()
    shutil.rmtree(profile, ignore_errors=True)


IMAGES_JS = "return Array.from(document.images).map(i => [i.currentSrc.slice(0, 80), i.complete, i.naturalWidth]);"


@pytest.mark.parametrize("name", list(PAGES))
def test_page_opens_in_chromium_with_every_image_loaded(name, server, browser):
    page, text = PAGES[name]
    browser.get(server + page)
    deadline = time.monotonic() + 30
    images = browser.execute_script(IMAGES_JS)
    while not all(complete for _, complete, _ in images) and time.monotonic() < deadline:
        time.sleep(0.2)
        images = browser.execute_script(IMAGES_JS)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    shot = SCREENSHOTS / f"{name}.png"
    assert browser.save_screenshot(str(shot)), f"could not save {shot}"
    assert text in browser.page_source, f"{page or 'the landing page'} does not show {text!r}"
    broken = [src for src, complete, width in images if not (complete and width > 0)]
    assert not broken, f"{page or 'the landing page'}: images that did not load: {broken}"
    if name != "api":
        assert images, f"{page or 'the landing page'} shows no image"
