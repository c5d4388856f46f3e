"""``cx-models score --subscriptions``: score the relationships active at --as-of."""

from __future__ import annotations

from cx_models._version import __version__
from cx_models.cli._app import err, report_table, say_quarantine

__all__ = ["score_contract"]


def score_contract(model: str, out, subscriptions, *, surveys, transactions, attributes, as_of,
                   spec, fmt, params, tracking_uri, quiet: bool, quarantine_out) -> None:
    """Validate, build the features with the model's definition, score, write (atomically)."""
    from cx_models.cli.score import resolve_and_load, scored_line
    from cx_models.io import write_table
    from cx_models.serving.contract_batch import score_subscriptions
    from cx_models.serving.predictors import contract_scorer

    loaded, info = resolve_and_load(model, tracking_uri)
    scorer = contract_scorer(loaded)
    result = score_subscriptions(
        scorer, subscriptions, as_of=as_of, surveys=surveys, transactions=transactions,
        attributes=attributes, spec=spec, fmt=fmt, params=params,
    )
    used = params.resolved(horizon_days=scorer.horizon_days, clv_months=scorer.clv_months,
                           discount_rate=scorer.discount_rate)
    metadata = {
        "kind": "subscriptions",
        "model_uri": info.get("model_uri"), "requested_uri": info.get("requested_uri"),
        "name": info.get("name"), "version": info.get("version"), "alias": info.get("alias"),
        "run_id": info.get("run_id"), "as_of": as_of.isoformat(),
        "horizon_days": scorer.horizon_days, "clv_months": used.clv_months,
        "discount_rate": used.discount_rate, "period_days": scorer.period.days,
        "calendar_period": scorer.period.calendar,
        "grace_days": scorer.grace_days, "lookback_days": scorer.lookback_days,
        "cx_models_version": __version__,
    }
    write_table(result.scored, out, metadata=metadata)
    reports = [r for r in result.reports.values() if r is not None]
    if quiet:
        if quarantine_out is not None:
            from cx_models.schemas import write_quarantine

            write_quarantine(quarantine_out, *reports)
        return
    err.print(report_table({k: None if r is None else r.to_dict()
                            for k, r in result.reports.items()}))
    say_quarantine(quarantine_out, *reports)
    pending = int(result.scored["cancellation_pending"].sum())
    if pending:
        err.print(f"{pending:,} relationships with a pending cancellation (churn_risk 1)")
    err.print(scored_line(len(result.scored), info, out).replace("customers", "relationships", 1))
