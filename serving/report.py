"""The retention team's at-risk report: one self-contained HTML file.

No external scripts, styles, fonts or images: charts are inline SVG
(:mod:`cx_models.serving.report_charts`), sorting is a few lines of inline
JavaScript, so the file opens offline and can be mailed. Every headline number
says its horizon, unit and scale (:class:`ReportContext`). Contents: the
portfolio summary; "how to read this" (churn risk, CLV, value at risk, NCO and
its components, coverage, drivers); distributions of churn risk, CLV and NCO with
axes and counts, and what the customers at very high risk have in common; the
observed churn rate of past windows beside the predicted one (when the
transactions are given); the campaign plan (when given); a per-segment table
(when a segment column is named); and the at-risk list ranked by value at risk,
with the factors that raise each customer's risk in plain words
(:mod:`cx_models.serving.report_text`).
"""

from __future__ import annotations

import datetime as dt
import html
import math

import numpy as np
import pandas as pd
from cx_models.serving.report_charts import histogram_svg
from cx_models.serving.report_sections import (
    VERY_HIGH_RISK,
    cards,
    history_table,
    how_to_read,
    plan_section,
    very_high_note,
)
from cx_models.serving.report_text import ReportContext, fmt_value, plain_drivers

from cx_models._version import __version__
from cx_models.errors import CXDataError
from cx_models.nco import summarise

__all__ = ["VERY_HIGH_RISK", "ReportContext", "render_report"]

