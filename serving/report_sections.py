"""The at-risk report's sections: headline cards, how to read it, notes, history, plan.

Each function returns an HTML fragment; :func:`cx_models.serving.report.render_report`
puts them together.
"""

from __future__ import annotations

import datetime as dt
import html

import numpy as np
import pandas as pd
from cx_models.serving.report_text import ReportContext, fmt_value

__all__ = [
    "VERY_HIGH_RISK",
    "cards",
    "history_table",
    "how_to_read",
    "plan_section",
    "very_high_note",
]

#: Churn risk from which a customer counts as "very high risk" in the explanation.
VERY_HIGH_RISK = 0.9


def cards(summary, ctx: ReportContext, history: list[dict] | None) -> str:
    """Return the headline cards: each number with its horizon, unit and scale."""
    def finite(key, text):
        return text if np.isfinite(summary[key]) else "–"

    cards = [
        (
            fmt_value(summary["predicted_churn_rate"], "pct"),
            f"mean {ctx.churn_label} (predicted share of customers with no purchase)",
        ),
    ]
    if history:
        last = history[0]
        end = dt.date.fromisoformat(last["day"]) + dt.timedelta(days=last["horizon_days"])
        cards.append(
            (
                fmt_value(last["observed_churn_rate"], "pct"),
                f"observed churn, {last['horizon_days']} days to {end}",
            )
        )
    cards += [
        (
            ctx.money(summary["total_value_at_risk"]),
            f"value at risk = CLV × churn risk ({ctx.clv_label})",
        ),
        (ctx.money(summary["total_clv"]), f"total {ctx.clv_label}"),
        (
            finite("nps", f"{summary['nps']:.1f}"),
            f"NPS, −100 to 100 ({summary['nps_respondents']:,} respondents)",
        ),
        (
            finite("csat_pct_satisfied", f"{summary['csat_pct_satisfied']:.1f} %"),
            f"CSAT satisfied: 4–5 of 5 ({summary['csat_respondents']:,} respondents)",
        ),
        (finite("mean_ces", f"{summary['mean_ces']:.2f}"), f"mean {ctx.ces_label}"),
        (finite("mean_nco", f"{summary['mean_nco']:.1f}"), "mean NCO, 0–100 (higher is better)"),
        (f"{summary['customers']:,}", "customers scored"),
    ]
    return "".join(
        f'<div class="card"><div class="v">{v}</div><div class="l">{html.escape(label)}</div></div>'
        for v, label in cards
    )


def how_to_read(ctx: ReportContext) -> str:
    """Return the definitions of churn risk, CLV, value at risk, NCO, coverage, drivers."""
    items = [
        (
            "Churn risk",
            f"The chance that the customer makes no purchase in the {ctx.horizon} "
            "(calibrated on what happened to customers like them in the past). Shown in %.",
        ),
        (
            "CLV",
            f"Customer lifetime value: the expected spend of the customer over the "
            f"{'next ' + str(ctx.clv_months) + ' months' if ctx.clv_months else 'CLV horizon'}, "
            "discounted, already weighted by the chance that they stay (BG/NBD and Gamma-Gamma).",
        ),
        (
            "Value at risk",
            "CLV × churn risk: the value that leaving customers would take with "
            "them. The list is ranked by it: a likely leaver worth little ranks below a less "
            "likely leaver worth much.",
        ),
        (
            "NCO, the Net Customer Outcome",
            "One score from 0 to 100 that adds up how the customer "
            "feels and what they are worth: the weighted mean of the CSAT, NPS and CES scores "
            "(each turned into 0–100: CSAT (x − 1)/4, NPS x × 10, CES (7 − x)/6, or (x − 1)/6 when "
            "higher is better), the retention score 100 × (1 − churn risk) and the value score "
            "(the customer's CLV percentile among the training customers). Higher is better.",
        ),
        (
            "Coverage",
            "The share of the NCO's weight that was available for the customer: a "
            "customer who answered no survey has only retention and value, coverage 50 % with the "
            "default weights. Read a low-coverage NCO as less certain.",
        ),
        (
            "Why at risk",
            "The factors that raise the customer's churn risk most, strongest "
            "first, in words; the model's raw attributions (log-odds) stay in the scored table's "
            "drivers column.",
        ),
    ]
    body = "".join(f"<dt>{html.escape(k)}</dt><dd>{html.escape(v)}</dd>" for k, v in items)
    return f'<h2>How to read this</h2><dl class="read">{body}</dl>'


