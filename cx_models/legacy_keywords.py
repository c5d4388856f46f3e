"""The keyword arguments of earlier releases, turned into the settings objects.

Functions that now take ``fmt=EventFormat(...)`` and ``spec=FeatureSpec(...)``
still accept the old keywords (``time_unit=``, ``transaction_columns=``, ...) with
a :class:`DeprecationWarning`; :func:`from_keywords` is the one translator.
"""

from __future__ import annotations

from cx_models.settings import EventFormat, FeatureSpec

__all__ = ["from_keywords"]


_FORMAT_KEYWORDS = {
    "transaction_columns": "transactions",
    "columns": "transactions",
    "survey_columns": "surveys",
    "time_format": "time_format",
    "survey_time_format": "survey_time_format",
    "strict": "strict",
    "drop_duplicates": "drop_duplicates",
    "ces_higher_is_better": "ces_higher_is_better",
}
_SPEC_KEYWORDS = ("time_unit", "lookback_days")


def from_keywords(
    where: str,
    keywords: dict,
    *,
    fmt: EventFormat | None = None,
    spec: FeatureSpec | None = None,
) -> tuple[EventFormat, FeatureSpec]:
    """Build the settings objects from the keyword arguments of earlier releases.

    ``where`` names the function for the messages. Such keywords still work but
    warn once per call site (:class:`DeprecationWarning`); mixing them with the
    object they belong to is an error, as is any unknown keyword.

    Examples
    --------
    >>> import warnings
    >>> with warnings.catch_warnings():
    ...     warnings.simplefilter("ignore")
    ...     fmt, spec = from_keywords("f", {"time_unit": "W", "strict": True})
    >>> spec.time_unit, fmt.strict
    ('W', True)
    """
    import warnings

    unknown = sorted(set(keywords) - set(_FORMAT_KEYWORDS) - set(_SPEC_KEYWORDS))
    if unknown:
        raise TypeError(f"{where}() got unexpected keyword argument(s) {', '.join(unknown)}")
    keywords = {k: v for k, v in keywords.items() if v is not None}
    fmt_kw = {_FORMAT_KEYWORDS[k]: v for k, v in keywords.items() if k in _FORMAT_KEYWORDS}
    spec_kw = {k: v for k, v in keywords.items() if k in _SPEC_KEYWORDS}
    if fmt_kw:
        if fmt is not None:
            raise TypeError(f"{where}(): give fmt=EventFormat(...) or its keywords, not both")
        warnings.warn(
            f"{where}(): {', '.join(sorted(k for k in keywords if k in _FORMAT_KEYWORDS))} "
            "now go in fmt=EventFormat(...)",
            DeprecationWarning,
            stacklevel=3,
        )
        fmt = EventFormat(**fmt_kw)
    if spec_kw:
        if spec is not None:
            raise TypeError(f"{where}(): give spec=FeatureSpec(...) or its keywords, not both")
        warnings.warn(
            f"{where}(): {', '.join(sorted(spec_kw))} now go in spec=FeatureSpec(...)",
            DeprecationWarning,
            stacklevel=3,
        )
        spec = FeatureSpec(**spec_kw)
    return fmt or EventFormat(), spec or FeatureSpec()
