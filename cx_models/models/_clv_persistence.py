"""JSON persistence of :class:`~cx_models.models.clv.CLVModel` (no pickle).

A mixin: :meth:`to_dict` / :meth:`from_dict` carry the fitted parameters, their
covariance, the covariates and the settings; :meth:`save` / :meth:`load` write
and read them as JSON.
"""

from __future__ import annotations

import json
from pathlib import Path

from cx_models._version import __version__
from cx_models.errors import CXDataError
from cx_models.models._families import family
from cx_models.models._patterns import SPEND_PARAMS
from cx_models.timeutil import check_time_unit

__all__ = ["CLVPersistence"]


class CLVPersistence:
    """Persistence of a fitted CLV model (mixed into :class:`~cx_models.models.clv.CLVModel`)."""

    def to_dict(self) -> dict:
        """Return the fitted model as JSON-serialisable data (no pickle)."""
        self._require_fitted()
        return {
            "model": self.model,
            "time_unit": self.time_unit_,
            "params": dict(self.params_),
            "spend_params": dict(self.spend_params_),
            "standard_errors": dict(self.standard_errors_),
            "log_likelihood": self.log_likelihood_,
            "spend_log_likelihood": self.spend_log_likelihood_,
            "n_customers": self.n_customers_,
            "n_repeat_customers": self.n_repeat_customers_,
            "covariance": getattr(self, "covariance_", {}),
            "covariates": None if self.covariates is None else self.covariates.to_dict(),
            "coefficients": getattr(self, "coefficients_", {}),
            "settings": {
                "penalizer": self.penalizer,
                "spend_penalizer": self.spend_penalizer,
                "tol": self.tol,
                "engine": self.engine,
                "period_days": self.period_days,
            },
            "cx_models_version": __version__,
        }

    @classmethod
    def from_dict(cls, data: dict) -> CLVPersistence:
        """Rebuild a fitted model from :meth:`to_dict` output."""
        try:
            settings = data.get("settings", {})
            model = cls(model=data["model"], covariates=data.get("covariates"), **settings)
            names = family(data["model"]).params
            model.params_ = {k: float(data["params"][k]) for k in names}
            spend = data["spend_params"]
            model.spend_params_ = {k: float(spend[k]) for k in SPEND_PARAMS} if spend else {}
            model.standard_errors_ = {k: float(v) for k, v in data["standard_errors"].items()}
            model.log_likelihood_ = float(data["log_likelihood"])
            spend_ll = data["spend_log_likelihood"]
            model.spend_log_likelihood_ = None if spend_ll is None else float(spend_ll)
            model.n_customers_ = int(data["n_customers"])
            model.n_repeat_customers_ = int(data.get("n_repeat_customers", 0))
            model.covariance_ = dict(data.get("covariance") or {})
            model.coefficients_ = {
                block: {c: float(v) for c, v in slopes.items()}
                for block, slopes in (data.get("coefficients") or {}).items()
            }
            unit = data["time_unit"]
            model.time_unit_ = "P" if data["model"] == "bgbb" else check_time_unit(unit)
        except (KeyError, TypeError, ValueError) as exc:
            raise CXDataError(f"not a CLV model description: {exc}") from None
        model._check_settings()
        return model

    def save(self, path) -> Path:
        """Write :meth:`to_dict` as JSON."""
        path = Path(path)
        path.write_text(json.dumps(self.to_dict(), indent=2) + "\n")
        return path

    @classmethod
    def load(cls, path) -> CLVPersistence:
        """Read a model written by :meth:`save` (or ``cx-models clv fit``)."""
        path = Path(path)
        if not path.exists():
            raise CXDataError(f"{path}: CLV model file not found")
        try:
            data = json.loads(path.read_text())
        except json.JSONDecodeError as exc:
            raise CXDataError(f"{path}: not JSON ({exc})") from None
        return cls.from_dict(data)

