"""The campaign plan: expected gain by hand, the choice, control groups, the save rate estimate."""

import json
import math
import xml.etree.ElementTree as ET

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from cx_models.campaign import CampaignSettings, estimate_save_rate, plan_campaign, profit_curve
from cx_models.cli import app
from cx_models.errors import CXDataError


@pytest.fixture()
def scored():
    rng = np.random.default_rng(7)
    n = 500
    return pd.DataFrame(
        {
            "customer_id": np.arange(n),
            "churn_risk": rng.uniform(0, 1, n),
            "clv": rng.gamma(2.0, 150.0, n),
            "nps_category": rng.choice(["promoter", "passive", "detractor"], n),
            "drivers": ["reason"] * n,
        }
    )


def test_gain_by_hand_with_an_incentive(scored):
    s = CampaignSettings(contact_cost=2.0, save_rate=0.2, margin=0.3, incentive_cost=5.0)
    plan, summary = plan_campaign(scored, s)
    row = plan.set_index("customer_id").loc[17]
    p, clv = scored.loc[17, "churn_risk"], scored.loc[17, "clv"]
    assert row["expected_gain"] == pytest.approx(p * 0.2 * (clv * 0.3 - 5) - (1 - p) * 5 - 2)
    assert plan["expected_gain"].is_monotonic_decreasing
    assert plan["contact"].tolist() == (plan["expected_gain"] > 0).tolist()  # no budget: all > 0
    chosen = plan[plan["contact"]]
    assert summary["expected_profit"] == pytest.approx(chosen["expected_gain"].sum())
    cost = 2 + 5 * (chosen["churn_risk"] * 0.2 + 1 - chosen["churn_risk"])
    assert summary["expected_cost"] == pytest.approx(cost.sum())
    assert summary["expected_return"] == pytest.approx(summary["expected_profit"] / cost.sum())


def test_budget_and_maximum_take_the_highest_gains(scored):
    free, _ = plan_campaign(scored, CampaignSettings(contact_cost=5, save_rate=0.15))
    assert free["contact"].sum() > 40
    plan, summary = plan_campaign(scored, CampaignSettings(contact_cost=5, save_rate=0.15,
                                                           budget=100))
    assert summary["contacted"] == 20 and summary["expected_cost"] == pytest.approx(100)
    assert plan["contact"].tolist()[:20] == [True] * 20 and not plan["contact"][20:].any()
    top, _ = plan_campaign(scored, CampaignSettings(contact_cost=5, save_rate=0.15,
                                                    max_contacts=7))
    assert top.index[top["contact"]].tolist() == list(range(7))
    n, profit = profit_curve(free)
    assert profit.argmax() == free["contact"].sum()  # positive gains maximise profit


def test_control_share_is_seeded_and_drawn_from_the_chosen(scored):
    s = CampaignSettings(contact_cost=5, save_rate=0.15, control_share=0.2, seed=3)
    a, summary = plan_campaign(scored, s)
    b, _ = plan_campaign(scored, s)
    pd.testing.assert_frame_equal(a, b)
    assert not (a["contact"] & a["control"]).any()
    assert (a.loc[a["control"], "expected_gain"] > 0).all()
    assert summary["chosen"] == summary["contacted"] + summary["control"]
    assert 0.1 < summary["control"] / summary["chosen"] < 0.3


def test_save_rate_per_segment(scored):
    rates = {"promoter": 0.05, "passive": 0.1, "detractor": 0.3}
    plan, _ = plan_campaign(scored, CampaignSettings(contact_cost=1), save_rates=rates,
                            segment="nps_category")
    merged = plan.merge(scored[["customer_id", "nps_category"]], on="customer_id")
    assert (merged["save_rate"] == merged["nps_category"].map(rates)).all()
    with pytest.raises(CXDataError, match="no save rate for segment"):
        plan_campaign(scored, CampaignSettings(contact_cost=1), save_rates={"promoter": 0.1},
                      segment="nps_category")
    plan, _ = plan_campaign(scored, CampaignSettings(contact_cost=1, save_rate=0.2),
                            save_rates={"promoter": 0.1}, segment="nps_category")
    assert set(plan["save_rate"]) == {0.1, 0.2}
    with pytest.raises(CXDataError, match="save_rate must be from 0 to 1"):
        CampaignSettings(contact_cost=1, save_rate=2)
    with pytest.raises(CXDataError, match="not both"):
        CampaignSettings(contact_cost=1, save_rate=0.1, budget=10, max_contacts=3)


def test_save_rate_estimate_by_hand():
    t = pd.DataFrame({"customer_id": range(200), "churned": [1] * 60 + [0] * 140})
    c = pd.DataFrame({"customer_id": range(200), "churned": [1] * 80 + [0] * 120})
    r = estimate_save_rate(t, c)
    se = math.sqrt(0.7 / 60 + 0.6 / 80)
    assert r["save_rate"] == pytest.approx(0.25)
    assert r["interval_95"] == pytest.approx([1 - 0.75 * math.exp(1.96 * se),
                                              1 - 0.75 * math.exp(-1.96 * se)])
    with pytest.raises(CXDataError, match="churned must be 0 or 1"):
        estimate_save_rate(t.assign(churned=2), c)


