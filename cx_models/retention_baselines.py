"""The retention models behind the contractual churn features and baselines.

:class:`RetentionBaselines` holds a shifted-beta-geometric fit and a Kaplan–Meier
curve of the relationships seen on one day, and gives each active relationship's
probability to be lost before making its next ``m`` renewals: ``1 − S(k+m)/S(k)``
under each. Training snapshots fit their own; a scorer keeps the one fitted at its
as-of day (JSON), so one relationship can be scored alone.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from cx_models.errors import CXDataError
from cx_models.retention import kaplan_meier

__all__ = ["RetentionBaselines"]


@dataclass
class RetentionBaselines:
    """An sBG fit (None when the day's data does not identify one) and a KM survival curve.

    Examples
    --------
    >>> rels = pl.DataFrame({"renewals": [0, 1, 2, 3, 0], "lost": [True, True, False, True, False]})
    >>> base = RetentionBaselines.fit(rels)
    >>> sbg, km = base.churn_probabilities([0, 2], [1, 1])
    >>> km.round(3).tolist()
    [0.25, 0.0]
    """

    sbg: object
    km_survival: np.ndarray

    @classmethod
    def fit(cls, rels: pl.DataFrame) -> RetentionBaselines:
        """Fit both on relationships with ``renewals`` and ``lost``."""
        from cx_models.sbg import SBGModel

        renewals, lost = rels["renewals"].to_numpy(), rels["lost"].to_numpy()
        try:
            sbg = SBGModel().fit_renewals(renewals, lost)
        except CXDataError:
            sbg = None
        km = kaplan_meier(renewals, lost)["survival"].to_numpy()
        return cls(sbg=sbg, km_survival=km)

    def churn_probabilities(self, renewals, renewals_due) -> tuple[np.ndarray, np.ndarray]:
        """Return the sBG and the Kaplan–Meier P(lost before the next ``m`` renewals)."""
        k = np.asarray(renewals, dtype=float)
        m = np.asarray(renewals_due, dtype=float)
        sbg = (self.sbg.churn_probability(k, m) if self.sbg is not None
               else np.full(k.shape, np.nan))
        last = self.km_survival.size - 1
        s_k = self.km_survival[np.minimum(k.astype(int), last)]
        s_km = self.km_survival[np.minimum((k + m).astype(int), last)]
        with np.errstate(divide="ignore", invalid="ignore"):
            km = np.where(s_k > 0, 1.0 - s_km / s_k, np.nan)
        return sbg, km

    def to_dict(self) -> dict:
        """Return a JSON-friendly dict."""
        return {"sbg": None if self.sbg is None else self.sbg.to_dict(),
                "km_survival": [float(v) for v in self.km_survival]}

    @classmethod
    def from_dict(cls, data: dict) -> RetentionBaselines:
        """Rebuild from :meth:`to_dict`."""
        from cx_models.sbg import SBGModel

        sbg = None if data.get("sbg") is None else SBGModel.from_dict(data["sbg"])
        return cls(sbg=sbg, km_survival=np.asarray(data["km_survival"], dtype=float))
