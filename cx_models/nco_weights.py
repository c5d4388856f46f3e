"""NCO weights: the defaults, and reading them from a file or a ``KEY=VALUE`` list.

Weights are relative (renormalised over the components present), non-negative and
at most :data:`MAX_WEIGHT`; :func:`validate_weights` is the one check every face
uses. :mod:`cx_models.nco` re-exports all of it.
"""

from __future__ import annotations

import math

from cx_models.errors import CXDataError

__all__ = ["DEFAULT_WEIGHTS", "MAX_WEIGHT", "load_weights", "parse_weights", "validate_weights"]

#: Default weights.
DEFAULT_WEIGHTS = {"csat": 0.20, "nps": 0.20, "ces": 0.10, "retention": 0.25, "value": 0.25}


#: The largest NCO weight accepted; weights are relative, so no scale needs more.
MAX_WEIGHT = 1e6


def validate_weights(weights: dict | None) -> dict[str, float]:
    """Return complete, validated weights (defaults for components not named).

    Weights must be finite and non-negative with a positive sum; unknown names
    are an error that lists the valid ones.

    Examples
    --------
    >>> validate_weights({"value": 0.5})["value"]
    0.5
    >>> validate_weights({"loyalty": 1})  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    cx_models.errors.CXDataError: unknown NCO weight 'loyalty'; valid names: csat, nps, ...
    """
    merged = dict(DEFAULT_WEIGHTS)
    given: set[str] = set()
    for name, value in (weights or {}).items():
        key = str(name).strip().lower()
        if key not in DEFAULT_WEIGHTS:
            valid = ", ".join(DEFAULT_WEIGHTS)
            raise CXDataError(f"unknown NCO weight {name!r}; valid names: {valid}")
        if key in given:
            raise CXDataError(f"NCO weight {key!r} is given twice; give each weight once")
        given.add(key)
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise CXDataError(f"NCO weight {key!r} must be a number, got {value!r}") from None
        if not math.isfinite(number) or not 0 <= number <= MAX_WEIGHT:
            raise CXDataError(
                f"NCO weight {key!r} must be a number from 0 to {MAX_WEIGHT:g} (weights are "
                f"relative: only their ratios matter), got {value!r}"
            )
        merged[key] = number
    if sum(merged.values()) <= 0:
        raise CXDataError("NCO weights must have a positive sum")
    return merged


def parse_weights(text: str, base: dict | None = None) -> dict[str, float]:
    """Parse ``"csat=0.3,value=0.4"`` (the CLI form) over ``base`` weights and validate.

    Components not named keep their ``base`` weight (the defaults when ``base``
    is None).

    Examples
    --------
    >>> parse_weights("csat=0.3, value=0.4")["csat"]
    0.3
    >>> parse_weights("nps=0", base={"csat": 1.0})["csat"]
    1.0
    """
    pairs = {str(k).strip().lower(): v for k, v in (base or {}).items()}
    named: set[str] = set()
    for item in filter(None, (part.strip() for part in text.split(","))):
        name, sep, value = item.partition("=")
        if not sep:
            raise CXDataError(f"--nco-weights: expected name=value pairs, got {item!r}")
        key = name.strip().lower()
        if key in named:
            raise CXDataError(f"--nco-weights: {key!r} is given twice; give each weight once")
        named.add(key)
        pairs[key] = value.strip()
    return validate_weights(pairs)


def load_weights(path) -> dict[str, float]:
    """Read weights from a TOML or JSON file.

    The weights may sit at the top level or under an ``[nco.weights]`` /
    ``{"nco": {"weights": ...}}`` table, so one project config file can hold them.
    """
    from cx_models.io import read_config

    data = read_config(path)
    if isinstance(data.get("nco"), dict):
        data = data["nco"].get("weights", data["nco"])
    if not isinstance(data, dict):
        raise CXDataError(f"{path}: expected a table of weights")
    try:
        return validate_weights(data)
    except CXDataError as exc:
        raise CXDataError(f"{path}: {exc}") from None