def test_target_command(scored, tmp_path):
    path = tmp_path / "scored.parquet"
    scored.to_parquet(path)
    runner = CliRunner()
    out = tmp_path / "plans" / "plan.parquet"
    res = runner.invoke(app, ["target", "--scored", str(path), "--contact-cost", "5",
                              "--save-rate", "0.15", "--max-contacts", "30", "--out", str(out)])
    assert res.exit_code == 0, res.stderr
    summary = json.loads(res.stdout)
    plan = pd.read_parquet(out)
    assert len(plan) == len(scored) and plan["contact"].sum() == summary["contacted"] == 30
    svg = ET.parse(out.parent / "profit_curve.svg").getroot()
    assert svg.tag.endswith("svg")
    res = runner.invoke(app, ["target", "--scored", str(path), "--contact-cost", "5",
                              "--save-rate", "0.15", "--out", str(path)])
    assert res.exit_code == 2 and "never overwrites an input" in res.stderr
    treated, control = tmp_path / "t.csv", tmp_path / "c.csv"
    pd.DataFrame({"customer_id": range(100), "churned": [1] * 30 + [0] * 70}).to_csv(treated)
    pd.DataFrame({"customer_id": range(100), "churned": [1] * 40 + [0] * 60}).to_csv(control)
    res = runner.invoke(app, ["target", "--scored", str(path), "--contact-cost", "5",
                              "--treated", str(treated), "--control", str(control),
                              "--out", str(tmp_path / "p2.csv")])
    assert res.exit_code == 0, res.stderr
    estimate = json.loads(res.stdout)["save_rate_estimate"]
    assert estimate["save_rate"] == pytest.approx(0.25)


# --------------------------------------------------------------------------- replay on outcomes
def test_realised_campaign_by_hand_with_incentive_margin_and_budget():
    from cx_models.campaign_outcomes import realised_campaign

    scored = pd.DataFrame(
        {"customer_id": [10, 11, 12, 13], "churn_risk": [0.8, 0.6, 0.3, 0.05],
         "clv": [500.0, 300.0, 900.0, 100.0]}
    )
    churned = [0, 1, 1, 0]
    s = CampaignSettings(contact_cost=2, save_rate=0.5, margin=0.4, incentive_cost=5)
    # expected gain = p g (clv m - d) - (1 - p) d - f, realised: p -> y
    expected = {10: 0.8 * 0.5 * 195 - 0.2 * 5 - 2, 11: 0.6 * 0.5 * 115 - 0.4 * 5 - 2,
                12: 0.3 * 0.5 * 355 - 0.7 * 5 - 2, 13: 0.05 * 0.5 * 35 - 0.95 * 5 - 2}
    realised = {10: -5 - 2, 11: 0.5 * 115 - 2, 12: 0.5 * 355 - 2, 13: -5 - 2}
    r = realised_campaign(scored, churned, s)
    order = sorted(expected, key=lambda c: -expected[c])  # 10 (73), 12 (47.75), 11 (30.5), 13
    chosen = [c for c in order if expected[c] > 0]
    assert r["contacts"] == len(chosen) == 3
    assert r["expected_profit"] == pytest.approx(sum(expected[c] for c in chosen))
    assert r["realised_profit"] == pytest.approx(sum(realised[c] for c in chosen))
    cumulative = np.cumsum([0.0] + [realised[c] for c in order])
    assert r["best_contacts"] == int(np.argmax(cumulative)) == 3
    assert r["best_realised_profit"] == pytest.approx(cumulative.max())
    assert r["realised_profit_all"] == pytest.approx(cumulative[-1])
    assert r["curve"]["realised"] == pytest.approx(cumulative.tolist())
    # a budget that pays for one contact and its expected incentives keeps the best gain only
    budget = CampaignSettings(contact_cost=2, save_rate=0.5, margin=0.4, incentive_cost=5, budget=8)
    r = realised_campaign(scored, churned, budget)
    assert r["contacts"] == 1 and r["realised_profit"] == pytest.approx(realised[10])


def test_realised_campaign_rejects_bad_outcomes(scored):
    from cx_models.campaign_outcomes import realised_campaign

    s = CampaignSettings(contact_cost=5, save_rate=0.15)
    with pytest.raises(CXDataError, match="one outcome per scored row"):
        realised_campaign(scored, [0, 1], s)
    with pytest.raises(CXDataError, match="0 .stayed. or 1"):
        realised_campaign(scored, np.full(len(scored), 2), s)
    with pytest.raises(CXDataError, match="control_share 0"):
        realised_campaign(scored, np.zeros(len(scored)), CampaignSettings(
            contact_cost=5, save_rate=0.15, control_share=0.1))
