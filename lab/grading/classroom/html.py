"""summary.html: per-check pass rates, a score histogram (inline SVG), the slowest and
the crashed submissions, identical submissions. One self-contained file, no assets."""

from __future__ import annotations

from html import escape
from pathlib import Path
from typing import Any

from lab.grading.classroom.gradebook import check_columns

_CSS = """body{font-family:sans-serif;margin:2em;color:#222}table{border-collapse:collapse;
margin:1em 0}td,th{border:1px solid #ccc;padding:4px 8px;text-align:left}
th{background:#eee}.bar{background:#4a8;height:12px}.bad{color:#b00;font-weight:bold}
h2{margin-top:1.5em}"""


def histogram_svg(scores: list[int], top: int, width: int = 600, height: int = 220) -> str:
    bins = list(range(top + 1)) if top <= 20 else [round(i * top / 20) for i in range(21)]
    counts = [0] * len(bins)
    for s in scores:
        index = max(i for i, b in enumerate(bins) if s >= b)
        counts[index] += 1
    peak = max(counts) or 1
    bar_w = (width - 40) / len(bins)
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
             'role="img" aria-label="score histogram">',
             f'<line x1="30" y1="{height - 30}" x2="{width}" y2="{height - 30}" '
             'stroke="#333"/>']
    for i, (b, n) in enumerate(zip(bins, counts, strict=True)):
        h = (height - 60) * n / peak
        x = 30 + i * bar_w
        parts.append(f'<rect x="{x + 2:.1f}" y="{height - 30 - h:.1f}" width="{bar_w - 4:.1f}"'
                     f' height="{h:.1f}" fill="#4a8"><title>score {b}: {n}</title></rect>')
        parts.append(f'<text x="{x + bar_w / 2:.1f}" y="{height - 14}" font-size="11" '
                     f'text-anchor="middle">{b}</text>')
        if n:
            parts.append(f'<text x="{x + bar_w / 2:.1f}" y="{height - 34 - h:.1f}" '
                         f'font-size="11" text-anchor="middle">{n}</text>')
    parts.append("</svg>")
    return "".join(parts)


def render_summary(exercise: str, rows: list[dict[str, Any]],
                   identical: list[list[str]]) -> str:
    columns, worth = check_columns(rows)
    top = sum(worth.values())
    graded = [r for r in rows if r["status"] in ("graded", "crash")]
    out = [f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{escape(exercise)}: "
           f"class summary</title><style>{_CSS}</style></head><body>",
           f"<h1>{escape(exercise)}: class summary</h1>",
           f"<p>{len(rows)} submissions, {sum(r['score'] == top for r in rows)} with full "
           f"marks ({top} points), {sum(r['status'] != 'graded' for r in rows)} crashed, "
           "timed out or not gradable.</p>", "<h2>Score histogram</h2>",
           histogram_svg([r["score"] for r in rows], top), "<h2>Pass rate per check</h2>",
           "<table><tr><th>check</th><th>points</th><th>passed</th><th></th></tr>"]
    for c in columns:
        passed = sum(r.get("checks", {}).get(c, 0) == worth.get(c) for r in graded)
        rate = passed / len(rows) if rows else 0.0
        out.append(f"<tr><td>{escape(c)}</td><td>{worth.get(c, 0)}</td><td>{passed}/"
                   f"{len(rows)} ({rate:.0%})</td><td><div class='bar' style='width:"
                   f"{200 * rate:.0f}px'></div></td></tr>")
    out.append("</table><h2>Crashed and ungradable submissions</h2>")
    bad = [r for r in rows if r["status"] != "graded"]
    out.append(_table(bad, ["id", "status", "note"]) if bad else "<p>none</p>")
    out.append("<h2>Slowest submissions</h2>")
    slow = sorted(rows, key=lambda r: -r.get("seconds", 0))[:5]
    out.append(_table(slow, ["id", "seconds", "score", "status"]))
    out.append("<h2>Identical submissions</h2>")
    if identical:
        out.append("<ul>" + "".join(f"<li class='bad'>{escape(', '.join(g))}</li>"
                                    for g in identical) + "</ul>")
    else:
        out.append("<p>none</p>")
    out.append("</body></html>\n")
    return "\n".join(out)


def _table(rows: list[dict[str, Any]], keys: list[str]) -> str:
    head = "".join(f"<th>{escape(k)}</th>" for k in keys)
    body = "".join("<tr>" + "".join(f"<td>{escape(str(r.get(k, '')))}</td>" for k in keys)
                   + "</tr>" for r in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def write_summary(exercise: str, rows: list[dict[str, Any]], identical: list[list[str]],
                  out: Path) -> Path:
    path = out / "summary.html"
    path.write_text(render_summary(exercise, rows, identical))
    return path
