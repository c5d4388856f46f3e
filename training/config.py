"""The settings of a training run: :class:`TrainingConfig`, read from the CLI or a config file."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field

from cx_models.campaign import CampaignSettings, campaign_from_mapping
from cx_models.campaign_outcomes import EVALUATION_CAMPAIGN
from cx_models.nco import validate_weights
from cx_models.settings import (
    MAX_TRAINING_ROWS,
    FeatureSpec,
    ScoreParams,
    SnapshotPlan,
    TransactionExtras,
)
from cx_models.timeutil import check_time_unit, parse_as_of

__all__ = ["CHURN_CLV_MODEL", "TrainingConfig", "load_config_file"]


#: The transaction model whose outputs are the churn model's features, whatever CLV model
#: a run chooses (``"same"``: the CLV model). On CDNOW master at 1997-09-30, where the CLV
#: choice picks MBG/NBD, churn features from MBG/NBD gave a forward ROC-AUC of 0.7215 and a
#: scored one of 0.7703, from BG/NBD 0.7373 and 0.7752 (README, "Churn on real data").
CHURN_CLV_MODEL = "bgnbd"


@dataclass
class TrainingConfig:
    """Every setting of a training run (logged as parameters)."""

    as_of: str
    horizon_days: int = 90
    time_unit: str = "D"
    step_days: int | None = None
    max_snapshots: int | None = None
    max_training_rows: int | None = MAX_TRAINING_ROWS  # 0 or None: every row
    lookback_days: int = 365
    tx_numeric: list[str] = field(default_factory=list)
    tx_categorical: list[str] = field(default_factory=list)
    #: Discrete opportunities of this many days: BG/BB's periods (``clv_model="bgbb"``, and
    #: a candidate of ``"auto"``); ``None``: continuous time only.
    period_days: int | None = None
    clv_model: str = "bgnbd"
    churn_clv_model: str = CHURN_CLV_MODEL
    purchase_covariates: list[str] = field(default_factory=list)
    dropout_covariates: list[str] = field(default_factory=list)
    penalizer: float = 0.0
    clv_months: int = 12
    discount_rate: float = 0.10
    nco_weights: dict = field(default_factory=lambda: validate_weights(None))
    ces_higher_is_better: bool = False
    calibration: str = "sigmoid"
    random_state: int = 0
    campaign: CampaignSettings = field(default_factory=lambda: EVALUATION_CAMPAIGN)

    def __post_init__(self):
        if isinstance(self.campaign, Mapping):  # from a TOML/JSON [campaign] table
            self.campaign = campaign_from_mapping(self.campaign)
        self.as_of = parse_as_of(self.as_of).isoformat()
        self.time_unit = check_time_unit(self.time_unit)
        self.max_training_rows = self.max_training_rows or None
        extras = TransactionExtras(numeric=self.tx_numeric, categorical=self.tx_categorical)
        self.tx_numeric, self.tx_categorical = list(extras.numeric), list(extras.categorical)
        from cx_models.models._families import family

        if self.clv_model != "auto":
            family(self.clv_model)  # names the valid models
        if self.churn_clv_model != "same":
            family(self.churn_clv_model)
        self.purchase_covariates = list(self.purchase_covariates or [])
        self.dropout_covariates = list(self.dropout_covariates or [])
        if self.covariates is not None and self.clv_model != "auto":
            from cx_models.models.covariates import blocks

            blocks(self.clv_model, self.covariates)  # names the models that take covariates
        self._check_periods()
        self.nco_weights = validate_weights(self.nco_weights)
        # the bounds every scoring path uses (horizon, CLV months, discount rate)
        ScoreParams(
            horizon_days=self.horizon_days,
            clv_months=self.clv_months,
            discount_rate=self.discount_rate,
        )

    def _check_periods(self) -> None:
        from cx_models.errors import CXDataError

        self.period_days = FeatureSpec(period_days=self.period_days).period_days
        discrete = "bgbb" in (self.clv_model, self.churn_feature_model)
        if discrete and self.period_days is None:
            raise CXDataError(
                "BG/BB counts discrete opportunities: give their length, period_days "
                "(--period-days N)"
            )
        if self.period_days is not None and not discrete and self.clv_model != "auto":
            raise CXDataError(
                f"period_days is the length of BG/BB's periods: use it with clv_model 'bgbb' "
                f"or 'auto' (which adds BG/BB to its candidates), not {self.clv_model!r}"
            )

    def to_dict(self) -> dict:
        """Return the settings as a flat-ish dict."""
        return asdict(self)

    @property
    def feature_spec(self) -> FeatureSpec:
        """The feature definition every snapshot, the CLV fit and the scorer share."""
        return FeatureSpec(
            time_unit=self.time_unit,
            lookback_days=self.lookback_days,
            extras=TransactionExtras(numeric=self.tx_numeric, categorical=self.tx_categorical),
            period_days=self.period_days,
        )

    @property
    def covariates(self):
        """The CLV model's covariates (customer attributes), or ``None``."""
        if not (self.purchase_covariates or self.dropout_covariates):
            return None
        from cx_models.models.covariates import Covariates

        return Covariates(
            purchase=tuple(self.purchase_covariates), dropout=tuple(self.dropout_covariates)
        )

    @property
    def churn_feature_model(self) -> str:
        """The transaction model whose outputs are churn features (``churn_clv_model``)."""
        return self.clv_model if self.churn_clv_model == "same" else self.churn_clv_model

    @property
    def snapshot_plan(self) -> SnapshotPlan:
        """The churn snapshots of the final model and of the forward evaluation."""
        return SnapshotPlan(
            horizon_days=self.horizon_days,
            step_days=self.step_days,
            max_snapshots=self.max_snapshots,
            max_rows=self.max_training_rows,
            spec=self.feature_spec,
            clv_model=self.churn_feature_model,
        )


def load_config_file(path) -> dict:
    """Read training settings from a TOML or JSON file.

    Settings may sit at the top level or under ``[train]``; NCO weights under
    ``[nco.weights]``. Unknown settings are an error that lists the valid ones.
    """
    from dataclasses import fields

    from cx_models.errors import CXDataError
    from cx_models.io import read_config

    data = read_config(path)
    settings = dict(data.get("train", {}))
    settings.update({k: v for k, v in data.items() if k not in ("train", "nco")})
    valid = {f.name for f in fields(TrainingConfig)} - {"nco_weights"}
    unknown = sorted(set(settings) - valid)
    if unknown:
        raise CXDataError(
            f"{path}: unknown setting(s) {', '.join(unknown)}; valid: {', '.join(sorted(valid))}"
        )
    if isinstance(data.get("nco"), dict):
        from cx_models.nco import load_weights

        settings["nco_weights"] = load_weights(path)
    return settings
