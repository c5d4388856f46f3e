"""The report's retention section for a subscription base: curves and the cohort matrix.

:func:`retention_figures` computes, from the relationships seen on the scoring day,
the Kaplan–Meier survival by tenure beside the shifted-beta-geometric fit, and the
cohort × tenure matrix of observed retention rates; :func:`retention_section`
renders them as two tables (the matrix shaded by rate), self-contained like the
rest of the report.
"""

from __future__ import annotations

import html
import math

import numpy as np
import pandas as pd

__all__ = ["retention_figures", "retention_section"]

#: Tenures shown in the curve table, and cohorts and tenures in the matrix.
CURVE_PERIODS = 12
MATRIX_COHORTS = 12
MATRIX_TENURES = 12


def retention_figures(rels, *, as_of, period) -> dict:
    """Return the curves (``tenure, at_risk, observed, sbg``) and the cohort matrix."""
    from cx_models.errors import CXDataError
    from cx_models.retention import kaplan_meier, retention_matrix, retention_rates
    from cx_models.sbg import SBGModel

    km = kaplan_meier(rels["renewals"].to_numpy(), rels["lost"].to_numpy()).to_pandas()
    curve = km.head(CURVE_PERIODS + 1)[["tenure", "at_risk", "survival"]].rename(
        columns={"survival": "observed"})
    try:
        sbg = SBGModel(period).fit_relationships(rels)
        curve["sbg"] = sbg.survival(int(curve["tenure"].max()))[: len(curve)]
        fit = sbg.params_
    except CXDataError:
        curve["sbg"], fit = np.nan, None
    try:
        matrix = retention_matrix(retention_rates(rels, as_of=as_of, period=period)).to_pandas()
    except CXDataError:
        matrix = pd.DataFrame()
    return {"curve": curve, "matrix": matrix, "sbg": fit}


def _pct(value) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return f"{100 * float(value):.1f} %"


def retention_section(figures: dict, *, period_label: str) -> str:
    """Render :func:`retention_figures` as HTML."""
    curve, matrix, fit = figures["curve"], figures["matrix"], figures["sbg"]
    rows = "".join(
        f"<tr><td>{int(r.tenure)}</td><td>{int(r.at_risk):,}</td><td>{_pct(r.observed)}</td>"
        f"<td>{_pct(r.sbg)}</td></tr>"
        for r in curve.itertuples(index=False)
    )
    about = ("" if fit is None else
             f" The shifted-beta-geometric fit: α = {fit['alpha']:.3f}, β = {fit['beta']:.3f}.")
    out = [
        "<h2>Retention</h2>",
        f'<p class="note">Share of relationships still active after each renewal ({period_label}'
        " billing periods): observed (Kaplan–Meier, right-censored relationships included) and "
        f"the shifted-beta-geometric model's curve.{html.escape(about)}</p>",
        '<table class="sortable"><thead><tr><th>Renewals</th><th>At risk</th>'
        f"<th>Observed</th><th>sBG</th></tr></thead><tbody>{rows}</tbody></table>",
    ]
    if not matrix.empty:
        shown = matrix.tail(MATRIX_COHORTS)
        tenures = [c for c in shown.columns if c != "cohort"][:MATRIX_TENURES]
        head = "".join(f"<th>{html.escape(str(t))}</th>" for t in tenures)
        body = []
        for record in shown.itertuples(index=False):
            values = dict(zip(shown.columns, record, strict=True))
            cells = []
            for t in tenures:
                v = values[t]
                missing = v is None or (isinstance(v, float) and math.isnan(v))
                alpha = 0.15 + 0.6 * float(v) if not missing else 0.0
                shade = "" if missing else f' style="background:rgba(46,125,50,{alpha:.2f})"'
                cells.append(f"<td{shade}>{_pct(v)}</td>")
            body.append(f"<tr><td class=\"text\">{html.escape(str(values['cohort']))}</td>"
                        + "".join(cells) + "</tr>")
        out += [
            "<h3>Retention rate by acquisition cohort and tenure</h3>",
            '<p class="note">Each cell: of the customers of that cohort active at the start of a '
            "period, the share still active at its end (customers acquired during a period count "
            f"in neither). Latest {len(shown)} cohorts, first {len(tenures)} periods.</p>",
            f'<div class="wide"><table><thead><tr><th class="text">Cohort</th>{head}</tr>'
            f"</thead><tbody>{''.join(body)}</tbody></table></div>",
        ]
    return "".join(out)
