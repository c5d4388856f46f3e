"""Calibration / holdout validation of the CLV model, with plots.

Fit on the calibration period (transactions up to ``calibration_end``), predict
the holdout (the day after ``calibration_end`` to ``holdout_end`` inclusive) and
compare with what happened. Purchases are counted as purchase occasions
(distinct customer-days), as in the features; totals are over the calibration
customers (customers first seen in the holdout are not predicted).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import polars as pl

from cx_models.errors import CXDataError
from cx_models.features import features_from_validated, to_pandas_features
from cx_models.legacy_keywords import from_keywords
from cx_models.models._families import family
from cx_models.models.clv import CLVModel
from cx_models.schemas import validate_transactions
from cx_models.settings import EventFormat, FeatureSpec
from cx_models.timeutil import parse_as_of

__all__ = ["holdout_actuals", "validate_clv"]

_MAX_FREQUENCY_BIN = 7


def holdout_actuals(tx: pl.DataFrame, start: dt.date, end: dt.date) -> pl.DataFrame:
    """Return holdout occasions (distinct purchase days) and spend per customer with any."""
    day = pl.col("timestamp").dt.date()
    return (
        tx.filter((day > start) & (day <= end))
        .group_by("customer_id", day.alias("day"))
        .agg(pl.col("amount").sum())
        .group_by("customer_id")
        .agg(
            pl.len().cast(pl.Float64).alias("actual_purchases"),
            pl.col("amount").sum().alias("actual_spend"),
        )
    )


def _corr(a: np.ndarray, b: np.ndarray) -> float | None:
    if a.size < 2 or np.std(a) == 0 or np.std(b) == 0:
        return None
    return float(np.corrcoef(a, b)[0, 1])


def validate_clv(
    transactions,
    *,
    calibration_end,
    holdout_end,
    model: str = "bgnbd",
    penalizer: float = 0.0,
    spec: FeatureSpec | None = None,
    fmt: EventFormat | None = None,
    plots_dir=None,
    **keywords,
) -> dict:
    """Fit on the calibration period and compare predictions with the holdout.

    Parameters
    ----------
    transactions : path, pandas.DataFrame or polars.DataFrame
        Transactions in the default contract (or read as ``fmt`` says).
    calibration_end, holdout_end : str or date
        Calendar days; the holdout runs from the day after ``calibration_end``
        to ``holdout_end`` inclusive.
    model, penalizer
        As in :class:`~cx_models.models.clv.CLVModel`.
    spec : FeatureSpec, optional
        Its ``time_unit`` is the unit the model is fitted in (predictions do not
        depend on it).
    fmt : EventFormat, optional
        How to read the transactions.
    plots_dir : path, optional
        Where to write ``holdout_by_frequency.png``, ``tracking.png`` and
        ``p_alive_matrix.png``.

    Returns
    -------
    dict
        JSON-friendly report: ``params``, ``spend_params``, ``standard_errors``,
        ``holdout`` (totals, MAE, correlations), ``by_frequency`` and the
        validation counts.

    Examples
    --------
    >>> from cx_models.datasets import load_cdnow
    >>> rep = validate_clv(load_cdnow("sample"), calibration_end="1997-09-30",
    ...                    holdout_end="1998-06-30",
    ...                    spec=FeatureSpec(time_unit="W"))
    >>> rep["holdout"]["purchases_actual"], round(rep["holdout"]["purchases_predicted"])
    (1882.0, 1653)
    """
    start = parse_as_of(calibration_end, name="calibration_end")
    end = parse_as_of(holdout_end, name="holdout_end")
    fmt, spec = from_keywords("validate_clv", keywords, fmt=fmt, spec=spec)
    if end <= start:
        raise CXDataError(
            f"holdout_end {end} must be after calibration_end {start}: the holdout is the "
            "period after calibration"
        )
    validated = validate_transactions(transactions, as_of=end, fmt=fmt)
    tx = validated.data
    first_day = tx["timestamp"].min().date()
    if first_day > start:
        raise CXDataError(
            f"{validated.report.source}: no transaction at or before calibration_end {start} "
            f"(the first is on {first_day})"
        )
    calib, _ = features_from_validated(tx, None, as_of=start, spec=spec)
    features = to_pandas_features(calib, as_of=start, spec=spec)
    clv = CLVModel(model=model, penalizer=penalizer).fit(features)
    horizon_days = (end - start).days
    pred = clv.predict(features, horizon_days=horizon_days, clv_months=0)
    actual = (
        calib.select("customer_id")
        .join(holdout_actuals(tx, start, end), on="customer_id", how="left")
        .fill_null(0.0)
    )
    a_n = actual["actual_purchases"].to_numpy()
    a_s = actual["actual_spend"].to_numpy()
    p_n = pred["expected_purchases"].to_numpy()
    p_s = p_n * pred["expected_order_value"].to_numpy()
    freq = features["frequency"].to_numpy()
    by_frequency = []
    for k in range(_MAX_FREQUENCY_BIN + 1):
        sel = freq >= k if k == _MAX_FREQUENCY_BIN else freq == k
        label = f"{k}+" if k == _MAX_FREQUENCY_BIN else str(k)
        by_frequency.append(
            {
                "frequency": label,
                "n_customers": int(sel.sum()),
                "actual_mean": float(a_n[sel].mean()) if sel.any() else None,
                "predicted_mean": float(p_n[sel].mean()) if sel.any() else None,
            }
        )
    report = {
        "model": model,
        "time_unit": spec.time_unit,
        "calibration_end": start.isoformat(),
        "holdout_end": end.isoformat(),
        "holdout_days": horizon_days,
        "n_customers": int(len(features)),
        "params": clv.params_,
        "spend_params": clv.spend_params_,
        "standard_errors": clv.standard_errors_,
        "log_likelihood": clv.log_likelihood_,
        "holdout": {
            "purchases_actual": float(a_n.sum()),
            "purchases_predicted": float(p_n.sum()),
            "purchases_mae": float(np.abs(a_n - p_n).mean()),
            "purchases_corr": _corr(a_n, p_n),
            "spend_actual": float(a_s.sum()),
            "spend_predicted": float(p_s.sum()),
            "spend_corr": _corr(a_s, p_s),
        },
        "by_frequency": by_frequency,
        "transactions": validated.report.to_dict(),
    }
    if plots_dir is not None:
        report["plots"] = _plots(Path(plots_dir), clv, tx, features, report, start, end)
    return report


def _plots(out: Path, clv: CLVModel, tx, features, report, start, end) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out.mkdir(parents=True, exist_ok=True)
    paths = []

    # 1. holdout purchases by calibration frequency
    rows = report["by_frequency"]
    labels = [r["frequency"] for r in rows]
    fig, ax = plt.subplots(figsize=(7, 4))
    pos = np.arange(len(rows))
    ax.bar(pos - 0.2, [r["actual_mean"] or 0 for r in rows], 0.4, label="actual")
    ax.bar(pos + 0.2, [r["predicted_mean"] or 0 for r in rows], 0.4, label="predicted")
    ax.set_xticks(pos, labels)
    ax.set_xlabel("repeat purchases in calibration (frequency)")
    ax.set_ylabel(f"mean purchases in the {report['holdout_days']}-day holdout")
    ax.set_title("Holdout purchases by calibration frequency")
    ax.legend()
    paths.append(_save(fig, out / "holdout_by_frequency.png"))

    # 2. tracking plot: cumulative repeat purchases, actual vs model
    occ = (
        tx.with_columns(pl.col("timestamp").dt.date().alias("day"))
        .filter(pl.col("day") <= end)
        .select("customer_id", "day")
        .unique()
    )
    firsts = occ.group_by("customer_id").agg(pl.col("day").min().alias("first"))
    firsts = firsts.filter(pl.col("first") <= start)
    repeat = occ.join(firsts, on="customer_id").filter(pl.col("day") > pl.col("first"))
    days = pl.date_range(firsts["first"].min(), end, "1d", eager=True)
    daily = repeat.group_by("day").len().rename({"len": "n"})
    actual = (
        pl.DataFrame({"day": days}).join(daily, on="day", how="left").fill_null(0)["n"].cum_sum()
    )
    cohort = firsts.group_by("first").len()
    unit_days = clv._unit_days()  # a BG/BB period: period_days
    model = family(clv.model)
    params = tuple(clv.params_[k] for k in model.params)
    grid = np.array([(d - days[0]).days for d in days.to_list()], dtype=float)
    offsets = np.array([(d - days[0]).days for d in cohort["first"].to_list()], dtype=float)
    age = np.clip(grid[:, None] - offsets[None, :], 0, None) / unit_days
    expected = model.expected_purchases(params, age) @ cohort["len"].to_numpy()
    fig, ax = plt.subplots(figsize=(8, 4))
    ax.plot(days.to_list(), actual.to_numpy(), label="actual")
    ax.plot(days.to_list(), expected, "--", label="model")
    ax.axvline(start, color="grey", linestyle=":", label="calibration end")
    ax.set_ylabel("cumulative repeat purchases")
    ax.set_title("Tracking: cumulative repeat purchases (calibration customers)")
    ax.legend()
    fig.autofmt_xdate()
    paths.append(_save(fig, out / "tracking.png"))

    # 3. P(alive) by frequency and recency, for a customer of the oldest age
    if clv.time_unit_ == "P":  # BG/BB: the history in periods
        features = clv._period_table(features)
    T_max = float(features["T"].max())
    max_f = int(min(features["frequency"].quantile(0.99), 60))
    f_grid, r_grid = np.meshgrid(np.arange(max_f + 1), np.linspace(0, T_max, 80))
    alive = model.p_alive(
        params,
        f_grid.ravel(),
        np.where(f_grid == 0, 0.0, r_grid).ravel(),
        np.full(f_grid.size, T_max),
    ).reshape(f_grid.shape)
    fig, ax = plt.subplots(figsize=(6, 5))
    im = ax.imshow(
        alive,
        origin="lower",
        aspect="auto",
        extent=(0, max_f, 0, T_max),
        vmin=0,
        vmax=1,
        cmap="viridis",
    )
    ax.set_xlabel("frequency (repeat purchases)")
    ax.set_ylabel(f"recency ({clv.time_unit_})")
    ax.set_title(f"P(alive) at T = {T_max:.0f} {clv.time_unit_}")
    fig.colorbar(im, ax=ax)
    paths.append(_save(fig, out / "p_alive_matrix.png"))
    return paths


def _save(fig, path: Path) -> str:
    import matplotlib.pyplot as plt

    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return str(path)
