"""Column access for the scorer's per-call path, without building pandas objects per column.

For one customer (the REST API), fetching 40-odd columns of a DataFrame one by
one costs more than the models themselves (~65 µs per ``frame[name]``).
:class:`NumericView` reads every numeric column into one float matrix in a
single call and then hands out columns as NumPy arrays.
"""

from __future__ import annotations

import copy

import numpy as np
import pandas as pd

__all__ = ["NumericView", "as_float"]


def as_float(values) -> np.ndarray:
    """Return ``values`` as a float array, with NaN for anything missing or not a number.

    Examples
    --------
    >>> as_float(pd.Series([1, None, "x"], dtype=object)).tolist()
    [1.0, nan, nan]
    >>> as_float(np.array([2.0, 3.0])).tolist()
    [2.0, 3.0]
    """
    if isinstance(values, np.ndarray) and values.dtype.kind == "f":
        return values.astype(float, copy=False)
    return pd.to_numeric(pd.Series(values), errors="coerce").to_numpy(dtype=float, na_value=np.nan)


#: Up to this many rows a frame's matrix goes through one object array (see below).
FEW_ROWS = 256


def _numeric_matrix(frame: pd.DataFrame, numeric: list[str]) -> np.ndarray:
    """Return the ``numeric`` columns as one float matrix (NaN for missing values).

    For a few rows (one customer of the REST API) selecting the columns by label
    costs ~0.3 ms; the frame as one object array, then the columns by position,
    ~0.03 ms. Values the object route cannot convert (``pd.NA``) take the label route.

    Examples
    --------
    >>> f = pd.DataFrame({"a": pd.array([1.5, None], dtype="Float64"), "b": [1, 2]})
    >>> _numeric_matrix(f, ["b", "a"]).tolist()
    [[1.0, 1.5], [2.0, nan]]
    >>> _numeric_matrix(f.astype({"a": float}), ["a"]).tolist()
    [[1.5], [nan]]
    """
    if not numeric:
        return np.empty((len(frame), 0))
    if len(frame) <= FEW_ROWS:
        where = frame.columns.get_indexer(numeric)
        if (where >= 0).all() and frame.columns.is_unique:
            try:
                return np.asarray(frame.to_numpy()[:, where], dtype=float)
            except (TypeError, ValueError):
                pass
    return frame[numeric].to_numpy(dtype=float, na_value=np.nan)


class NumericView:
    """Read-only view of a feature table: numeric columns as float arrays, the rest as is.

    Offers what the scoring code reads from a frame: ``columns``, ``attrs``,
    ``len()`` and ``view[name]``; :meth:`with_columns` adds computed columns.

    Examples
    --------
    >>> frame = pd.DataFrame({"customer_id": [7, 8], "T": [10, 20], "nps_category": ["a", None]})
    >>> view = NumericView(frame)
    >>> view["T"].tolist(), view["nps_category"].iloc[0]
    ([10.0, 20.0], 'a')
    >>> view.with_columns({"score": np.array([0.5, 0.7])})["score"].tolist()
    [0.5, 0.7]
    """

    def __init__(self, frame: pd.DataFrame):
        self.frame = frame
        self.columns = list(frame.columns)
        self.attrs = frame.attrs
        self._extra: dict[str, np.ndarray] = {}
        numeric = [
            name
            for name, dtype in frame.dtypes.items()
            if pd.api.types.is_numeric_dtype(dtype) and not pd.api.types.is_bool_dtype(dtype)
        ]
        self._index = {name: i for i, name in enumerate(numeric)}
        self._matrix = _numeric_matrix(frame, numeric)

    def __len__(self) -> int:
        return len(self.frame)

    @property
    def numeric(self) -> tuple[list[str], np.ndarray]:
        """The numeric columns read (in matrix order) and their float matrix."""
        return list(self._index), self._matrix

    def __getitem__(self, name: str):
        if name in self._extra:
            return self._extra[name]
        i = self._index.get(name)
        return self.frame[name] if i is None else self._matrix[:, i]

    def with_columns(self, extra: dict[str, np.ndarray]) -> NumericView:
        """Return a view that also has (or overrides with) the ``extra`` arrays."""
        view = copy.copy(self)
        view._extra = {**self._extra, **extra}
        view.columns = [*self.columns, *(c for c in extra if c not in self.columns)]
        return view
