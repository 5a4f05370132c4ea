"""`tracegen demo` end to end at tiny size: every stage runs for real, the report is written, a rerun is cached."""

import json
import subprocess
import sys

import pytest

from headless_browser import NO_BROWSER, check_report, find_browser


def run(*args):
    return subprocess.run(
        [sys.executable, "-m", "tracegen.cli", "demo", *map(str, args)], capture_output=True, text=True, timeout=600
    )


@pytest.fixture(scope="module")
def tiny_demo(tmp_path_factory):
    """One tiny demo run shared by the tests below: (its parent folder, the finished process)."""
    tmp_path = tmp_path_factory.mktemp("tiny_demo")
    return tmp_path, run("--out", tmp_path / "demo", "--scale", "tiny")


def test_tiny_demo_end_to_end_and_cached_rerun(tiny_demo):
    tmp_path, out = tiny_demo
    assert out.returncode == 0, out.stderr[-3000:]
    summary = json.loads((tmp_path / "demo" / "summary.json").read_text())
    res = summary["results"]
    assert res["record"]["target"]["episodes"] == 2
    assert res["traces"]["pretrain"]["windows_kept"] > 0 and res["traces"]["heldout"]["samples"] > 0
    assert set(res["closed_loop"]["success_rate"]) == {"oracle", "pretrained+warmup", "scratch"}
    for name in ("warmup", "scratch"):
        assert res["eval"][name]["samples"] > 0 and res["eval"][name]["ade_px"] > 0
    report = (tmp_path / "demo" / "report.md").read_text()
    assert "Closed-loop success" in report and "Trace accuracy" in report and "example" in report
    page = (tmp_path / "demo" / "report.html").read_text()
    assert page.count("data:image/png;base64,") >= 1
    assert "pretrained + warm-up" in out.stdout and "report:" in out.stdout

    again = run("--out", tmp_path / "demo", "--scale", "tiny")
    assert again.returncode == 0 and again.stdout.count(": cached") == 5


@pytest.mark.skipif(find_browser() is None, reason=NO_BROWSER)
def test_the_report_renders_in_a_headless_browser(tiny_demo):
    """As a person sees it: every image of report.html decodes, no page errors, the pictures are on screen."""
    tmp_path, out = tiny_demo
    assert out.returncode == 0, out.stderr[-3000:]
    report = tmp_path / "demo" / "report.md"
    check_report(report.with_suffix(".html"), tmp_path, expected_images=report.read_text().count("!["))


def test_demo_refuses_an_unwritable_output(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    out = run("--out", blocker / "demo", "--scale", "tiny")
    assert out.returncode != 0 and "cannot write" in out.stderr
