"""The web pages: `nstcore serve` driven by a real browser, `run --web`, uploads, live state."""
from __future__ import annotations

import io
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image

from nstcore.errors import InputError
from conftest import CONTENT, STYLE

pytest.importorskip("starlette", reason="the web extra is not installed (pip install nstcore[web])")

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
CHROMEDRIVER = shutil.which("chromedriver")
NSTCORE = [sys.executable, "-m", "nstcore.cli"]


def _start(args: list[str], tmp_path: Path) -> tuple[subprocess.Popen, str]:
    """Start an nstcore command that serves a page; its process and the URL it printed."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    # Ctrl-C's default action in the child even when this process was started with SIGINT
    # ignored (as `&` in a shell without job control does), so the SIGINT the tests send stops it
    process = subprocess.Popen([*NSTCORE, *args], cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True,
                               preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        line = process.stderr.readline()
        if not line:
            break
        found = re.search(r"(http://127\.0\.0\.1:\d+/)", line)
        if found:
            return process, found.group(1)
    process.kill()
    raise AssertionError(f"no URL printed: {process.stderr.read()}")


def _get(url: str, timeout: float = 10) -> bytes:
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return response.read()


def _wait_for(predicate, timeout: float = 180, every: float = 0.5):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(every)
    raise AssertionError("timed out")


def _stylised(data: bytes, size: int) -> bool:
    """Whether a picture differs clearly from the content photo at that size."""
    picture = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"), np.float32)
    photo = np.asarray(Image.open(CONTENT).convert("RGB").resize((size, size)), np.float32)
    return picture.shape == photo.shape and np.abs(picture - photo).mean() > 4.0


@pytest.mark.skipif(CHROMIUM is None or CHROMEDRIVER is None,
                    reason="no Chromium and chromedriver installed (apt-get install chromium chromium-driver)")
def test_serve_in_a_real_browser_starts_a_run_shows_it_forming_and_downloads_it(tmp_path):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By

    downloads = tmp_path / "downloads"
    downloads.mkdir()
    process, url = _start(["serve", "--port", "0", "--out-dir", str(tmp_path / "out")], tmp_path)
    options = webdriver.ChromeOptions()
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1280,900"):
        options.add_argument(flag)
    options.binary_location = CHROMIUM
    options.add_experimental_option("prefs", {"download.default_directory": str(downloads),
                                              "download.prompt_for_download": False})
    browser = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    try:
        browser.get(url)
        # a file that is no image: refused on the page in one line, nothing started
        bad = tmp_path / "notes.png"
        bad.write_text("not a picture")
        browser.find_element(By.ID, "content").send_keys(str(bad))
        browser.find_element(By.ID, "styles").send_keys(str(STYLE))
        browser.find_element(By.ID, "go").click()
        error = _wait_for(lambda: browser.find_element(By.ID, "error").text, timeout=30)
        assert error == "the content image cannot be used: not an image file Pillow can read"
        assert browser.current_url == url

        browser.find_element(By.ID, "content").clear()
        browser.find_element(By.ID, "content").send_keys(str(CONTENT))
        for field, value in (("size", "48"), ("steps", "4"), ("optimizer", "adam")):
            element = browser.find_element(By.ID, field)
            if element.tag_name == "select":
                element.find_element(By.CSS_SELECTOR, f"option[value='{value}']").click()
            else:
                element.send_keys(value)
        browser.find_element(By.ID, "go").click()
        _wait_for(lambda: "/runs/" in browser.current_url, timeout=30)
        run_id = browser.current_url.rsplit("/", 1)[1]
        # the image element shows the picture (loaded, stylised) and the run finishes
        _wait_for(lambda: browser.execute_script(
            "const i = document.getElementById('picture'); return !i.hidden && i.complete"
            " && i.naturalWidth === 48"))
        _wait_for(lambda: browser.find_element(By.ID, "status").text == "finished")
        assert _stylised(_get(f"{url}api/runs/{run_id}/picture"), 48)
        assert browser.find_element(By.ID, "step").text == "4 / 4"
        assert "block5_conv2" not in browser.find_element(By.ID, "settings").text  # defaults shown
        assert "adam" in browser.find_element(By.ID, "settings").text
        # the download link gives the written PNG
        link = browser.find_element(By.ID, "download-link")
        assert link.is_displayed()
        link.click()
        saved = _wait_for(lambda: [p for p in downloads.glob("*.png")], timeout=30)[0]
        assert Image.open(saved).size == (48, 48)
        assert saved.read_bytes() == (tmp_path / "out" / f"{run_id}.png").read_bytes()
        shot = tmp_path / "page.png"
        browser.save_screenshot(str(shot))
        pixels = np.asarray(Image.open(shot).convert("L"), np.float32)
        assert pixels.std() > 10  # text, the picture and the chart: not a blank page
        # the start page lists the run with its settings, ready to run again with changes
        browser.get(url)
        _wait_for(lambda: "run again with changes" in browser.find_element(By.ID, "gallery").text)
    finally:
        browser.quit()
        process.send_signal(signal.SIGINT)
        process.wait(timeout=30)
    assert process.returncode == 0


def test_run_web_serves_the_run_and_stays_until_interrupted(tmp_path):
    out = tmp_path / "out.png"
    process, url = _start(["run", str(CONTENT), str(STYLE), "-o", str(out), "--size", "32",
                           "--steps", "3", "--web", "-q"], tmp_path)
    try:
        # / leads to the run's page; its API says what ran and how it ended
        with urllib.request.urlopen(url, timeout=10) as response:
            run_id = response.geturl().rsplit("/", 1)[1]
            assert b"<title>nstcore run</title>" in response.read()
        snapshot = _wait_for(lambda: (lambda s: s if s["status"] == "finished" else None)(
            json.loads(_get(f"{url}api/runs/{run_id}"))))
        assert snapshot["output"] == "out.png" and snapshot["inputs"] == ["content", "style1"]
        assert snapshot["settings"]["steps"] == 3
        events = _get(f"{url}api/runs/{run_id}/events", timeout=30).decode()
        assert events.count("event: step") == 3 and "event: picture" in events
        assert _get(f"{url}api/runs/{run_id}/output") == out.read_bytes()
        assert _get(f"{url}api/runs/{run_id}/inputs/content") == Path(CONTENT).read_bytes()
        with pytest.raises(urllib.error.HTTPError):
            _get(f"{url}api/runs/{run_id}/inputs/..%2F..%2Fetc%2Fpasswd")
        assert process.poll() is None  # still serving after the run
    finally:
        process.send_signal(signal.SIGINT)
        stdout, _ = process.communicate(timeout=30)
    assert process.returncode == 0 and f"wrote {out}" in stdout


@pytest.mark.parametrize("value,message", [
    ("nohost:99999", "--web takes [HOST:]PORT with a port from 0 to 65535, got 'nohost:99999'"),
    ("abc", "--web takes [HOST:]PORT with a port from 0 to 65535, got 'abc'"),
])
def test_bad_web_addresses_are_one_line(value, message, image_files, tmp_path, capsys):
    from nstcore import cli

    content, style = image_files
    code = cli.main(["run", str(content), str(style), "-o", str(tmp_path / "o.png"), "--web", value])
    assert code == 2 and not (tmp_path / "o.png").exists()
    assert capsys.readouterr().err.splitlines() == [f"nstcore: error: {message}"]


def test_addresses_default_to_loopback_and_others_get_a_warning():
    from nstcore.web import exposure_warning, parse_address

    assert parse_address("") == ("127.0.0.1", 0)
    assert parse_address("8080") == ("127.0.0.1", 8080)
    assert parse_address("0.0.0.0:9000") == ("0.0.0.0", 9000)
    assert parse_address("[::1]:9000") == ("::1", 9000)
    assert exposure_warning("127.0.0.1") is None and exposure_warning("localhost") is None
    assert "exposes this page" in exposure_warning("0.0.0.0")


def _studio(tmp_path):
    from nstcore.studio import Studio

    return Studio(tmp_path / "out", executor=SimpleNamespace(run=lambda *a: None))


def test_uploads_are_checked_and_kept_under_generated_names(tmp_path, monkeypatch):
    studio = _studio(tmp_path)
    data = Path(CONTENT).read_bytes()
    name = studio.store_upload([data[:1000], data[1000:]], "the content image")
    assert re.fullmatch(r"[0-9a-f]{16}\.png", name)
    assert studio.upload_path(name).read_bytes() == data
    for bad, message in ((b"", "the content image is empty"),
                         (b"%PDF-1.4 not an image", "the content image cannot be used: not an image"
                          " file Pillow can read")):
        with pytest.raises(InputError, match=re.escape(message)):
            studio.store_upload([bad], "the content image")
    monkeypatch.setenv("NSTCORE_MAX_PIXELS", "1000")  # a decompression bomb is refused too
    with pytest.raises(InputError, match="the content image cannot be used: image is above the limit of 1,000 pixels"):
        studio.store_upload([data], "the content image")
    monkeypatch.setattr("nstcore.studio.MAX_UPLOAD_BYTES", 100)
    with pytest.raises(InputError, match="is larger than"):
        studio.store_upload([data], "style image 1")
    for hostile in ("../../etc/passwd", "x.png", "/etc/passwd", ""):
        with pytest.raises(InputError, match="no uploaded image named"):
            studio.upload_path(hostile)
    assert sorted(p.name for p in studio.uploads.iterdir()) == [name]  # no partial files left


def test_a_bad_option_is_refused_before_the_run_is_queued(tmp_path):
    studio = _studio(tmp_path)
    content = studio.store_upload([Path(CONTENT).read_bytes()], "content")
    style = studio.store_upload([Path(STYLE).read_bytes()], "style")
    with pytest.raises(InputError, match="steps: must be a whole number >= 1"):
        studio.submit(content, [style], {"steps": "0"})
    with pytest.raises(InputError, match="choose at least one style image"):
        studio.submit(content, [], {})
    with pytest.raises(InputError, match="unknown option 'weights'"):
        studio.submit(content, [style], {"weights": "/etc/passwd"})
    assert studio.runs == {}


def test_a_live_run_offers_pictures_at_most_four_times_a_second():
    from nstcore.live import LiveRun

    live = LiveRun("r", settings={}, inputs={}, schedule=[(32, 50, 1024)])
    live.start()
    for step in range(1, 51):
        live.step(SimpleNamespace(step=step, steps=50, size=32, total=1.0, terms={"a": 1.0},
                                  seconds=0.001, elapsed=step * 0.001,
                                  image=np.full((1, 4, 4, 3), step / 50, np.float32)))
    events = live.events()
    assert sum(e["type"] == "step" for e in events) == 50
    assert sum(e["type"] == "picture" for e in events) == 1  # 50 steps in well under 0.25 s
    live.finish("finished", "", None, np.zeros((4, 4, 3), np.float32))
    assert [e["type"] for e in live.events(len(events))] == ["picture", "status"]
    assert Image.open(io.BytesIO(live.picture_jpeg())).size == (4, 4)
    assert [e["id"] for e in live.events()] == list(range(1, len(live.events()) + 1))
