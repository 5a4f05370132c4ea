"""The report page in a real browser (headless Chromium): every image decoded, no page errors, pictures on screen;
and the check itself catches a broken picture. The tiny demo's own report is checked the same way in
tests/test_demo.py. Skipped (with the reason) when no Chromium is installed: `apt-get install -y chromium`."""

import pytest

from headless_browser import NO_BROWSER, check_report, find_browser, probe_page
from synthetic import synthetic_episode
from tracegen.io.official import write_png
from tracegen.viz.overlay import draw_traces, side_by_side
from tracegen.viz.report import write_report

BROWSER = find_browser()
pytestmark = pytest.mark.skipif(BROWSER is None, reason=NO_BROWSER)


def test_a_report_with_pictures_renders_and_a_broken_picture_is_caught(tmp_path):
    ep = synthetic_episode()
    uvz, _ = ep.gt_reference_tracks(0)
    for i in range(2):
        picture = draw_traces(ep.rgb[0], uvz[:, : 10 + 5 * i], min_motion_px=1.0)
        write_png(tmp_path / "eval" / f"example_{i}.png", side_by_side(picture, picture))
    summary = {
        "stage_seconds": {"record": 1.0, "eval": 2.0},
        "total_seconds": 3.0,
        "results": {"eval": {"warmup": {"ade_px": 1.5, "samples": 4}, "scratch": {"ade_px": 2.5, "samples": 4}}},
    }
    _, html = write_report(tmp_path, summary)
    check_report(html, tmp_path, expected_images=2)

    page = html.read_text()
    start = page.index("base64,") + len("base64,")
    broken = tmp_path / "broken.html"
    broken.write_text(page[:start] + "AAAA" + page[start + 4 :])  # one image's PNG header destroyed
    probe, _ = probe_page(BROWSER, broken, tmp_path)
    assert probe["broken"] == 1 and probe["errors"], probe