def very_high_note(scored: pd.DataFrame, ctx: ReportContext) -> str:
    """Return what the customers at very high churn risk are, and their share of value."""
    risk = scored["churn_risk"].to_numpy(dtype=float)
    high = risk >= VERY_HIGH_RISK
    if not high.any():
        return ""
    var = scored["value_at_risk"].to_numpy(dtype=float)
    total = np.nansum(var)
    share = np.nansum(var[high]) / total if total > 0 else float("nan")
    return (
        f'<p class="note">{int(high.sum()):,} of {len(risk):,} customers '
        f"({fmt_value(high.mean(), 'pct')}) have a churn risk of "
        f"{100 * VERY_HIGH_RISK:.0f} % or more: "
        f"most of them have not bought for much longer than they used to, so a purchase in the "
        f"{html.escape(ctx.horizon)} is unlikely. Many are occasional buyers rather than lost "
        f"for good; they hold {fmt_value(share, 'pct')} of the value at risk.</p>"
    )


def history_table(history: list[dict], summary, ctx: ReportContext) -> str:
    """Return past windows' observed churn rates beside the predicted one."""
    rows = "".join(
        f'<tr><td class="text">{w["day"]} to '
        f"{dt.date.fromisoformat(w['day']) + dt.timedelta(days=w['horizon_days'])}</td>"
        f"<td>{w['customers']:,}</td><td>{fmt_value(w['observed_churn_rate'], 'pct')}</td>"
        "<td>–</td></tr>"
        for w in history
    )
    start = ctx.as_of or "as_of"
    rows = (
        f'<tr><td class="text">{html.escape(str(start))} + {ctx.horizon_days or "?"} days'
        f"</td><td>{summary['customers']:,}</td><td>–</td>"
        f"<td>{fmt_value(summary['predicted_churn_rate'], 'pct')}</td></tr>"
    ) + rows
    return (
        "<h2>Churn: predicted and observed</h2>"
        '<p class="note">Observed: of the customers who had bought by the first day, the share '
        "who made no purchase in the window. The prediction is for the coming window.</p>"
        '<div class="wide"><table id="history"><thead><tr><th class="text">Window</th>'
        "<th>Customers</th><th>Observed churn</th><th>Predicted churn</th></tr></thead>"
        f"<tbody>{rows}</tbody></table></div>"
    )


def plan_section(plan: pd.DataFrame, ctx: ReportContext) -> str:
    """Return the campaign plan's summary (from the plan's ``attrs["campaign"]``)."""
    summary = plan.attrs.get("campaign") or {}
    items = [
        ("customers to contact", fmt_value(summary.get("contacted"), "int")),
        ("kept as control", fmt_value(summary.get("control"), "int")),
        ("expected cost", ctx.money(summary.get("expected_cost"))),
        ("expected retained value", ctx.money(summary.get("expected_retained_value"))),
        ("expected profit", ctx.money(summary.get("expected_profit"))),
        (
            "expected return per unit spent",
            fmt_value(summary.get("expected_return"), "num")
            if summary.get("expected_return") is None
            else f"{summary['expected_return']:.2f}",
        ),
    ]
    cards = "".join(
        f'<div class="card"><div class="v">{v}</div><div class="l">{k}</div></div>'
        for k, v in items
    )
    note = html.escape(str(summary.get("assumption", "")))
    return f'<h2>Campaign plan</h2><div class="cards">{cards}</div><p class="note">{note}</p>'
