"""The demo's report: the same content as markdown and as one self-contained HTML page (images inlined)."""

from __future__ import annotations

import base64
import html
from pathlib import Path


def _rows(summary: dict) -> list[tuple[str, str]]:
    rows = [(k, f"{v} s") for k, v in summary["stage_seconds"].items()]
    rows.append(("total", f"{summary['total_seconds']} s"))
    return rows


def markdown(summary: dict, images: list[Path]) -> str:
    res = summary["results"]
    out = [
        "# tracegen demo report",
        "",
        "The whole loop on a small configuration: simulated demonstrations → TraceForge (tracking, depth, cameras; "
        "no ground truth) makes observation–trace–language triplets → TraceGen pretrained on other tasks and "
        "embodiments, warmed up on five videos per target task (and the same model from scratch) → trace accuracy "
        "on held-out episodes → closed-loop control through the trace executor.",
        "",
        "## Stage timings",
        "",
        "| stage | wall time |",
        "| --- | --- |",
    ]
    out += [f"| {k} | {v} |" for k, v in _rows(summary)]
    if "record" in res:
        out += ["", "## Data", "", "| set | episodes | expert success |", "| --- | --- | --- |"]
        out += [
            f"| {k} | {v['episodes']} | {v['expert_success']} |"
            for k, v in res["record"].items()
            if isinstance(v, dict)
        ]
    if "traces" in res:
        out += [
            "",
            "| set | traces from | windows kept | windows dropped (reason: count) |",
            "| --- | --- | --- | --- |",
        ]
        for k, v in res["traces"].items():
            if not isinstance(v, dict):
                continue
            if "windows_kept" in v:  # a TraceForge run
                dropped = ", ".join(f"{r}: {n}" for r, n in v["windows_dropped"].items()) or "none"
                out.append(f"| {k} | TraceForge ({v['seconds']:.0f} s) | {v['windows_kept']} | {dropped} |")
            else:
                out.append(f"| {k} | exact ground truth (to score against) | {v.get('samples')} | |")
    if "eval" in res:
        out += [
            "",
            "## Trace accuracy on held-out episodes",
            "",
            "| model | ADE px | FDE px | ADE cm | FDE cm | static ADE px | NN ADE px | samples |",
            "| --- | --- | --- | --- | --- | --- | --- | --- |",
        ]
        for name in ("warmup", "scratch"):
            e = res["eval"].get(name, {})
            out.append(
                f"| {name} | {e.get('ade_px')} | {e.get('fde_px')} | {e.get('ade_cm')} | {e.get('fde_cm')} | "
                f"{e.get('static_ade_px')} | {e.get('nn_ade_px')} | {e.get('samples')} |"
            )
    if "closed_loop" in res:
        loop = res["closed_loop"]
        tasks = sorted(next(iter(loop["successes"].values())))
        out += ["", "## Closed-loop success (Meta-World, executor)", ""]
        if "protocol" in loop:  # run by `tracegen bench metaworld` (the `full` scale)
            logs = ", ".join(f"closed_loop/{Path(f).with_suffix('.episodes.jsonl')}" for f in loop["bench"].values())
            out += [f"Every episode of protocol {loop['protocol']}, per planner; per-episode logs: {logs}.", ""]
        out += [
            "| planner | " + " | ".join(tasks) + " | overall | mean plan ms |",
            "| --- | " + " | ".join("---" for _ in tasks) + " | --- | --- |",
        ]
        n = loop["episodes_per_planner"] // max(1, len(tasks))
        for name, per_task in loop["successes"].items():
            cells = " | ".join(f"{per_task[t]}/{n}" for t in tasks)
            out.append(
                f"| {name} | {cells} | {loop['success_rate'][name]:.0%} | {loop['mean_plan_ms'].get(name, '-')} |"
            )
    if images:
        out += ["", "## Predicted (left) and exact (right) traces on held-out observations", ""]
        out += [f"![example]({p.relative_to(p.parents[1])})" for p in images]
    out += _clips(res.get("closed_loop", {}).get("clips", []))
    return "\n".join(out) + "\n"


def _clips(clips: list[dict]) -> list[str]:
    """The rollout clips section: one caption line and one image per clip (paths relative to the report)."""
    if not clips:
        return []
    out = [
        "",
        "## Closed-loop rollouts",
        "",
        "The planning camera during the episode, with the trace of the plan in force drawn on every frame "
        "(tails of the points it moves, in their grid colours; a new plan replaces it at every replan).",
    ]
    for c in clips:
        outcome = "success" if c["success"] else f"failure ({c['reason']})"
        out += [
            "",
            f"{c['planner']} on {c['task']} (camera {c['camera']}, seed {c['seed']}): {outcome} after "
            f"{c['steps']} steps and {c['plans']} plans.",
            f"![rollout: {c['planner']} on {c['task']}]({c['file']})",
        ]
    return out


MIME = {".png": "image/png", ".gif": "image/gif"}


def _data_uri(path: Path) -> str:
    from tracegen.errors import DataError

    if path.suffix not in MIME:
        raise DataError(path, f"the report inlines only {', '.join(MIME)} images")
    if not path.is_file():
        raise DataError(path, "file not found (a cached stage lost its pictures? rerun with --fresh)")
    return f"data:{MIME[path.suffix]};base64,{base64.b64encode(path.read_bytes()).decode()}"


def to_html(md: str, root: Path) -> str:
    """A minimal markdown-to-HTML for the report's own constructs (headings, tables, paragraphs, images); every
    image (a path relative to ``root``) is inlined as a data URI, so the page is one self-contained file."""
    body, table = [], []

    def flush_table():
        if table:
            head, *rows = table
            body.append("<table><tr>" + "".join(f"<th>{html.escape(c)}</th>" for c in head) + "</tr>")
            body.extend("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in r) + "</tr>" for r in rows)
            body.append("</table>")
            table.clear()

    for line in md.splitlines():
        if line.startswith("|"):
            cells = [c.strip() for c in line.strip("|").split("|")]
            if not all(set(c) <= {"-", " "} for c in cells):
                table.append(cells)
            continue
        flush_table()
        if line.startswith("#"):
            level = len(line) - len(line.lstrip("#"))
            body.append(f"<h{level}>{html.escape(line.lstrip('# '))}</h{level}>")
        elif line.startswith("!["):
            alt, src = line[2 : line.index("](")], line[line.index("](") + 2 : -1]
            kind = ' class="clip"' if src.endswith(".gif") else ""
            body.append(f'<img alt="{html.escape(alt)}"{kind} src="{_data_uri(root / src)}">')
        elif line.strip():
            body.append(f"<p>{html.escape(line)}</p>")
    flush_table()
    style = (
        "body{font-family:system-ui,sans-serif;max-width:1000px;margin:2em auto;color:#222}"
        "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:4px 10px}"
        "th{background:#f3f3f3}img{max-width:100%;margin:.5em 0;border:1px solid #ddd}"
        "img.clip{width:256px;image-rendering:pixelated}"
    )
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>tracegen demo report</title>"
        f"<style>{style}</style></head><body>{''.join(body)}</body></html>"
    )


def write_report(out: Path, summary: dict) -> tuple[Path, Path]:
    from tracegen.io.files import atomic_path

    images = sorted((out / "eval").glob("example_*.png"))
    md = markdown(summary, images)
    page = to_html(md, out)  # before writing either: a missing picture leaves both reports as they were
    with atomic_path(out / "report.md") as tmp:
        tmp.write_text(md)
    with atomic_path(out / "report.html") as tmp:
        tmp.write_text(page)
    return out / "report.md", out / "report.html"
