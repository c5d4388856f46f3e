"""Churn labels and leakage-safe training snapshots.

Churn, for a non-contractual business: **no purchase in the ``horizon_days`` days
after the snapshot day** — purchases dated from ``s + 1 day`` to
``s + horizon_days`` inclusive.

Given data up to ``as_of``, training snapshots are taken at ``as_of - horizon``,
``as_of - horizon - step``, ... so that every label window ends at or before
``as_of``. Every feature of a snapshot — the CLV model's outputs included, the
BG/NBD being refitted on each snapshot — is computed from events at or before
that snapshot only; customers enter a snapshot once they have made a purchase.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import polars as pl

from cx_models.clv_fallback import FALLBACK_PENALIZER, FALLBACK_PENALIZERS, fit_snapshot_clv
from cx_models.columns import as_float
from cx_models.errors import ConvergenceError, CXDataError
from cx_models.features import features_from_validated, to_pandas_features
from cx_models.models.clv import CLVModel
from cx_models.settings import FeatureSpec, SnapshotPlan
from cx_models.snapshot_design import NotEnoughHistory, design_snapshots, snapshot_dates
from cx_models.timeutil import as_of_cutoff, parse_as_of

__all__ = [
    "CHURN_FEATURES",
    "FALLBACK_PENALIZER",
    "FALLBACK_PENALIZERS",
    "MIN_CLASS_ROWS",
    "SAMPLE_SEED",
    "SnapshotCache",
    "add_model_features",
    "churn_labels",
    "fit_snapshot_clv",
    "snapshot_dates",
    "snapshot_features",
    "sample_rows",
    "training_snapshots",
]

#: Features of the churn model: quantities that mean the same at any customer age
#: (rates, gaps, recent windows, survey answers) plus the CLV model's outputs for
#: the churn horizon. Counts and ages that only grow (T, tenure, frequency) are left
#: out: trees do not extrapolate to customers older than any in training.
CHURN_FEATURES = (
    "days_since_last_purchase",
    "mean_gap_days",
    "std_gap_days",
    "gap_ratio",
    "purchase_rate_per_year",
    "recency_share",
    "mean_spend",
    "monetary_value",
    "purchases_30d",
    "spend_30d",
    "purchases_trend_30d",
    "purchases_90d",
    "spend_90d",
    "purchases_trend_90d",
    "purchases_180d",
    "spend_180d",
    "purchases_trend_180d",
    "spend_trend_180d",
    "nps_latest",
    "nps_mean",
    "nps_days_since",
    "csat_latest",
    "csat_mean",
    "csat_days_since",
    "ces_latest",
    "ces_mean",
    "ces_days_since",
    "survey_count",
    "latest_experience",
    "latest_experience_days_since",
    "answered_since_last_purchase",
    "p_alive",
    "expected_purchases",
    "prob_no_purchase",
    "clv",
)


#: The churn feature ``clv`` is always 12 months at 10 % a year, in training and scoring
#: alike, whatever CLV settings a scorer reports.
CHURN_CLV_MONTHS = 12
CHURN_CLV_DISCOUNT_RATE = 0.10


def churn_labels(transactions: pl.DataFrame, customers, *, as_of, horizon_days: int) -> np.ndarray:
    """Return 1 for each customer with no purchase in ``(as_of, as_of + horizon_days]``.

    Parameters
    ----------
    transactions : polars.DataFrame
        Validated transactions (``customer_id``, ``timestamp``) that reach past ``as_of``.
    customers : array_like
        Customer ids, in the order of the labels returned.
    as_of : str or date
        The snapshot day; the window starts the next day.
    horizon_days : int
        Window length in days.

    Examples
    --------
    >>> tx = pl.DataFrame({"customer_id": [1, 2, 2],
    ...                    "timestamp": [dt.datetime(2024, 1, 1), dt.datetime(2024, 1, 31, 23),
    ...                                  dt.datetime(2024, 2, 1)]})
    >>> churn_labels(tx, [1, 2], as_of="2024-01-01", horizon_days=30).tolist()
    [1, 0]
    """
    as_of = parse_as_of(as_of)
    start = as_of_cutoff(as_of)
    end = as_of_cutoff(as_of + dt.timedelta(days=int(horizon_days)))
    buyers = transactions.filter(
        (pl.col("timestamp") >= start) & (pl.col("timestamp") < end)
    ).select(pl.col("customer_id").unique())["customer_id"]
    ids = pl.Series("customer_id", customers).cast(transactions["customer_id"].dtype)
    return (~ids.is_in(buyers.implode())).cast(pl.Int8).to_numpy()


def model_feature_arrays(
    features: pd.DataFrame, clv: CLVModel, *, horizon_days: int
) -> dict[str, np.ndarray]:
    """Return the derived rates and the CLV model's outputs as arrays, one per new column.

    The columns :func:`add_model_features` adds, without building a frame (the
    scorer's per-call path): the churn features, plus ``expected_order_value``.
    """

    def col(name: str) -> np.ndarray:
        return as_float(features[name])

    out: dict[str, np.ndarray] = {}
    tenure, t = col("tenure_days"), col("T")
    with np.errstate(divide="ignore", invalid="ignore"):
        out["purchase_rate_per_year"] = np.where(
            tenure > 0, col("frequency") / tenure * 365.25, np.nan
        )
        out["recency_share"] = np.where(t > 0, col("recency") / t, np.nan)
    counts = np.column_stack([col("nps_count"), col("csat_count"), col("ces_count")])
    out["survey_count"] = np.nansum(counts, axis=1)
    # The most recent answer of any type, on 0-100 (100 = best, CES by its declared
    # default direction), and how long ago it came.
    normalised = np.column_stack(
        [
            col("nps_latest") * 10.0,
            (col("csat_latest") - 1.0) / 4.0 * 100.0,
            (7.0 - col("ces_latest")) / 6.0 * 100.0,
        ]
    )
    since = np.column_stack([col("nps_days_since"), col("csat_days_since"), col("ces_days_since")])
    any_answer = ~np.isnan(since).all(axis=1)
    newest = np.argmin(np.where(np.isnan(since), np.inf, since), axis=1)
    rows = np.arange(len(features))
    out["latest_experience"] = np.where(any_answer, normalised[rows, newest], np.nan)
    out["latest_experience_days_since"] = np.where(any_answer, since[rows, newest], np.nan)
    # feedback given on or after the last purchase day: the experience that came last
    out["answered_since_last_purchase"] = np.where(
        any_answer,
        (since[rows, newest] <= col("days_since_last_purchase")).astype(float),
        np.nan,
    )
    pred = clv.predict_arrays(
        features,
        horizon_days=horizon_days,
        clv_months=CHURN_CLV_MONTHS,
        discount_rate=CHURN_CLV_DISCOUNT_RATE,
    )
    # the churn features, plus expected_order_value for the scorer (not a churn feature)
    for name in (
        "p_alive",
        "expected_purchases",
        "prob_no_purchase",
        "clv",
        "expected_order_value",
    ):
        out[name] = pred[name]
    return out


def add_model_features(features: pd.DataFrame, clv: CLVModel, *, horizon_days: int) -> pd.DataFrame:
    """Add the derived rates and the CLV model's outputs for the churn horizon."""
    new = model_feature_arrays(features, clv, horizon_days=horizon_days)
    out = features.drop(columns=[c for c in new if c in features.columns])
    out = pd.concat([out, pd.DataFrame(new, index=features.index)], axis=1)
    out.attrs = dict(features.attrs)
    return out


class SnapshotCache:
    """The snapshots one training run has built, reused by day and feature definition.

    A snapshot's features come from events at or before its day only, so the same day
    with the same definition gives the same frame whichever later data the caller
    holds: with the step equal to the horizon the forward evaluation's snapshots and
    the day it is evaluated on are days of the final model's design too, and are
    built once. A cache belongs to one run's validated data (its key does not hold
    the data); a CLV fit that failed is not cached (it raises again). A frame is
    handed out once (the final model's design takes each day once), as a shallow
    copy: callers add columns, never change the values of the ones built.

    Examples
    --------
    >>> cache = SnapshotCache()
    >>> cache.get(("1997-01-01", 91)) is None
    True
    """

    def __init__(self):
        self._entries: list[tuple[tuple, pd.DataFrame, CLVModel]] = []

    def get(self, key: tuple) -> tuple[pd.DataFrame, CLVModel] | None:
        """Take the frame built under ``key`` and its CLV fit out of the cache, or ``None``."""
        for i, (known, frame, clv) in enumerate(self._entries):
            if known == key:
                del self._entries[i]
                return frame, clv
        return None

    def put(self, key: tuple, frame: pd.DataFrame, clv: CLVModel) -> None:
        """Keep ``frame`` (a shallow copy) and its CLV fit under ``key``."""
        self._entries.append((key, frame.copy(deep=False), clv))


def snapshot_features(
    transactions: pl.DataFrame,
    surveys: pl.DataFrame | None,
    *,
    as_of,
    horizon_days: int,
    spec: FeatureSpec | None = None,
    clv_model: CLVModel | str = "bgnbd",
    attributes: pl.DataFrame | None = None,
    cache: SnapshotCache | None = None,
) -> tuple[pd.DataFrame, CLVModel]:
    """Features of every customer acquired by ``as_of``, from events at or before it.

    The features follow ``spec``; ``clv_model`` is a fitted CLV model, or the name
    of the transaction model to fit on this snapshot (with
    :data:`FALLBACK_PENALIZERS` while the plain fit is not identified; the model's
    ``penalizer`` says which). Validated customer ``attributes`` (static) are
    joined to every snapshot alike. A ``cache`` (:class:`SnapshotCache`) returns a
    snapshot this run already built with a CLV model fitted on it.
    """
    as_of = parse_as_of(as_of)
    spec = spec or FeatureSpec()
    fits_here = isinstance(clv_model, str)
    joined = None if attributes is None else id(attributes)
    key = (as_of, int(horizon_days), spec, clv_model, joined)
    if cache is not None and fits_here and (known := cache.get(key)) is not None:
        return known
    feats, _ = features_from_validated(
        transactions, surveys, as_of=as_of, spec=spec, attributes=attributes
    )
    frame = to_pandas_features(feats, as_of=as_of, spec=spec)
    clv = clv_model if not fits_here else fit_snapshot_clv(frame, clv_model)
    out = add_model_features(frame, clv, horizon_days=horizon_days)
    if cache is not None and fits_here:
        cache.put(key, out, clv)
    return out, clv


#: The fewest rows of either outcome (churned, bought again) that churn is learnt from.
MIN_CLASS_ROWS = 20

#: The seed of the training-row sample (:func:`sample_rows`).
SAMPLE_SEED = 0


def sample_rows(
    parts: list[pd.DataFrame], max_rows: int | None
) -> tuple[list[pd.DataFrame], dict | None]:
    """Keep at most ``max_rows`` rows: the same seeded random share of every snapshot.

    Returns the parts (unchanged when they fit) and what was sampled (``None`` when
    nothing was): rows before and after, and the share kept.

    Examples
    --------
    >>> parts = [pd.DataFrame({"churn": [0, 1] * 50}), pd.DataFrame({"churn": [1] * 300})]
    >>> kept, sampled = sample_rows(parts, 200)
    >>> [len(p) for p in kept], sampled
    ([50, 150], {'rows': 400, 'kept': 200, 'share': 0.5, 'seed': 0})
    """
    total = sum(len(p) for p in parts)
    if max_rows is None or total <= max_rows:
        return parts, None
    share = max_rows / total
    rng = np.random.default_rng(SAMPLE_SEED)
    kept = []
    for part in parts:
        n = max(1, round(len(part) * share))
        rows = np.sort(rng.choice(len(part), size=n, replace=False))
        kept.append(part.iloc[rows])
    n_kept = sum(len(p) for p in kept)
    return kept, {"rows": total, "kept": n_kept, "share": round(share, 6), "seed": SAMPLE_SEED}


def training_snapshots(
    transactions: pl.DataFrame,
    surveys: pl.DataFrame | None,
    *,
    as_of,
    plan: SnapshotPlan,
    attributes: pl.DataFrame | None = None,
    cache: SnapshotCache | None = None,
) -> pd.DataFrame:
    """Stack labelled snapshots whose label windows end at or before ``as_of``.

    The days follow :func:`cx_models.snapshot_design.design_snapshots` for ``plan``
    (horizon, step, count), and every snapshot's features follow ``plan.spec``. A snapshot
    whose CLV fit is not identified even with a penalizer, or whose labels hold one
    class only, is dropped. Returns one row per (snapshot, customer) with the columns
    of :func:`snapshot_features`, ``snapshot`` (the day, ISO text) and ``churn``
    (0/1), the newest snapshot first; ``attrs["snapshot_design"]`` records the design
    and what was adapted (snapshots dropped, fits penalized), and
    ``attrs["attribute_columns"]`` the customer attributes joined (static, so the
    same on every snapshot: leakage-safe only if they were fixed before it), and
    ``attrs["extra_columns"]`` the aggregates of ``plan.spec.extras`` (levels learnt
    on the transactions up to ``as_of``).
    """
    as_of = parse_as_of(as_of)
    if transactions.height == 0:
        raise CXDataError("no transactions to build churn snapshots from")
    first_day = transactions["timestamp"].min().date()
    design = design_snapshots(first_day, as_of, plan)
    cutoff = as_of_cutoff(as_of)
    visible = transactions.filter(pl.col("timestamp") < cutoff)
    plan = plan.learn(visible)  # levels of extra columns: learnt once, the same on every snapshot
    horizon_days, spec = plan.horizon_days, plan.spec
    parts = []
    for day in design.dates:
        try:
            frame, clv = snapshot_features(
                visible, surveys, as_of=day, horizon_days=horizon_days, spec=spec,
                clv_model=plan.clv_model, attributes=attributes, cache=cache,
            )
        except ConvergenceError as exc:
            design.dropped.append({"snapshot": day.isoformat(), "reason": str(exc)})
            continue
        if clv.penalizer:
            design.penalized.append({"snapshot": day.isoformat(), "penalizer": clv.penalizer})
        frame["churn"] = churn_labels(
            visible, frame["customer_id"].to_numpy(), as_of=day, horizon_days=horizon_days
        )
        if frame["churn"].nunique() < 2:
            reason = f"every customer has churn={int(frame['churn'].iloc[0])}"
            design.dropped.append({"snapshot": day.isoformat(), "reason": reason})
            continue
        frame.insert(0, "snapshot", day.isoformat())
        parts.append(frame)
    if not parts:
        listing = "; ".join(f"{d['snapshot']}: {d['reason']}" for d in design.dropped)
        raise NotEnoughHistory(f"no usable churn snapshot ({listing})")
    labels = np.concatenate([part["churn"].to_numpy() for part in parts])
    rare = min(int(labels.sum()), int(len(labels) - labels.sum()))
    if rare < MIN_CLASS_ROWS:
        which = "churners" if labels.mean() < 0.5 else "customers who bought again"
        raise NotEnoughHistory(
            f"too few {which} to learn churn from: {rare:,} of {len(labels):,} snapshot rows "
            f"({len(parts)} usable snapshot(s) with a {horizon_days}-day horizon; at least "
            f"{MIN_CLASS_ROWS} of each outcome are needed); a longer horizon or more history "
            "gives more"
        )
    counts = {
        part["snapshot"].iloc[0]: {
            "customers": int(len(part)), "churn_rate": float(part["churn"].mean())
        }
        for part in parts
    }
    parts, design.sampled = sample_rows(parts, plan.max_rows)
    out = pd.concat(parts, ignore_index=True)
    out.attrs["snapshot_design"] = design.to_dict()
    out.attrs["snapshot_counts"] = counts
    out.attrs["attribute_columns"] = (
        [] if attributes is None else [c for c in attributes.columns if c != "customer_id"]
    )
    out.attrs["extra_columns"] = spec.extras.feature_names()
    return out
