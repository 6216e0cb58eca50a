"""Self-contained HTML for the report (private).

Everything that reaches the page goes through :func:`esc` (``html.escape`` with
quotes) or is a number we formatted, and images are embedded as base64 ``data:`` URIs,
so the file opens offline and a ``<script>`` in a log field shows as text. A strict
Content-Security-Policy (no scripts, no external loads) is a second line of defence.
"""

from __future__ import annotations

import base64
import html
import math
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["esc", "fmt_number", "image", "page", "section", "table"]

CSS = """
body{font-family:-apple-system,"Segoe UI",Roboto,Helvetica,Arial,sans-serif;margin:0;
color:#1f2933;background:#f7f8fa;line-height:1.45}
main{max-width:1100px;margin:0 auto;padding:24px 28px 48px}
h1{font-size:1.8em;margin:0 0 4px}h2{margin:36px 0 8px;font-size:1.35em;
border-bottom:2px solid #dde3ea;padding-bottom:4px}h3{margin:22px 0 6px;font-size:1.1em}
p.lead,p.meta{color:#52606d;margin:4px 0 12px}.cards{display:flex;flex-wrap:wrap;gap:12px;
margin:16px 0}.card{background:#fff;border:1px solid #dde3ea;border-radius:8px;
padding:10px 16px;min-width:140px}.card .v{font-size:1.5em;font-weight:600}
.card .k{color:#52606d;font-size:.85em}table{border-collapse:collapse;background:#fff;
margin:8px 0 4px;font-size:.88em}th,td{border:1px solid #dde3ea;padding:4px 8px;
text-align:left;vertical-align:top}td.n{text-align:right;font-variant-numeric:tabular-nums}
th{background:#eef2f6}.note{color:#52606d;font-size:.85em}img{max-width:100%;
background:#fff;border:1px solid #dde3ea;border-radius:6px;margin:8px 0}
.skip{color:#8a5a00}.ok{color:#1b7f3b}pre{background:#fff;border:1px solid #dde3ea;
padding:10px;overflow:auto;font-size:.82em}.wrap{overflow-x:auto}
"""

CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'"


def esc(value: Any) -> str:
    """HTML-escaped text of any value (quotes included)."""
    return html.escape(str(value), quote=True)


def fmt_number(value: Any, *, share: bool = False, digits: int = 1) -> str:
    """A readable number: thousands separators, percentages for shares, blanks for NaN."""
    if value is None:
        return ""
    if isinstance(value, (bool, np.bool_)):
        return "yes" if value else "no"
    if isinstance(value, (pd.Timedelta, np.timedelta64)):
        td = pd.Timedelta(value)
        return "" if pd.isna(td) else _fmt_timedelta(td)
    if isinstance(value, (int, np.integer)):
        return f"{int(value):,}"
    if isinstance(value, (float, np.floating)):
        v = float(value)
        if math.isnan(v):
            return ""
        if math.isinf(v):
            return "∞" if v > 0 else "−∞"
        if share:
            return f"{100 * v:.{digits}f}%"
        if v == int(v) and abs(v) < 1e15:
            return f"{int(v):,}"
        return f"{v:,.{max(digits, 2)}f}"
    return str(value)


def _fmt_timedelta(td: pd.Timedelta) -> str:
    seconds = td.total_seconds()
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    if seconds < 3 * 86400:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"


def _is_share(column: str) -> bool:
    c = column.lower()
    return c.startswith(("share", "conversion_from", "exit_rate", "conversion_rate")) or c.endswith(
        ("_share", "_rate")
    )


def table(frame: pd.DataFrame, *, max_rows: int = 50, note: str | None = None) -> str:
    """An escaped HTML table of the first ``max_rows`` rows, with a note when cut."""
    shown = frame.head(max_rows)
    head = "".join(f"<th>{esc(c)}</th>" for c in shown.columns)
    body = []
    columns = [str(c) for c in shown.columns]
    # itertuples on at most max_rows rows: presentation only, not the data path
    for row in shown.itertuples(index=False, name=None):
        cells = []
        for col, value in zip(columns, row, strict=True):
            numeric = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(
                value, (bool, np.bool_)
            )
            text = fmt_number(value, share=_is_share(col)) if numeric else _cell_text(value)
            cls = ' class="n"' if numeric else ""
            cells.append(f"<td{cls}>{esc(text)}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    out = f'<div class="wrap"><table><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table></div>'
    extra = []
    if len(frame) > max_rows:
        extra.append(f"Showing the first {max_rows:,} of {len(frame):,} rows.")
    if note:
        extra.append(note)
    if extra:
        out += f'<p class="note">{esc(" ".join(extra))}</p>'
    return out


def _cell_text(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, (pd.Timedelta, np.timedelta64, bool, np.bool_)):
        return fmt_number(value)
    if isinstance(value, pd.Timestamp):
        return "" if pd.isna(value) else value.isoformat()
    try:
        if pd.isna(value):
            return ""
    except (TypeError, ValueError):
        pass
    return str(value)


def image(path: Path, alt: str) -> str:
    """An ``<img>`` with the PNG at ``path`` embedded as a base64 data URI."""
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return f'<img alt="{esc(alt)}" src="data:image/png;base64,{data}">'


def cards(items: Iterable[tuple[str, str]]) -> str:
    """Headline numbers as cards: (label, formatted value)."""
    inner = "".join(
        f'<div class="card"><div class="v">{esc(v)}</div><div class="k">{esc(k)}</div></div>'
        for k, v in items
    )
    return f'<div class="cards">{inner}</div>'


def section(title: str, lead: str | None, parts: Sequence[str]) -> str:
    """An ``<h2>`` section; ``parts`` are already-built HTML fragments."""
    intro = f'<p class="lead">{esc(lead)}</p>' if lead else ""
    return f"<section><h2>{esc(title)}</h2>{intro}{''.join(parts)}</section>"


def paragraph(text: str, cls: str | None = None) -> str:
    """An escaped paragraph."""
    attr = f' class="{esc(cls)}"' if cls else ""
    return f"<p{attr}>{esc(text)}</p>"


def heading(text: str) -> str:
    """An escaped ``<h3>``."""
    return f"<h3>{esc(text)}</h3>"


def preformatted(text: str) -> str:
    """Escaped preformatted text."""
    return f"<pre>{esc(text)}</pre>"


def status_list(statuses: Mapping[str, str]) -> str:
    """Stage name -> status as a list, skipped stages highlighted."""
    items = []
    for name, status in statuses.items():
        cls = "ok" if status == "ok" else "skip"
        items.append(f'<li><b>{esc(name)}</b>: <span class="{cls}">{esc(status)}</span></li>')
    return "<ul>" + "".join(items) + "</ul>"


def page(title: str, subtitle: str, body: Sequence[str]) -> str:
    """The complete HTML document (inline CSS, no scripts, no external resources)."""
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{esc(title)}</title><style>{CSS}</style></head>"
        f'<body><main><h1>{esc(title)}</h1><p class="meta">{esc(subtitle)}</p>'
        + "".join(body)
        + "</main></body></html>\n"
    )
