"""Inline SVG charts for the at-risk report: histograms with axes, ticks, counts and labels.

No scripts or external files: each chart is one ``<svg>`` element that scales
with the page (``viewBox``) and says what it shows in its title, its axis titles
and a tooltip per bar (range and number of customers).
"""

from __future__ import annotations

import html
import math

import numpy as np

__all__ = ["histogram_svg", "nice_ticks"]

_W, _H = 420, 230
_LEFT, _RIGHT, _TOP, _BOTTOM = 56, 26, 28, 46


def nice_ticks(lo: float, hi: float, count: int = 5) -> list[float]:
    """Round tick values covering ``[lo, hi]`` (1, 2 or 5 times a power of ten apart).

    Examples
    --------
    >>> nice_ticks(0, 1)
    [0.0, 0.2, 0.4, 0.6, 0.8, 1.0]
    >>> nice_ticks(0, 9124, 4)
    [0.0, 5000.0, 10000.0]
    """
    if not (math.isfinite(lo) and math.isfinite(hi)) or hi <= lo:
        return [float(lo)]
    raw = (hi - lo) / max(count, 1)
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    start = math.floor(lo / step) * step
    ticks, value = [], start
    while value < hi + step * 0.5:
        ticks.append(round(value, 12))
        value += step
    if ticks[-1] < hi:
        ticks.append(round(value, 12))
    return [float(t) for t in ticks]


def histogram_svg(
    values,
    *,
    title: str,
    x_label: str,
    fmt,
    bins: int = 20,
    clip_quantile: float | None = None,
    lo: float | None = None,
    hi: float | None = None,
) -> str:
    """Return a histogram of ``values`` as inline SVG, with axes and counts.

    ``fmt`` writes an x value (e.g. ``lambda v: f"{100 * v:.0f} %"``); ``lo`` and
    ``hi`` fix the x range (else the data's, the top ``1 - clip_quantile`` share
    piled into the last bar and said so in the title).

    Examples
    --------
    >>> svg = histogram_svg([0.1, 0.2, 0.95], title="Churn risk", x_label="risk",
    ...                     fmt=lambda v: f"{100 * v:.0f} %", lo=0, hi=1, bins=10)
    >>> svg.count("<rect"), "customers" in svg, ">100 %<" in svg
    (10, True, True)
    """
    data = np.asarray(values, dtype=float)
    data = data[np.isfinite(data)]
    name = html.escape(title)
    if data.size == 0:
        return (
            f'<svg viewBox="0 0 {_W} {_H}" role="img"><title>{name}</title>'
            f'<text x="{_LEFT}" y="{_TOP}" font-size="13">{name}: no values</text></svg>'
        )
    clipped = clip_quantile is not None and hi is None
    lo = float(data.min()) if lo is None else float(lo)
    hi = float(np.quantile(data, clip_quantile) if clipped else data.max()) if hi is None else hi
    if hi <= lo:
        hi = lo + 1.0
    counts, edges = np.histogram(np.clip(data, lo, hi), bins=bins, range=(lo, hi))
    y_ticks = nice_ticks(0, max(int(counts.max()), 1), 4)
    y_top = y_ticks[-1] or 1.0
    plot_w, plot_h = _W - _LEFT - _RIGHT, _H - _TOP - _BOTTOM
    base = _TOP + plot_h

    def x_at(v: float) -> float:
        return _LEFT + (v - lo) / (hi - lo) * plot_w

    def y_at(c: float) -> float:
        return base - c / y_top * plot_h

    parts = []
    for t in y_ticks:
        y = y_at(t)
        parts.append(
            f'<line x1="{_LEFT}" y1="{y:.1f}" x2="{_W - _RIGHT}" y2="{y:.1f}" stroke="#e6e9ef"/>'
        )
        parts.append(
            f'<text x="{_LEFT - 6}" y="{y + 4:.1f}" font-size="11" '
            f'text-anchor="end">{t:,.0f}</text>'
        )
    bar_w = plot_w / bins
    for i, c in enumerate(counts):
        top = y_at(c)
        label = f"{fmt(edges[i])} to {fmt(edges[i + 1])}: {int(c):,} customers"
        parts.append(
            f'<rect x="{_LEFT + i * bar_w + 0.5:.1f}" y="{top:.1f}" '
            f'width="{max(bar_w - 1, 1):.1f}" height="{base - top:.1f}" fill="#4c78a8">'
            f"<title>{html.escape(label)}</title></rect>"
        )
    for t in nice_ticks(lo, hi, 5):
        if lo - 1e-9 <= t <= hi + 1e-9:
            x = x_at(t)
            parts.append(
                f'<line x1="{x:.1f}" y1="{base}" x2="{x:.1f}" y2="{base + 4}" stroke="#888"/>'
            )
            parts.append(
                f'<text x="{x:.1f}" y="{base + 16}" font-size="11" '
                f'text-anchor="middle">{html.escape(fmt(t))}</text>'
            )
    if clipped:
        x_label = f"{x_label} (top {100 * (1 - clip_quantile):g} % in the last bar)"
    return (
        f'<svg viewBox="0 0 {_W} {_H}" role="img" xmlns="http://www.w3.org/2000/svg" '
        f'class="chart"><title>{name}</title>'
        f'<text x="{_LEFT}" y="16" font-size="13" font-weight="600">{name}</text>'
        + "".join(parts)
        + f'<line x1="{_LEFT}" y1="{base}" x2="{_W - _RIGHT}" y2="{base}" stroke="#888"/>'
        f'<line x1="{_LEFT}" y1="{_TOP}" x2="{_LEFT}" y2="{base}" stroke="#888"/>'
        f'<text x="{_LEFT + plot_w / 2:.1f}" y="{_H - 6}" font-size="12" '
        f'text-anchor="middle">{html.escape(x_label)}</text>'
        f'<text transform="translate(14 {_TOP + plot_h / 2:.1f}) rotate(-90)" font-size="12" '
        'text-anchor="middle">customers</text></svg>'
    )
