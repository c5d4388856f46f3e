"""The CDNOW data sets that ship inside the installed ``lifetimes`` package.

They are read straight from ``importlib.resources.files("lifetimes") /
"datasets"``: lifetimes' own ``lifetimes.datasets`` module imports
``pkg_resources``, which current setuptools no longer ships.

CDNOW (Fader, Hardie & Lee 2005): the purchases of 23,570 customers acquired
in the first quarter of 1997, through June 1998; the *sample* is a 1/10
systematic sample of 2,357 of them. Amounts are US dollars; dates are days.
"""

from __future__ import annotations

from importlib.resources import files
from typing import Literal

import pandas as pd

from cx_models.errors import CXDataError

__all__ = ["load_cdnow", "load_cdnow_summary", "load_donations"]


def _dataset_file(name: str):
    try:
        root = files("lifetimes") / "datasets"
    except ModuleNotFoundError:  # pragma: no cover - lifetimes is a dependency
        raise CXDataError(
            "the CDNOW data ships with the 'lifetimes' package: pip install lifetimes"
        ) from None
    path = root / name
    if not path.is_file():
        raise CXDataError(f"lifetimes does not ship {name!r} in {root}")
    return path


def load_cdnow(kind: Literal["master", "sample"] = "master") -> pd.DataFrame:
    """Load the CDNOW transaction log in cx-models' default column contract.

    Parameters
    ----------
    kind : {"master", "sample"}
        The full log (69,659 rows, 23,570 customers) or the 1/10 sample
        (6,919 rows, 2,357 customers).

    Returns
    -------
    pandas.DataFrame
        ``customer_id`` (text, as in the file: ``"00004"``), ``timestamp``
        (datetime, day resolution), ``amount`` (dollars; 0 for the free
        orders) and ``quantity`` (number of CDs); the sample adds ``sample_id``,
        the 1..2357 numbering of the published sample summary.

    Examples
    --------
    >>> tx = load_cdnow("sample")
    >>> len(tx), tx["customer_id"].nunique()
    (6919, 2357)
    >>> int((load_cdnow()["amount"] == 0).sum())
    80
    """
    if kind == "master":
        names, skip = ["customer_id", "date", "quantity", "amount"], 1
    elif kind == "sample":
        names, skip = ["customer_id", "sample_id", "date", "quantity", "amount"], 0
    else:
        raise CXDataError(f"kind must be 'master' or 'sample', got {kind!r}")
    path = _dataset_file("CDNOW_master.txt" if kind == "master" else "CDNOW_sample.txt")
    with path.open() as handle:
        frame = pd.read_csv(
            handle,
            sep=r"\s+",
            header=None,
            skiprows=skip,
            names=names,
            dtype={"customer_id": str, "sample_id": str, "date": str},
        )
    frame["timestamp"] = pd.to_datetime(frame["date"], format="%Y%m%d")
    columns = ["customer_id", "timestamp", "amount", "quantity"]
    if kind == "sample":
        frame["sample_id"] = frame["sample_id"].astype(int)
        columns.append("sample_id")
    return frame[columns]


def load_cdnow_summary(with_monetary_value: bool = True) -> pd.DataFrame:
    """Load the published CDNOW-sample RFM summary (calibration to 1997-09-30, weeks).

    Returns
    -------
    pandas.DataFrame
        ``customer_id`` (1..2357), ``frequency``, ``recency``, ``T`` and, when
        asked, ``monetary_value`` (the mean of repeat purchases); ``attrs``
        record ``time_unit="W"`` and ``as_of="1997-09-30"``.

    Examples
    --------
    >>> s = load_cdnow_summary()
    >>> s.iloc[0].to_dict()
    {'customer_id': 1.0, 'frequency': 2.0, 'recency': 30.43, 'T': 38.86, 'monetary_value': 22.35}
    """
    name = "cdnow_customers_summary_with_transactions.csv"
    with _dataset_file(name).open() as handle:
        frame = pd.read_csv(handle)
    frame.columns = ["customer_id", "frequency", "recency", "T", "monetary_value"]
    if not with_monetary_value:
        frame = frame.drop(columns="monetary_value")
    frame.attrs = {"as_of": "1997-09-30", "time_unit": "W"}
    return frame


def load_donations() -> pd.DataFrame:
    """Load the donations data of Fader, Hardie & Shang (2010): BG/BB's published example.

    11,104 first-time supporters of a non-profit in 1995, observed for the six
    annual donation opportunities 1996-2001, as 22 patterns.

    Returns
    -------
    pandas.DataFrame
        ``frequency`` (years with a donation), ``recency`` (the last such year),
        ``periods`` (6) and ``weights`` (donors with the pattern); ``attrs`` record
        ``time_unit="P"`` and ``period_days=365.25``.

    Examples
    --------
    >>> d = load_donations()
    >>> len(d), int(d["weights"].sum()), d.iloc[0].to_dict()
    (22, 11104, {'frequency': 0, 'recency': 0, 'periods': 6, 'weights': 3464})
    """
    with _dataset_file("donations.csv").open() as handle:
        frame = pd.read_csv(handle)
    frame.attrs = {"time_unit": "P", "period_days": 365.25}
    return frame
