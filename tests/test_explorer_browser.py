"""Notebook 07 in a real browser: JupyterLab (free port, a token) and headless Chromium (selenium) open the
notebook, run it, change v and see the readout change; the layout holds (control column, slider width) and a
screenshot is written. Skips where no browser exists, except in CI (CI=true), where it must run."""
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from lutnb.files import repo_root

pytestmark = pytest.mark.slow
CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def _need(ok: bool, reason: str) -> None:
    if not ok:
        if CI:
            pytest.fail(f"{reason} (CI=true: the browser test must run; .ci/run installs chromium and selenium)")
        pytest.skip(reason)


def _browser_paths():
    chrome = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    driver = shutil.which("chromedriver")
    return chrome, driver


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def lab(tmp_path):
    """A JupyterLab server on a copy of notebook 07 (autosave never touches the committed one), with results
    (toy accuracy records) in a temporary folder."""
    from conftest import seed_proxy_results

    root = tmp_path / "lab"
    (root / "notebooks").mkdir(parents=True)
    shutil.copy(repo_root() / "notebooks" / "07_interactive_explorer.ipynb", root / "notebooks")
    res = tmp_path / "results"
    seed_proxy_results(res)
    port, token = _free_port(), secrets.token_hex(16)
    # the notebook runs interactively (SMOKE = False: a FULL run), so its reference JSON is redirected too
    env = dict(os.environ, LUTNB_RESULTS=str(res), LUTNB_FIGURES=str(tmp_path / "figures"),
               LUTNB_REFERENCE=str(tmp_path / "reference_results"), JUPYTER_RUNTIME_DIR=str(tmp_path / "runtime"))
    cmd = [sys.executable, "-m", "jupyterlab", "--no-browser", f"--port={port}", "--ip=127.0.0.1",
           f"--ServerApp.token={token}", f"--ServerApp.root_dir={root}", "--allow-root",
           "--LabApp.expose_app_in_browser=True", "--ServerApp.disable_check_xsrf=True"]
    log = open(tmp_path / "lab.log", "w")
    proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(120):
            try:
                urllib.request.urlopen(f"{url}/api/status?token={token}", timeout=2)
                break
            except OSError:
                time.sleep(0.5)
        else:
            pytest.fail(f"JupyterLab did not answer on {url}: {(tmp_path / 'lab.log').read_text()[-2000:]}")
        yield url, token
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def _readout(driver) -> str:
    for el in driver.find_elements("css selector", ".widget-html-content"):
        if "bits per activation" in el.text:
            return el.text
    return ""


def _bits(text: str) -> str:
    for line in text.splitlines():
        if line.startswith("bits per activation"):
            return line.split()[-1]
    return ""


def test_notebook_07_responds_in_headless_chromium(lab, tmp_path):
    chrome, driver_path = _browser_paths()
    _need(bool(chrome and driver_path), "no Chromium/chromedriver on PATH (apt-get install chromium chromium-driver)")
    try:
        from selenium import webdriver
        from selenium.webdriver.support.ui import Select, WebDriverWait
    except ImportError:
        _need(False, "selenium is not installed (pip install -e '.[dev]')")
    url, token = lab
    opts = webdriver.ChromeOptions()
    opts.binary_location = chrome
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1400,1100"):
        opts.add_argument(arg)
    driver = webdriver.Chrome(options=opts, service=webdriver.ChromeService(executable_path=driver_path))
    try:
        driver.get(f"{url}/lab/tree/notebooks/07_interactive_explorer.ipynb?token={token}")
        wait = WebDriverWait(driver, 240, poll_frequency=0.5)  # generous: CI runs it beside other tests
        wait.until(lambda d: d.execute_script(
            "const a = window.jupyterapp; return !!(a && a.shell.currentWidget && a.shell.currentWidget.sessionContext"
            " && a.shell.currentWidget.sessionContext.session && a.shell.currentWidget.sessionContext.session.kernel)"))
        driver.execute_script("window.jupyterapp.commands.execute('notebook:run-all-cells')")
        wait.until(lambda d: _bits(_readout(d)) != "")
        before = _readout(driver)
        assert _bits(before) == "1.000"                   # v=4, c=16: log2(16)/4
        v_select = next(s for s in driver.find_elements("css selector", ".widget-dropdown")
                        if "v (sub-vector)" in s.text)
        Select(v_select.find_element("tag name", "select")).select_by_visible_text("2")
        wait.until(lambda d: _bits(_readout(d)) == "2.000")  # log2(16)/2
        after = _readout(driver)
        assert after != before
        # layout: the control column keeps its width; the table-bits slider is as wide as the pickers
        slider = next(s for s in driver.find_elements("css selector", ".widget-slider") if "table bits" in s.text)
        assert slider.size["width"] >= 400, slider.size
        assert v_select.size["width"] >= 400, v_select.size
        shot = tmp_path / "explorer.png"
        driver.save_screenshot(str(shot))
        assert shot.stat().st_size > 10_000 and Path(shot).read_bytes()[:4] == b"\x89PNG"
    finally:
        driver.quit()
