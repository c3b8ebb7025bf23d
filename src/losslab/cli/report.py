"""``report.html``: one self-contained page per run (settings, final metrics, tables, plots).

Self-contained means no network request of any kind: the plots are embedded as base64 ``data:``
URIs, the style is inline, and a Content-Security-Policy forbids everything else (scripts
included), so a page opened from an untrusted run directory cannot phone home or run code. Every
string that came from the user (file and column names, options, loss names) goes through
``html.escape``; the CSP is the second line of defence, not the first.
"""

from __future__ import annotations

import base64
import html
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from losslab.atomic import write_atomic

__all__ = ["Table", "render_report", "write_report", "format_value"]

_CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"

_STYLE = """
body{font-family:system-ui,-apple-system,"Segoe UI",Helvetica,Arial,sans-serif;margin:2em auto;
max-width:1100px;padding:0 1em;color:#222;background:#fff}
h1{font-size:1.6em;margin-bottom:.2em}h2{font-size:1.2em;margin-top:1.6em;
border-bottom:1px solid #ddd;padding-bottom:.2em}
table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;padding:.25em .6em;
text-align:left;font-variant-numeric:tabular-nums}th{background:#f3f3f3}
td.num{text-align:right}.sub{color:#666}.note{background:#f7f7e8;padding:.4em .8em;
border-left:3px solid #cc9}
.plots{display:grid;grid-template-columns:repeat(auto-fill,minmax(520px,1fr));gap:1em}
figure{margin:0}figure img{max-width:100%;border:1px solid #eee}figure.wide{grid-column:1/-1}
figcaption{color:#555;font-size:.9em}code{background:#f3f3f3;padding:0 .2em}
"""


@dataclass
class Table:
    caption: str
    headers: Sequence[str]
    rows: Sequence[Sequence[Any]]
    notes: list[str] = field(default_factory=list)


def format_value(v: Any) -> str:
    """Numbers to 6 significant digits, sequences joined, everything else ``str``."""
    if isinstance(v, bool) or v is None:
        return str(v)
    if isinstance(v, float):
        if not math.isfinite(v):
            return str(v)
        return f"{v:.6g}"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, list | tuple):
        return ", ".join(format_value(x) for x in v)
    try:  # NumPy scalars
        return format_value(v.item())
    except AttributeError:
        return str(v)


def _e(v: Any) -> str:
    return html.escape(format_value(v), quote=True)


def _cell(v: Any) -> str:
    cls = ' class="num"' if isinstance(v, int | float) and not isinstance(v, bool) else ""
    return f"<td{cls}>{_e(v)}</td>"


def _kv_table(items: Mapping[str, Any]) -> str:
    rows = "".join(f"<tr><th>{_e(k)}</th>{_cell(v)}</tr>" for k, v in items.items())
    return f"<table>{rows}</table>"


def _table(t: Table) -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in t.headers)
    body = "".join("<tr>" + "".join(_cell(v) for v in row) + "</tr>" for row in t.rows)
    notes = "".join(f'<p class="sub">{_e(n)}</p>' for n in t.notes)
    return (f"<h2>{_e(t.caption)}</h2><table><thead><tr>{head}</tr></thead>"
            f"<tbody>{body}</tbody></table>{notes}")


WIDE_PX = 800  # a plot wider than this (small multiples) spans the whole grid row


def _image(path: str) -> tuple[str, int]:
    """The PNG as a data URI, and its width in pixels (from the IHDR chunk; 0 if not a PNG)."""
    with open(path, "rb") as fh:
        raw = fh.read()
    width = int.from_bytes(raw[16:20], "big") if raw[12:16] == b"IHDR" else 0
    return f"data:image/png;base64,{base64.b64encode(raw).decode('ascii')}", width


def render_report(
    *,
    title: str,
    command: str = "",
    settings: Mapping[str, Any] | None = None,
    metrics: Mapping[str, Any] | None = None,
    tables: Sequence[Table] = (),
    plots: Mapping[str, str] | None = None,
    notes: Sequence[str] = (),
) -> str:
    """The page as a string. ``plots`` maps a caption to a PNG path, embedded as a data URI."""
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f'<meta http-equiv="Content-Security-Policy" content="{_CSP}">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{_e(title)}</title><style>{_STYLE}</style></head><body>",
        f"<h1>{_e(title)}</h1>",
    ]
    if command:
        parts.append(f'<p class="sub">command: <code>{_e(command)}</code></p>')
    for n in notes:
        parts.append(f'<p class="note">{_e(n)}</p>')
    if metrics:
        parts.append("<h2>Final metrics</h2>" + _kv_table(metrics))
    for t in tables:
        parts.append(_table(t))
    if plots:
        parts.append('<h2>Plots</h2><div class="plots">')
        for caption, path in plots.items():
            uri, width = _image(path)
            wide = ' class="wide"' if width > WIDE_PX else ""
            parts.append(
                f'<figure{wide}><img alt="{_e(caption)}" src="{uri}">'
                f"<figcaption>{_e(caption)}</figcaption></figure>"
            )
        parts.append("</div>")
    if settings:
        parts.append("<h2>Settings</h2>" + _kv_table(settings))
    parts.append('<p class="sub">Written by losslab.</p></body></html>')
    return "\n".join(parts)


def write_report(path: str, **kwargs: Any) -> str:
    """Render and write ``report.html`` atomically (``losslab.atomic.write_atomic``)."""
    write_atomic(path, render_report(**kwargs))
    return path
