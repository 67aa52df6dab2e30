"""The docs' screenshot of ``nstcore run --web``: a real run, caught part-way, in headless Chromium.

    python -m nstcore_benchmarks.web_screenshot docs/gallery/web-run-page.png

Starts ``nstcore run`` on the bundled images with ``--web`` on a free loopback port, opens the
page it prints, waits until the run is past its first scale and its picture is showing, and
saves the window (1280 x 1000). Needs Chromium and chromedriver (``make browser``).
"""
from __future__ import annotations

import argparse
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from nstcore.files import atomic_write_bytes
from nstcore.run import asset


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m nstcore_benchmarks.web_screenshot",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("output", type=Path)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--steps", type=int, default=12)
    args = parser.parse_args(argv)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By

    work = Path(tempfile.mkdtemp(prefix="nstcore-shot-"))
    command = [sys.executable, "-m", "nstcore.cli", "run", str(asset("astronaut.png")),
               str(asset("starry_night.jpg")), "-o", str(work / "astronaut-starry.png"),
               "--size", str(args.size), "--steps", str(args.steps), "--web", "-q"]
    process = subprocess.Popen(command, stderr=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    url = None
    while url is None:
        line = process.stderr.readline()
        if not line:
            raise SystemExit("nstcore run --web printed no URL")
        found = re.search(r"(http://127\.0\.0\.1:\d+/)", line)
        url = found.group(1) if found else None
    options = webdriver.ChromeOptions()
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1280,1000"):
        options.add_argument(flag)
    options.binary_location = shutil.which("chromium") or shutil.which("chromium-browser")
    browser = webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=options)
    try:
        browser.get(url)
        deadline = time.monotonic() + 600
        target = 2 * args.steps + args.steps // 2  # into the third scale: curve and picture grown
        while time.monotonic() < deadline:
            done = browser.find_element(By.ID, "step").text.split("/")[0].strip()
            shown = browser.execute_script(
                "const i = document.getElementById('picture'); return !i.hidden && i.complete;")
            if done.isdigit() and int(done) >= target and shown:
                break
            time.sleep(0.5)
        time.sleep(1.0)
        shot = work / "shot.png"
        browser.save_screenshot(str(shot))
        atomic_write_bytes(args.output, shot.read_bytes())
    finally:
        browser.quit()
        for _ in range(2):  # the first stops the run (its picture is kept), the second the page
            process.send_signal(signal.SIGINT)
            try:
                process.communicate(timeout=30)
                break
            except subprocess.TimeoutExpired:
                continue
        else:
            process.kill()
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
