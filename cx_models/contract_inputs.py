"""A subscription job's inputs validated together: subscriptions, surveys, activity, attributes.

:func:`validate_contract_inputs` validates each input with its own contract as seen
on ``as_of`` — the subscriptions first, whose customer id type the others take —
and returns them with their reports (:class:`ContractInputs`), the way every
contractual verb, the training job and the batch scorer read their inputs.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["ContractInputs", "validate_contract_inputs"]


@dataclass
class ContractInputs:
    """Validated inputs of a subscription job (``None`` for an input not given)."""

    subscriptions: object  # ValidatedTable
    surveys: object = None
    transactions: object = None
    attributes: object = None  # ValidatedAttributes

    def reports(self) -> dict:
        """Return each input's validation report (``None`` when not given)."""
        return {name: None if v is None else v.report for name, v in self.validated().items()}

    def frames(self) -> dict:
        """Return the validated surveys, activity events and attributes, as keyword arguments."""
        return {name: None if v is None else v.data for name, v in self.validated().items()
                if name != "subscriptions"}

    def validated(self) -> dict:
        """Return each validated input by name (``None`` when not given)."""
        return {"subscriptions": self.subscriptions, "surveys": self.surveys,
                "transactions": self.transactions, "attributes": self.attributes}


def validate_contract_inputs(subscriptions, *, as_of, spec=None, surveys=None,
                             transactions=None, attributes=None, fmt=None,
                             reserved=()) -> ContractInputs:
    """Validate a subscription job's inputs as seen on ``as_of``.

    Parameters
    ----------
    subscriptions : path, DatabaseSource or DataFrame
        The subscriptions (read with ``spec.columns`` and ``spec.time_format``).
    as_of : str or date
        The day the data is seen from.
    spec : SubscriptionSpec, optional
        How to read the subscriptions.
    surveys, transactions : path, DatabaseSource or DataFrame, optional
        Survey answers and activity events (read with ``fmt``).
    attributes : AttributeInput, path or frame, optional
        Customer attributes.
    fmt : EventFormat, optional
        How to read the surveys and activity events.
    reserved : iterable of str
        Column names an attribute may not take.
    """
    from cx_models.attributes import AttributeInput
    from cx_models.schemas import validate_surveys, validate_transactions
    from cx_models.settings import EventFormat
    from cx_models.subscriptions import SubscriptionSpec, validate_subscriptions

    spec = spec or SubscriptionSpec()
    fmt = fmt or EventFormat()
    subs = validate_subscriptions(subscriptions, as_of=as_of, columns=spec.columns,
                                  time_format=spec.time_format)
    ids = subs.data["customer_id"].dtype
    return ContractInputs(
        subscriptions=subs,
        surveys=None if surveys is None else validate_surveys(surveys, as_of=as_of, fmt=fmt,
                                                              id_dtype=ids),
        transactions=None if transactions is None else validate_transactions(
            transactions, as_of=as_of, fmt=fmt, id_dtype=ids),
        attributes=None if attributes is None else AttributeInput.of(attributes).validate(
            id_dtype=ids, reserved=reserved),
    )
