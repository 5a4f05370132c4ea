"""A real browser looking at an HTML page: headless Chromium's screenshot and its DOM after load, with a probe that
counts the page's images, the ones that failed to decode, and script / resource errors.

No Python browser driver is needed: Chromium's own ``--headless --screenshot`` and ``--dump-dom``. Install it with
``apt-get install -y chromium`` (Debian), or point ``TRACEGEN_BROWSER`` at any Chromium or Chrome binary.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
from pathlib import Path

import cv2
import numpy as np
import pytest

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome")
NO_BROWSER = "no headless Chromium found (apt-get install -y chromium, or set TRACEGEN_BROWSER=/path/to/chrome)"

# Runs before anything else on the page: records errors (resource errors do not bubble: listen in the capture
# phase) and, after the load event, writes what it found into <body data-probe="...">, which --dump-dom shows.
PROBE = """<script>
window.__errors = [];
window.addEventListener("error", function (e) {
  var t = e.target;
  window.__errors.push(t && t.tagName ? t.tagName + " failed to load" : String(e.message));
}, true);
window.addEventListener("load", function () {
  var imgs = Array.prototype.slice.call(document.images);
  var broken = imgs.filter(function (i) { return !i.complete || i.naturalWidth === 0; }).length;
  document.body.setAttribute("data-probe", JSON.stringify({
    images: imgs.length, broken: broken, errors: window.__errors,
    sizes: imgs.map(function (i) { return [i.naturalWidth, i.naturalHeight]; }),
    types: imgs.map(function (i) { var m = /^data:([^;,]+)/.exec(i.src); return m ? m[1] : "url"; })
  }));
});
</script>"""


def find_browser() -> str | None:
    explicit = os.environ.get("TRACEGEN_BROWSER")
    if explicit:
        return explicit if Path(explicit).is_file() else shutil.which(explicit)
    return next((p for b in BROWSERS if (p := shutil.which(b))), None)


# Flags for a closed network and a throw-away profile: without the background-networking ones Chromium keeps
# retrying connections the sandbox refuses (PLATFORM / env notes).
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--hide-scrollbars",
    "--no-first-run",
    "--disable-extensions",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
    "--disable-default-apps",
    "--virtual-time-budget=15000",
)
HANG_S = 90.0  # a healthy run of these pages takes 1-3 s


def _run(browser: str, profile: Path, *args: str, timeout: float = HANG_S) -> subprocess.CompletedProcess:
    """Run the browser in its own process group, its output in files (never pipes: helpers that outlive a kill would
    hold a pipe open and block the reader). A browser that does not finish in ``timeout`` seconds is killed and the
    test is *skipped* with that reason: headless Chromium has hung in this sandbox with unkillable helper processes,
    which says nothing about the page under test."""
    profile.mkdir(parents=True, exist_ok=True)
    out_file, err_file = profile / "stdout.txt", profile / "stderr.txt"
    with open(out_file, "w") as out, open(err_file, "w") as err:
        proc = subprocess.Popen(
            [browser, *FLAGS, f"--user-data-dir={profile}", *args], stdout=out, stderr=err, start_new_session=True
        )
        try:
            code = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            pytest.skip(f"headless Chromium did not finish in {timeout:.0f} s (killed): a browser hang, not the page")
    return subprocess.CompletedProcess(proc.args, code, out_file.read_text(), err_file.read_text())


def probe_page(browser: str, html: Path, workdir: Path) -> tuple[dict, str]:
    """Load a copy of ``html`` with :data:`PROBE` injected; returns (probe result, the DOM after load)."""
    page = html.read_text()
    probed = workdir / f"probe-{html.name}"
    probed.write_text(re.sub(r"<head>", "<head>" + PROBE, page, count=1) if "<head>" in page else PROBE + page)
    out = _run(browser, workdir / "profile", "--dump-dom", probed.resolve().as_uri())
    assert out.returncode == 0, out.stderr[-2000:]
    found = re.search(r'data-probe="([^"]*)"', out.stdout)
    assert found, f"the probe did not run: no data-probe in the DOM; stderr: {out.stderr[-1000:]}"
    return json.loads(found.group(1).replace("&quot;", '"').replace("&amp;", "&")), out.stdout


def screenshot(browser: str, html: Path, png: Path, width: int = 1100, height: int = 2400) -> np.ndarray:
    """The page as a person sees it: an RGB ``(height, width, 3)`` screenshot, also saved to ``png``."""
    out = _run(
        browser,
        png.parent / "profile-shot",
        f"--screenshot={png}",
        f"--window-size={width},{height}",
        html.resolve().as_uri(),
    )
    assert out.returncode == 0 and png.is_file(), out.stderr[-2000:]
    image = cv2.imread(str(png), cv2.IMREAD_COLOR)
    assert image is not None, f"{png}: the browser wrote no readable PNG"
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def colourful_fraction(image: np.ndarray) -> float:
    """Share of strongly coloured pixels: text and tables are grey, the trace pictures are a rainbow."""
    hsv = cv2.cvtColor(image, cv2.COLOR_RGB2HSV)
    return float(((hsv[..., 1] > 100) & (hsv[..., 2] > 100)).mean())


def check_report(html: Path, workdir: Path, expected_images: int, expected_clips: int = 0) -> np.ndarray:
    """Assert that the demo report ``html`` renders as a person would want: ``expected_images`` pictures (of which
    ``expected_clips`` animated GIF clips), each inlined and decoded, no script or resource errors, the tables
    there, and a screenshot that is neither blank nor only text. Returns the screenshot (also saved as
    ``workdir/report.png``)."""
    browser = find_browser()
    assert browser, NO_BROWSER
    probe, dom = probe_page(browser, html, workdir)
    assert probe["images"] == expected_images and probe["broken"] == 0, probe
    assert probe["types"].count("image/gif") == expected_clips, probe["types"]
    assert set(probe["types"]) <= {"image/png", "image/gif"}, probe["types"]  # all inlined: self-contained
    assert probe["errors"] == [], probe["errors"]
    assert all(w > 0 and h > 0 for w, h in probe["sizes"])
    assert "tracegen demo report" in dom and "<table>" in dom
    shot = screenshot(browser, html, workdir / "report.png")
    assert shot.std() > 20  # not a blank page
    assert colourful_fraction(shot) > 0.01  # the trace pictures are on screen, not just text and tables
    return shot
