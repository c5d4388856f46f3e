"""The contract's rules are defined once, in cx_models.contract, and nowhere else."""

import ast
from pathlib import Path

import pytest

from cx_models import contract
from cx_models.contract import (
    NPS_BANDS,
    SURVEY_SCALES,
    atomic_output,
    decide_id_type,
    nps_category,
    score_0_100,
)
from cx_models.errors import CXDataError

ROOT = Path(__file__).resolve().parents[1]
SOURCES = [
    p
    for folder in ("cx_models", "training", "serving")
    for p in sorted((ROOT / folder).rglob("*.py"))
    if p.name != "contract.py"
]
SCALE_BOUNDS = {(s.low, s.high) for s in SURVEY_SCALES.values()}
BAND_NAMES = {name for name, _ in NPS_BANDS}


def _trees():
    for path in SOURCES:
        yield path, ast.parse(path.read_text(), filename=str(path))


def _docstrings(tree) -> set[int]:
    """The ids of the docstring nodes (examples there may show the messages)."""
    ids = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                ids.add(id(body[0].value))
    return ids


def _offences(check):
    found = []
    for path, tree in _trees():
        skip = _docstrings(tree)
        for node in ast.walk(tree):
            if id(node) in skip:
                continue
            what = check(node)
            if what:
                found.append(f"{path.relative_to(ROOT)}:{node.lineno}: {what}")
    return found


def test_sources_are_found():
    assert len(SOURCES) > 20


def test_survey_scales_are_not_restated():
    def check(node):
        if isinstance(node, ast.Tuple) and len(node.elts) == 2:
            values = [e.value for e in node.elts if isinstance(e, ast.Constant)]
            if len(values) == 2 and all(isinstance(v, int) for v in values):
                if tuple(values) in SCALE_BOUNDS and tuple(values) != (1, 5):
                    return f"scale bounds {tuple(values)}"
        if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "SurveyScale":
            return "SurveyScale(...)"
        if isinstance(node, ast.keyword) and node.arg in {"ge", "le"}:
            if isinstance(node.value, ast.Constant) and node.value.value in {7, 10}:
                return f"pydantic bound {node.arg}={node.value.value}"
        return None

    assert _offences(check) == []


def test_nps_bands_are_not_restated():
    def check(node):
        if isinstance(node, ast.Constant) and node.value in BAND_NAMES:
            return f"NPS band {node.value!r}"
        return None

    assert _offences(check) == []


def test_the_id_rule_and_missing_column_check_are_not_restated():
    def check(node):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            if "[1-9][0-9]" in node.value:
                return "integer id pattern"
            if "required column" in node.value and "is missing" in node.value:
                return "missing-column message"
            if "(customer id) holds non-integer" in node.value:
                return "id rule message"
        if isinstance(node, ast.JoinedStr):
            text = "".join(v.value for v in node.values if isinstance(v, ast.Constant))
            if "required column" in text and "is missing" in text:
                return "missing-column message"
            if "(customer id) holds non-integer" in text or "(customer id) is boolean" in text:
                return "id rule message"
        return None

    assert _offences(check) == []


def test_the_atomic_write_is_not_restated():
    def check(node):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            owner = getattr(node.func.value, "id", "")
            if (owner, node.func.attr) in {("os", "replace"), ("os", "rename"), ("shutil", "move")}:
                return f"{owner}.{node.func.attr}"
        return None

    # defined once, with the other rules for outputs, in cx_models/outputs.py
    assert [o for o in _offences(check) if not o.startswith("cx_models/outputs.py:")] == []


def test_nps_category_and_scores_follow_the_declared_scales():
    assert [nps_category(s) for s in range(11)] == ["detractor"] * 7 + ["passive"] * 2 + [
        "promoter"
    ] * 2
    for name, scale in SURVEY_SCALES.items():
        best = scale.high if scale.higher_is_better else scale.low
        worst = scale.low if scale.higher_is_better else scale.high
        assert score_0_100(name, float(best)) == 100.0
        assert score_0_100(name, float(worst)) == 0.0
    assert score_0_100("ces", 7.0, ces_higher_is_better=True) == 100.0


def test_the_id_rule():
    assert decide_id_type("int", source="s", column="c") == "int"
    assert decide_id_type("text", source="s", column="c", present=2, all_integer_text=False) == (
        "str"
    )
    with pytest.raises(CXDataError, match="s: column 'c' \\(customer id\\) holds non-integer"):
        decide_id_type("float", source="s", column="c", all_whole=False)
    with pytest.raises(CXDataError, match="is boolean"):
        decide_id_type("bool", source="s", column="c")


def test_atomic_output_leaves_nothing_on_failure(tmp_path):
    out = tmp_path / "table.csv"
    out.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_output(out) as tmp:
            tmp.write_text("half")
            raise RuntimeError("disk gone")
    assert out.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["table.csv"]
    folder = tmp_path / "dataset"
    with atomic_output(folder, directory=True) as tmp:
        tmp.mkdir()
        (tmp / "part-0").write_text("x")
    assert (folder / "part-0").read_text() == "x"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dataset", "table.csv"]


def test_contract_module_lists_what_it_defines():
    assert set(contract.__all__) <= set(dir(contract))