#: The scored table's columns the report needs.
NEEDED = (
    "priority_rank",
    "customer_id",
    "value_at_risk",
    "churn_risk",
    "clv",
    "nco",
    "nco_coverage",
    "drivers",
)

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:24px;color:#1d2430}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 8px}
.meta{color:#5b6575;font-size:13px}
.cards{display:flex;flex-wrap:wrap;gap:12px;margin-top:12px}
.card{border:1px solid #d8dde6;border-radius:8px;padding:10px 14px;min-width:150px}
.card .v{font-size:20px;font-weight:600}.card .l{font-size:12px;color:#5b6575}
.charts{display:flex;flex-wrap:wrap;gap:18px}.chart{width:420px;max-width:100%;height:auto}
.read{max-width:62em;font-size:14px;line-height:1.45}.read dt{font-weight:600;margin-top:6px}
.read dd{margin:0 0 0 1em}.note{max-width:62em;font-size:13px;color:#394150}
.wide{overflow-x:auto;max-width:100%}
table{border-collapse:collapse;font-size:13px;width:100%}
th,td{border-bottom:1px solid #e6e9ef;padding:5px 8px;text-align:right;vertical-align:top}
th{background:#f3f5f8;cursor:pointer;user-select:none;position:sticky;top:0}
td.text,th.text{text-align:left}td.text{overflow-wrap:anywhere}td.why{min-width:14em}
th.sorted-asc:after{content:" \\25B2"}
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
    var over=0;document.querySelectorAll('td,th,.card').forEach(function(el){
      if(el.scrollWidth>el.clientWidth+1){over++}});
    document.body.setAttribute('data-overflowing',String(over));
  }
})();
"""


def _table(frame: pd.DataFrame, columns, table_id: str) -> str:
    classes = {"text": ' class="text"', "why": ' class="text why"'}
    head = "".join(
        f"<th{classes.get(kind, '')}>{html.escape(label)}</th>" for _, label, kind in columns
    )
    rows = []
    for record in frame.itertuples(index=False):
        cells = []
        for (_, _, kind), value in zip(columns, record, strict=True):
            textual = kind in classes
            raw = (
                ""
                if value is None or (isinstance(value, float) and math.isnan(value))
                else (html.escape(str(value)) if textual else repr(float(value)))
            )
            shown = fmt_value(value, "text" if textual else kind)
            cells.append(f'<td{classes.get(kind, "")} data-v="{raw}">{shown}</td>')
        rows.append("<tr>" + "".join(cells) + "</tr>")
    return (
        f'<table id="{table_id}" class="sortable"><thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table>"
    )


def _list_columns(ctx: ReportContext, with_plan: bool) -> list[tuple[str, str, str]]:
    cur = f" ({ctx.currency})" if ctx.currency else ""
    columns = [
        ("priority_rank", "Rank", "int"),
        ("customer_id", "Customer", "text"),
        ("value_at_risk", f"Value at risk{cur}", "money"),
        ("churn_risk", f"Churn risk, {ctx.horizon}", "pct"),
        ("clv", f"CLV{cur}", "money"),
        ("nco", "NCO (0–100)", "num"),
        ("nco_coverage", "Coverage", "pct"),
        ("why", "Why at risk", "why"),
    ]
    if with_plan:
        columns.append(("contact", "Contact", "text"))
    return columns


def render_report(
    scored: pd.DataFrame,
    *,
    top: int = 500,
    segment: str | None = None,
    title: str = "Customers at risk",
    context: ReportContext | None = None,
    history: list[dict] | None = None,
    plan: pd.DataFrame | None = None,
    retention: str | None = None,
) -> str:
    """Return the report for a scored table (the scoring contract) as one HTML string.

    Parameters
    ----------
    scored : pandas.DataFrame
        The scored table (``cx-models score``).
    top : int
        Customers in the at-risk list.
    segment : str, optional
        A column of ``scored`` for a per-segment table.
    context : ReportContext, optional
        Horizon, CLV settings, currency and model (usually
        :meth:`ReportContext.from_metadata` of the scored table's metadata).
    history : list of dict, optional
        :func:`cx_models.realised.observed_churn_history`, shown beside the prediction.
    plan : pandas.DataFrame, optional
        The campaign plan (``cx-models target``), its summary in ``attrs["campaign"]``.
    retention : str, optional
        The retention section of a subscription base
        (:func:`cx_models.serving.report_retention.retention_section`).

    Examples
    --------
    >>> scored = pd.DataFrame({"customer_id": [1, 2], "churn_risk": [0.9, 0.1],
    ...                        "clv": [100.0, 50.0], "value_at_risk": [90.0, 5.0],
    ...                        "nco": [20.0, 80.0], "nco_coverage": [0.5, 1.0],
    ...                        "priority_rank": [1, 2],
    ...                        "drivers": ["days since last purchase = 280 (+1.20)", ""]})
    >>> page = render_report(scored, context=ReportContext(horizon_days=90))
    >>> page.count("<tr>"), "<script src" in page, "no purchase for 280 days" in page
    (3, False, True)
    """
    missing = [c for c in NEEDED if c not in scored.columns]
    if missing:
        raise CXDataError(
            f"the scored table lacks {', '.join(missing)}; score it with `cx-models score`"
        )
    if segment is not None and segment not in scored.columns:
        raise CXDataError(
            f"segment column {segment!r} not found; found {', '.join(map(str, scored.columns))}"
        )
    ctx = context or ReportContext()
    summary = summarise(scored).iloc[0]
    ranked = scored.sort_values("priority_rank")
    at_risk = ranked.head(int(top)).copy()
    at_risk["why"] = [plain_drivers(text) or "–" for text in at_risk["drivers"]]
    if plan is not None:
        chosen = plan.set_index("customer_id")["contact"]
        at_risk["contact"] = (
            at_risk["customer_id"].map(chosen).map({True: "yes", False: "no"}).fillna("–")
        )
    columns = _list_columns(ctx, plan is not None)
    total_var = float(np.nansum(scored["value_at_risk"]))
    listed_share = float(np.nansum(at_risk["value_at_risk"])) / total_var if total_var else 0.0
    charts = "".join(
        [
            histogram_svg(
                scored["churn_risk"],
                title=f"Churn risk, {ctx.horizon}",
                x_label="churn risk",
                fmt=lambda v: f"{100 * v:.0f} %",
                lo=0,
                hi=1,
            ),
            histogram_svg(
                scored["clv"],
                title=ctx.clv_label,
                x_label="CLV" + (f", {ctx.currency}" if ctx.currency else ""),
                clip_quantile=0.99,
                fmt=lambda v: f"{v:,.0f}",
            ),
            histogram_svg(
                scored["nco"],
                title="NCO",
                x_label="NCO (0–100)",
                fmt=lambda v: f"{v:.0f}",
                lo=0,
                hi=100,
            ),
        ]
    )
    segment_html = ""
    if segment is not None:
        seg = summarise(scored, by=segment)
        seg_cols = [
            (segment, "Segment", "text"),
            ("customers", "Customers", "int"),
            ("nps", "NPS (−100 to 100)", "num"),
            ("csat_pct_satisfied", "CSAT % satisfied", "num"),
            ("predicted_churn_rate", f"Churn risk, {ctx.horizon}", "pct"),
            ("total_clv", "CLV" + (f" ({ctx.currency})" if ctx.currency else ""), "money"),
            ("total_value_at_risk", "Value at risk", "money"),
            ("mean_nco", "Mean NCO", "num"),
        ]
        segment_html = f"<h2>By {html.escape(segment)}</h2>" + _table(
            seg[[c for c, _, _ in seg_cols]], seg_cols, "segments"
        )
    about = "; ".join(
        f"{k}: {html.escape(str(v))}"
        for k, v in (("model", ctx.model_uri), ("scored as of", ctx.as_of))
        if v is not None
    )
    generated = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{html.escape(title)}</title><style>{_CSS}</style></head><body>"
        f"<h1>{html.escape(title)}</h1>"
        f'<div class="meta">{about}{"; " if about else ""}generated {generated} by cx-models '
        f"{__version__}</div>"
        f'<h2>Portfolio</h2><div class="cards">{cards(summary, ctx, history)}</div>'
        f"{how_to_read(ctx)}"
        f'<h2>Distributions</h2><div class="charts">{charts}</div>'
        f"{very_high_note(scored, ctx)}"
        f"{retention or ''}"
        f"{history_table(history, summary, ctx) if history else ''}"
        f"{plan_section(plan, ctx) if plan is not None else ''}"
        f"{segment_html}"
        f"<h2>At-risk list: top {len(at_risk):,} by value at risk</h2>"
        f'<p class="note">These {len(at_risk):,} customers hold '
        f"{fmt_value(listed_share, 'pct')} of the total value at risk "
        f"({ctx.money(total_var)}). Click a column to sort.</p>"
        f'<div class="wide">{_table(at_risk[[c for c, _, _ in columns]], columns, "at-risk")}'
        f"</div><script>{_JS}</script></body></html>"
    )
