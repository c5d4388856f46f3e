"""Words for the at-risk report: numbers with their units, churn drivers in plain language.

:class:`ReportContext` says what the numbers mean (horizon, CLV months and
discounting, currency, CES direction); :func:`fmt_value` writes them.

The scored table keeps the model's own attributions (``drivers``: ``"label = value
(+contribution)"``, log-odds; :mod:`cx_models.drivers`). The report reads them
for people: only the factors that *raise* the risk, each as a short phrase
(``"no purchase for 280 days"``, ``"3.1× their usual gap between purchases"``,
``"latest NPS 4 (detractor)"``), strongest first.
"""

from __future__ import annotations

import html
import math
import re
from dataclasses import dataclass

from cx_models.contract import NPS_BANDS

__all__ = ["ReportContext", "fmt_value", "parse_drivers", "plain_drivers", "plain_factor"]

_PART = re.compile(r"^(?P<label>.+) = (?P<value>\S+) \((?P<contribution>[+-]\d+(?:\.\d+)?)\)$")


def parse_drivers(text) -> list[tuple[str, float | str, float]]:
    """Split a ``drivers`` text into (label, value, contribution) triples; NaN = missing.

    A categorical attribute's value stays text (its level).

    Examples
    --------
    >>> parse_drivers("days since last purchase = 1,240 (+0.81); latest NPS = missing (-0.10)")
    [('days since last purchase', 1240.0, 0.81), ('latest NPS', nan, -0.1)]
    >>> parse_drivers("region = east (+0.20)")
    [('region', 'east', 0.2)]
    """
    if not isinstance(text, str) or not text:
        return []
    out = []
    for part in text.split("; "):
        match = _PART.match(part.strip())
        if match is None:
            continue
        raw = match["value"].replace(",", "")
        try:
            value = float("nan") if raw == "missing" else float(raw)
        except ValueError:
            value = match["value"].strip()  # a level of a categorical attribute
        out.append((match["label"], value, float(match["contribution"])))
    return out


def _n(value: float) -> str:
    if abs(value) >= 100 or value == int(value):
        return f"{value:,.0f}"
    return f"{value:.3g}"


def _pct(value: float) -> str:
    return f"{100 * value:.0f} %"


def _nps_band(score: float) -> str:
    return next(name for name, low in NPS_BANDS if score >= low)


def _trend(what: str, days: str):
    def say(v: float) -> str:
        if v == 0:
            return f"as many {what} in the last {days} days as in the {days} before"
        more = "more" if v > 0 else "fewer"
        return f"{_n(abs(v))} {more} {what} in the last {days} days than in the {days} before"

    return say


# label (as in cx_models.models._booster.FEATURE_LABELS) -> phrase for a value
_PHRASES = {
    "days since last purchase": lambda v: f"no purchase for {_n(v)} days",
    "mean days between purchases": lambda v: f"usually buys every {_n(v)} days",
    "std of days between purchases": lambda v: f"irregular buyer (gaps vary by {_n(v)} days)",
    "days since last / mean gap": lambda v: f"{v:.1f}× their usual gap between purchases",
    "purchases per year": lambda v: f"{_n(v)} purchases a year",
    "recency / age": lambda v: f"quiet for the last {_pct(1 - v)} of their time as a customer",
    "mean spend": lambda v: f"spends {_n(v)} per purchase",
    "mean repeat spend": lambda v: f"spends {_n(v)} per repeat purchase",
    "latest NPS": lambda v: f"latest NPS {_n(v)} ({_nps_band(v)})",
    "mean NPS": lambda v: f"mean NPS {_n(v)}",
    "latest CSAT": lambda v: f"latest CSAT {_n(v)} of 5",
    "mean CSAT": lambda v: f"mean CSAT {_n(v)} of 5",
    "latest CES": lambda v: f"latest CES {_n(v)} of 7",
    "mean CES": lambda v: f"mean CES {_n(v)} of 7",
    "survey answers": lambda v: f"{_n(v)} survey answers",
    "days since NPS answer": lambda v: f"last NPS answer {_n(v)} days ago",
    "days since CSAT answer": lambda v: f"last CSAT answer {_n(v)} days ago",
    "days since CES answer": lambda v: f"last CES answer {_n(v)} days ago",
    "days since latest survey answer": lambda v: f"last survey answer {_n(v)} days ago",
    "latest survey score (0-100)": lambda v: f"latest survey score {_n(v)} of 100",
    "answered a survey since the last purchase": lambda v: (
        "answered a survey since the last purchase"
        if v
        else "no survey answer since the last purchase"
    ),
    "P(alive)": lambda v: f"{_pct(v)} chance of still being a customer",
    "expected purchases": lambda v: f"{_n(v)} purchases expected",
    "BG/NBD P(no purchase)": lambda v: f"{_pct(v)} chance of no purchase (purchase pattern)",
    "CLV": lambda v: f"expected value {_n(v)}",
}
for _w in ("30", "90", "180"):
    _PHRASES[f"purchases in last {_w} days"] = lambda v, w=_w: f"{_n(v)} purchases in {w} days"
    _PHRASES[f"spend in last {_w} days"] = lambda v, w=_w: f"spent {_n(v)} in {w} days"
    _PHRASES[f"purchase trend ({_w} days)"] = _trend("purchases", _w)
