"""The retention team's at-risk report: one self-contained HTML file.

No external scripts, styles, fonts or images: charts are inline SVG, sorting is a
few lines of inline JavaScript, so the file opens offline and can be mailed.
Contents: the portfolio summary (NPS, CSAT % satisfied, CES, predicted churn
rate, value at risk), distributions of churn risk, CLV and NCO, the at-risk list
ranked by value at risk (sortable by any column), and a per-segment table when a
segment column is named.
"""

from __future__ import annotations

import datetime as dt
import html
import math

import numpy as np
import pandas as pd

from cx_models._version import __version__
from cx_models.errors import CXDataError
from cx_models.nco import summarise

__all__ = ["render_report"]

_LIST_COLUMNS = [
    ("priority_rank", "Rank", "int"),
    ("customer_id", "Customer", "text"),
    ("value_at_risk", "Value at risk", "money"),
    ("churn_risk", "Churn risk", "pct"),
    ("clv", "CLV", "money"),
    ("nco", "NCO", "num"),
    ("nco_coverage", "Coverage", "pct"),
    ("drivers", "Top churn drivers", "text"),
]

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:24px;color:#1d2430}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 8px}
.meta{color:#5b6575;font-size:13px}
.cards{display:flex;flex-wrap:wrap;gap:12px;margin-top:12px}
.card{border:1px solid #d8dde6;border-radius:8px;padding:10px 14px;min-width:150px}
.card .v{font-size:20px;font-weight:600}.card .l{font-size:12px;color:#5b6575}
.charts{display:flex;flex-wrap:wrap;gap:18px}
table{border-collapse:collapse;font-size:13px;width:100%}
th,td{border-bottom:1px solid #e6e9ef;padding:5px 8px;text-align:right;vertical-align:top}
th{background:#f3f5f8;cursor:pointer;user-select:none;position:sticky;top:0}
td.text,th.text{text-align:left}th.sorted-asc:after{content:" \\25B2"}
th.sorted-desc:after{content:" \\25BC"}
"""

_JS = """
(function(){
  function key(td){var v=td.getAttribute('data-v');
    if(v===null||v===''){return null}var n=Number(v);return isNaN(n)?v:n}
  function sortTable(table,col,dir){
    var body=table.tBodies[0],rows=Array.prototype.slice.call(body.rows);
    rows.sort(function(a,b){var x=key(a.cells[col]),y=key(b.cells[col]);
      if(x===y){return 0}if(x===null){return 1}if(y===null){return -1}
      return (x<y?-1:1)*dir});
    rows.forEach(function(r){body.appendChild(r)});
    Array.prototype.forEach.call(table.tHead.rows[0].cells,function(th,i){
      th.classList.remove('sorted-asc','sorted-desc');
      if(i===col){th.classList.add(dir>0?'sorted-asc':'sorted-desc')}});
  }
  document.querySelectorAll('table.sortable').forEach(function(table){
    Array.prototype.forEach.call(table.tHead.rows[0].cells,function(th,i){
      th.addEventListener('click',function(){
        var dir=th.classList.contains('sorted-asc')?-1:1;sortTable(table,i,dir)})})});
  if(location.hash==='#selftest'){
    var t=document.getElementById('at-risk'),th=t.tHead.rows[0].cells[3];
    th.click();var first=Number(t.tBodies[0].rows[0].cells[3].getAttribute('data-v'));
    var last=Number(t.tBodies[0].rows[t.tBodies[0].rows.length-1].cells[3].getAttribute('data-v'));
    th.click();var top=Number(t.tBodies[0].rows[0].cells[3].getAttribute('data-v'));
    document.body.setAttribute('data-selftest',(first<=last&&top>=last)?'sorted':'unsorted');
  }
})();
"""


def _fmt(value, kind: str) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if kind == "money":
        return f"{value:,.2f}"
    if kind == "pct":
        return f"{100 * value:.1f} %"
    if kind == "int":
        return f"{int(value):,}"
    if kind == "num":
        return f"{value:.1f}"
    return html.escape(str(value))


def _histogram_svg(
    values,
    title: str,
    *,
    bins: int = 30,
    clip_quantile: float | None = None,
    fmt=lambda v: f"{v:g}",
) -> str:
    data = np.asarray(values, dtype=float)
    data = data[np.isfinite(data)]
    w, h, pad = 360, 180, 28
    if data.size == 0:
        return f'<svg width="{w}" height="{h}" role="img"><title>{title}</title></svg>'
    hi = np.quantile(data, clip_quantile) if clip_quantile else data.max()
    lo = data.min()
    if hi <= lo:
        hi = lo + 1.0
    counts, edges = np.histogram(np.clip(data, lo, hi), bins=bins, range=(lo, hi))
    top = counts.max() or 1
    bar_w = (w - 2 * pad) / bins
    bars = "".join(
        f'<rect x="{pad + i * bar_w:.1f}" y="{h - pad - (c / top) * (h - 2 * pad):.1f}" '
        f'width="{max(bar_w - 1, 1):.1f}" height="{(c / top) * (h - 2 * pad):.1f}" '
        f'fill="#4c78a8"><title>{fmt(edges[i])}–{fmt(edges[i + 1])}: {c:,}</title></rect>'
        for i, c in enumerate(counts)
    )
    suffix = " (top 1 % clipped)" if clip_quantile else ""
    return (
        f'<svg width="{w}" height="{h}" viewBox="0 0 {w} {h}" role="img" '
        f'xmlns="http://www.w3.org/2000/svg"><title>{html.escape(title)}</title>'
        f'<text x="{pad}" y="16" font-size="13" font-weight="600">{html.escape(title)}{suffix}'
        f"</text>{bars}"
        f'<line x1="{pad}" y1="{h - pad}" x2="{w - pad}" y2="{h - pad}" stroke="#888"/>'
        f'<text x="{pad}" y="{h - 8}" font-size="11">{fmt(lo)}</text>'
        f'<text x="{w - pad}" y="{h - 8}" font-size="11" text-anchor="end">{fmt(hi)}</text>'
        "</svg>"
    )


def _table(frame: pd.DataFrame, columns, table_id: str) -> str:
    head = "".join(
        f'<th class="{"text" if kind == "text" else ""}">{html.escape(label)}</th>'
        for _, label, kind in columns
    )
    rows = []
    for record in frame.itertuples(index=False):
        cells = []
        for (_, _, kind), value in zip(columns, record, strict=True):
            raw = (
                ""
                if value is None or (isinstance(value, float) and math.isnan(value))
                else (html.escape(str(value)) if kind == "text" else repr(float(value)))
            )
            cls = ' class="text"' if kind == "text" else ""
            cells.append(f'<td{cls} data-v="{raw}">{_fmt(value, kind)}</td>')
        rows.append("<tr>" + "".join(cells) + "</tr>")
    return (
        f'<table id="{table_id}" class="sortable"><thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table>"
    )


def render_report(
    scored: pd.DataFrame,
    *,
    top: int = 500,
    segment: str | None = None,
    title: str = "Customers at risk",
    metadata: dict | None = None,
) -> str:
    """Return the report for a scored table (the scoring contract) as one HTML string.

    Examples
    --------
    >>> scored = pd.DataFrame({"customer_id": [1, 2], "churn_risk": [0.9, 0.1],
    ...                        "clv": [100.0, 50.0], "value_at_risk": [90.0, 5.0],
    ...                        "nco": [20.0, 80.0], "nco_coverage": [0.5, 1.0],
    ...                        "priority_rank": [1, 2], "drivers": ["a (+1.00)", ""]})
    >>> page = render_report(scored)
    >>> page.count("<tr>"), "<script src" in page
    (3, False)
    """
    needed = [c for c, _, _ in _LIST_COLUMNS]
    missing = [c for c in needed if c not in scored.columns]
    if missing:
        raise CXDataError(
            f"the scored table lacks {', '.join(missing)}; score it with `cx-models score`"
        )
    if segment is not None and segment not in scored.columns:
        raise CXDataError(
            f"segment column {segment!r} not found; found {', '.join(map(str, scored.columns))}"
        )
    meta = dict(metadata or {})
    summary = summarise(scored).iloc[0]
    at_risk = scored.sort_values("priority_rank").head(int(top))[needed]
    cards = [
        (
            f"{summary['nps']:.1f}" if np.isfinite(summary["nps"]) else "–",
            f"NPS ({summary['nps_respondents']:,} respondents)",
        ),
        (
            f"{summary['csat_pct_satisfied']:.1f} %"
            if np.isfinite(summary["csat_pct_satisfied"])
            else "–",
            f"CSAT satisfied ({summary['csat_respondents']:,} respondents)",
        ),
        (f"{summary['mean_ces']:.2f}" if np.isfinite(summary["mean_ces"]) else "–", "mean CES"),
        (f"{100 * summary['predicted_churn_rate']:.1f} %", "predicted churn rate"),
        (f"{summary['total_value_at_risk']:,.0f}", "total value at risk"),
        (f"{summary['total_clv']:,.0f}", "total CLV"),
        (f"{summary['mean_nco']:.1f}" if np.isfinite(summary["mean_nco"]) else "–", "mean NCO"),
        (f"{summary['customers']:,}", "customers"),
    ]
    card_html = "".join(
        f'<div class="card"><div class="v">{v}</div><div class="l">{html.escape(label)}</div></div>'
        for v, label in cards
    )
    charts = "".join(
        [
            _histogram_svg(scored["churn_risk"], "Churn risk", fmt=lambda v: f"{v:.2f}"),
            _histogram_svg(scored["clv"], "CLV", clip_quantile=0.99, fmt=lambda v: f"{v:,.0f}"),
            _histogram_svg(scored["nco"], "NCO", fmt=lambda v: f"{v:.0f}"),
        ]
    )
    segment_html = ""
    if segment is not None:
        seg = summarise(scored, by=segment)
        seg_cols = [
            (segment, "Segment", "text"),
            ("customers", "Customers", "int"),
            ("nps", "NPS", "num"),
            ("csat_pct_satisfied", "CSAT %", "num"),
            ("predicted_churn_rate", "Churn rate", "pct"),
            ("total_clv", "CLV", "money"),
            ("total_value_at_risk", "Value at risk", "money"),
            ("mean_nco", "Mean NCO", "num"),
        ]
        segment_html = f"<h2>By {html.escape(segment)}</h2>" + _table(
            seg[[c for c, _, _ in seg_cols]], seg_cols, "segments"
        )
    about = ", ".join(
        f"{html.escape(str(k))}: {html.escape(str(v))}" for k, v in meta.items() if v is not None
    )
    generated = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title><style>{_CSS}</style></head><body>"
        f"<h1>{html.escape(title)}</h1>"
        f'<div class="meta">{about}{"; " if about else ""}generated {generated} by cx-models '
        f"{__version__}</div>"
        f'<h2>Portfolio</h2><div class="cards">{card_html}</div>'
        f'<h2>Distributions</h2><div class="charts">{charts}</div>'
        f"{segment_html}"
        f"<h2>At-risk list: top {len(at_risk):,} by value at risk</h2>"
        '<p class="meta">Value at risk = CLV × churn risk. Click a column to sort. Drivers: '
        "feature = value (contribution to the log-odds of churn).</p>"
        f"{_table(at_risk, _LIST_COLUMNS, 'at-risk')}"
        f"<script>{_JS}</script></body></html>"
    )
