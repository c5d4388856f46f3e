import math
import re

import numpy as np
import pytest

from cx_models.drivers import FEW, driver_texts, format_values


def _tricky_values(rng, n):
    """Values a driver text may show: whole, fractional, tiny, huge, at rounding edges."""
    pool = np.concatenate(
        [
            rng.integers(-5000, 5_000_000, n).astype(float),
            rng.normal(0, 50, n),
            rng.exponential(0.01, n),
            10.0 ** rng.uniform(-8, 16, n),
            np.array([0.0, -0.0, 99.95, 99.96, 0.0009995, 9.995, 0.5, 1e15, -1e15, 123456.5]),
            np.array([np.nan, np.inf, -np.inf, 1e300, -2.5e-7]),
        ]
    )
    return rng.choice(pool, size=n).astype(np.float32)


def test_few_and_many_customers_give_the_same_texts():
    rng = np.random.default_rng(11)
    n, k = 1000, 12
    values = _tricky_values(rng, n * k).reshape(n, k)
    contrib = rng.normal(0, 0.3, (n, k)).astype(np.float32)
    contrib[rng.random((n, k)) < 0.2] = 0.0  # zero contributions are left out
    contrib[:5] = np.float32(0.005)  # ties, at a rounding edge
    labels = [f"feature {j}" for j in range(k)]
    many = driver_texts(contrib, values, labels).to_pylist()
    assert n > FEW
    few = sum(
        (
            driver_texts(contrib[i : i + 100], values[i : i + 100], labels).to_pylist()
            for i in range(0, n, 100)
        ),
        [],
    )
    assert many == few
    # ties go to the earlier feature
    assert re.findall(r"feature \d+", many[0]) == ["feature 0", "feature 1", "feature 2"]


def test_values_read_back_as_the_value():
    rng = np.random.default_rng(5)
    values = _tricky_values(rng, 20_000).astype(float)
    texts = format_values(values)
    for v, text in zip(values, texts, strict=True):
        if math.isnan(v):
            assert text == "missing"
            continue
        if not math.isfinite(v) or abs(v) >= 1e15:
            assert text == f"{v:.3g}"
            continue
        assert re.fullmatch(r"-?\d{1,3}(,\d{3})*(\.\d*[1-9])?", text), text
        back = float(text.replace(",", ""))
        if abs(v) >= 100 or v == round(v):
            assert back == round(abs(v)) * math.copysign(1, v) or back == 0
        else:  # three significant digits (at most six decimals)
            assert abs(back - v) <= max(abs(v) * 5e-3, 5e-7), (v, text)


def test_driver_text_layout():
    contrib = np.array([[0.0, -1.234, 0.5, 0.004], [0.0, 0.0, 0.0, 0.0]] * 200)
    values = np.array([[1.0, 1234.56, 0.04567, np.nan], [1.0, 2.0, 3.0, 4.0]] * 200)
    labels = ["a", "mean spend", "P(alive)", "latest NPS"]
    for rows in (2, 400):  # the Python and the polars writer
        texts = driver_texts(contrib[:rows], values[:rows], labels).to_pylist()
        assert (
            texts[0]
            == "mean spend = 1,235 (-1.23); P(alive) = 0.0457 (+0.50); latest NPS = missing (+0.00)"
        )
        assert texts[1] == ""


@pytest.mark.parametrize("top", [0, 1, 5])
def test_top_counts(top):
    contrib = np.array([[0.1, 0.3, -0.2]] * 300)
    values = np.ones((300, 3))
    texts = driver_texts(contrib, values, ["x", "y", "z"], top=top).to_pylist()
    assert len(texts) == 300
    assert texts[0].count(" = ") == min(top, 3)