_PHRASES["spend trend (180 days)"] = _trend("spend", "180")

# what a missing value means, by the label's subject
_MISSING = (
    ("NPS", "no NPS answer"),
    ("CSAT", "no CSAT answer"),
    ("CES", "no CES answer"),
    ("survey", "no survey answer"),
    ("between purchases", "only one purchase so far"),
    ("gap", "only one purchase so far"),
    ("repeat spend", "no repeat purchase yet"),
)


def plain_factor(label: str, value: float | str) -> str:
    """Return one driver as a phrase.

    Examples
    --------
    >>> plain_factor("days since last purchase", 280.0)
    'no purchase for 280 days'
    >>> plain_factor("latest NPS", 4.0), plain_factor("latest CSAT", float("nan"))
    ('latest NPS 4 (detractor)', 'no CSAT answer')
    >>> plain_factor("region", "east")
    'region: east'
    """
    if isinstance(value, str):
        return f"{label}: {value}"
    if math.isnan(value):
        return next((text for key, text in _MISSING if key in label), f"{label} unknown")
    phrase = _PHRASES.get(label)
    return phrase(value) if phrase is not None else f"{label} {_n(value)}"


def plain_drivers(text, *, top: int = 3) -> str:
    """Return the factors that raise a customer's churn risk, in words, strongest first.

    Examples
    --------
    >>> plain_drivers("days since last / mean gap = 3.12 (+0.90); "
    ...               "latest NPS = 4 (+0.30); purchases per year = 6 (-0.20)")
    '3.1× their usual gap between purchases; latest NPS 4 (detractor)'
    """
    raising = [(c, label, v) for label, v, c in parse_drivers(text) if c > 0]
    raising.sort(key=lambda item: -item[0])
    return "; ".join(plain_factor(label, v) for _, label, v in raising[:top])


@dataclass(frozen=True)
class ReportContext:
    """What the report's numbers mean: horizon, CLV settings, currency, CES direction, model.

    Examples
    --------
    >>> c = ReportContext.from_metadata({"horizon_days": 90, "clv_months": 12,
    ...                                  "discount_rate": 0.1}, currency="EUR")
    >>> c.churn_label, c.clv_label
    ('churn risk, next 90 days', 'CLV, next 12 months, discounted 10 %/yr, EUR')
    """

    horizon_days: int | None = None
    clv_months: int | None = None
    discount_rate: float | None = None
    currency: str = ""
    ces_higher_is_better: bool = False
    model_uri: str | None = None
    as_of: str | None = None

    @classmethod
    def from_metadata(cls, meta: dict | None, *, currency: str = "") -> ReportContext:
        """Read the context from a scored table's ``cx_models`` metadata."""
        meta = meta or {}

        def number(key, kind):
            value = meta.get(key)
            try:
                return None if value is None else kind(value)
            except (TypeError, ValueError):
                return None

        return cls(
            horizon_days=number("horizon_days", lambda v: int(float(v))),
            clv_months=number("clv_months", lambda v: int(float(v))),
            discount_rate=number("discount_rate", float),
            currency=str(currency or meta.get("currency") or ""),
            ces_higher_is_better=str(meta.get("ces_higher_is_better", "")).lower() == "true",
            model_uri=meta.get("model_uri"),
            as_of=meta.get("as_of"),
        )

    @property
    def horizon(self) -> str:
        """``"next 90 days"`` (or ``"the trained horizon"`` when unknown)."""
        return f"next {self.horizon_days} days" if self.horizon_days else "the trained horizon"

    @property
    def churn_label(self) -> str:
        """How churn risk is labelled."""
        return f"churn risk, {self.horizon}"

    @property
    def clv_label(self) -> str:
        """How CLV is labelled: horizon, discounting and currency."""
        parts = ["CLV"]
        if self.clv_months:
            parts.append(f"next {self.clv_months} months")
        if self.discount_rate is not None:
            parts.append(f"discounted {100 * self.discount_rate:g} %/yr")
        if self.currency:
            parts.append(self.currency)
        return ", ".join(parts)

    @property
    def ces_label(self) -> str:
        """The CES scale and its direction."""
        return "CES 1–7, " + (
            "higher is better" if self.ces_higher_is_better else "lower is better"
        )

    def money(self, value) -> str:
        """Write an amount with the currency."""
        text = fmt_value(value, "money")
        return f"{text} {self.currency}" if self.currency and text != "–" else text


def fmt_value(value, kind: str) -> str:
    """Write a value for the report: ``money``, ``pct`` (0-1 as %), ``int``, ``num`` or text."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if kind == "money":
        return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:,.2f}"
    if kind == "pct":
        return f"{100 * value:.1f} %"
    if kind == "int":
        return f"{int(value):,}"
    if kind == "num":
        return f"{value:.1f}"
    return html.escape(str(value))
