"""CLV covariates from customer attributes in training: recovery on the generator, scoring."""

import numpy as np
import pandas as pd
import pytest
from cx_models.training.pipeline import TrainingConfig, train_scorer

from cx_models.attributes import validate_attributes
from cx_models.errors import CXDataError
from cx_models.schemas import validate_transactions
from cx_models.scoring import CXScorer
from cx_models.synthetic import SyntheticParams, generate_customer_base

AS_OF = "2025-12-31"


@pytest.fixture(scope="module")
def base():
    return generate_customer_base(12_000, seed=21, params=SyntheticParams(attributes=True))


@pytest.fixture(scope="module")
def trained(base):
    tx = validate_transactions(base.transactions, as_of=AS_OF).data
    attrs = validate_attributes(base.attributes, id_dtype=tx["customer_id"].dtype).data
    config = TrainingConfig(as_of=AS_OF, max_snapshots=2, purchase_covariates=["channel"],
                            dropout_covariates=["region", "plan"])
    return train_scorer(tx, None, config, attributes=attrs), tx, attrs


def test_the_dropout_attribute_is_found_and_the_others_are_not(base, trained):
    """Region multiplies the dropout odds (params.json); plan and channel do nothing."""
    result, _, _ = trained
    clv = result.scorer.clv
    levels = dict(clv.covariates.levels)
    reference = levels["region"][0]
    odds = base.params["region_dropout_odds"]
    a, b = clv.coefficients_["dropout_a"], clv.coefficients_["dropout_b"]
    for region in levels["region"][1:]:
        # BG/NBD: the mean dropout odds a/b move by exp(gamma_a - gamma_b)
        fitted = a[f"region={region}"] - b[f"region={region}"]
        truth = np.log(odds[region] / odds[reference])
        assert fitted == pytest.approx(truth, abs=0.5), region
    for plan in levels["plan"][1:]:
        assert abs(a[f"plan={plan}"] - b[f"plan={plan}"]) < 0.35
    for channel in levels["channel"][1:]:
        assert abs(clv.coefficients_["purchase"][f"channel={channel}"]) < 0.15
    # the churn features keep their own BG/NBD without covariates
    assert result.scorer.churn_clv.model == "bgnbd" and result.scorer.churn_clv.covariates is None


def test_scoring_uses_each_customers_attributes_and_round_trips(trained, tmp_path):
    result, _, _ = trained
    scorer, features = result.scorer, result.features
    scored = scorer.score(features, explain=False)
    own = scorer.clv.predict(features, horizon_days=90)
    np.testing.assert_allclose(scored["expected_purchases"], own["expected_purchases"])
    east = features.assign(region="east").head(500)
    west = features.assign(region="west").head(500)
    # east drops out far more often: fewer expected purchases for the same history
    assert (scorer.score(east)["p_alive"] <= scorer.score(west)["p_alive"] + 1e-12).all()
    loaded = CXScorer.load(scorer.save(tmp_path / "scorer"))
    assert loaded.clv.covariates == scorer.clv.covariates
    head = features.head(300)
    pd.testing.assert_frame_equal(loaded.score(head), scorer.score(head))
    with pytest.raises(CXDataError, match=r"customer attributes \(region\), missing here"):
        scorer.score(features.drop(columns=["region"]).head(5))


def test_covariates_must_be_attributes(trained):
    _, tx, attrs = trained
    with pytest.raises(CXDataError, match=r"'tier' must be customer attributes .*region"):
        train_scorer(tx, None, TrainingConfig(as_of=AS_OF, dropout_covariates=["tier"]),
                     attributes=attrs)
    with pytest.raises(CXDataError, match="no --attributes given"):
        train_scorer(tx, None, TrainingConfig(as_of=AS_OF, dropout_covariates=["region"]))
    with pytest.raises(CXDataError, match="bgnbd, mbgnbd and pnbd"):
        TrainingConfig(as_of=AS_OF, clv_model="bgbb", dropout_covariates=["region"])
