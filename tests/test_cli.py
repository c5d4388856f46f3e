import datetime as dt
import json

import polars as pl
import pytest
from typer.testing import CliRunner

from cx_models.cli import app
from cx_models.io import read_features, read_table_metadata

runner = CliRunner()


def run(*args):
    return runner.invoke(app, [str(a) for a in args])


def test_features_end_to_end(tmp_path, small_base_dir):
    out = tmp_path / "features.parquet"
    q = tmp_path / "q.csv"
    res = run(
        "features",
        "--transactions",
        small_base_dir / "transactions.parquet",
        "--surveys",
        small_base_dir / "surveys.parquet",
        "--as-of",
        "2025-06-30",
        "--time-unit",
        "w",
        "--out",
        out,
        "--quarantine-out",
        q,
    )
    assert res.exit_code == 0, res.stderr
    assert res.stdout == ""  # nothing mixed into stdout
    assert "wrote" in res.stderr and "Input validation" in res.stderr
    f = read_features(out)
    assert f.attrs == {"as_of": "2025-06-30", "time_unit": "W", "lookback_days": 365}
    meta = read_table_metadata(out)
    assert meta["validation"]["transactions"]["rows_in"] == (
        meta["validation"]["transactions"]["rows_used"]
        + meta["validation"]["transactions"]["rows_after_as_of"]
    )
    assert (f["recency"] <= f["T"]).all()
    assert q.exists()


def test_column_mapping_flags_and_quarantine_file(tmp_path):
    tx = tmp_path / "orders.csv"
    tx.write_text(
        "cid,day,value,note\n1,20240101,10,x\n1,20240105,-3,y\n2,2024,5,z\n,20240102,1,w\n"
    )
    sv = tmp_path / "sv.csv"
    sv.write_text("who,when,kind,val\n1,20240102,NPS,9\n1,20240103,nps,12\n")
    out, q = tmp_path / "f.csv", tmp_path / "q.parquet"
    res = run(
        "features",
        "--transactions",
        tx,
        "--surveys",
        sv,
        "--as-of",
        "2024-06-30",
        "--out",
        out,
        "--quarantine-out",
        q,
        "--customer-col",
        "cid",
        "--time-col",
        "day",
        "--amount-col",
        "value",
        "--time-format",
        "%Y%m%d",
        "--survey-customer-col",
        "who",
        "--survey-time-col",
        "when",
        "--survey-col",
        "kind",
        "--score-col",
        "val",
    )
    assert res.exit_code == 0, res.stderr
    f = pl.read_csv(out)
    assert f["customer_id"].to_list() == [1]
    assert f["nps_latest"].to_list() == [9.0]
    quarantined = pl.read_parquet(q)
    assert quarantined.select("source", "row", "reason").rows() == [
        ("transactions", 1, "negative_amount"),
        ("transactions", 2, "unparseable_timestamp"),
        ("transactions", 3, "missing_customer_id"),
        ("surveys", 1, "out_of_range_score"),
    ]
    assert quarantined["note"].to_list()[:3] == ["y", "z", "w"]
    assert json.loads((tmp_path / "f.csv.meta.json").read_text())["time_unit"] == "D"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--as-of", "2024-02-30"], "--as-of '2024-02-30' is not a date"),
        (
            ["--as-of", "2020-01-01"],
            "no usable transaction at or before as_of 2020-01-01: 1 rows quarantined, 1 after",
        ),
        (["--amount-col", "price"], "required column 'price' (amount) is missing"),
        (["--strict"], "--strict: 1 of 2 transactions rows"),
    ],
)
def test_data_errors_exit_2_without_traceback(tmp_path, args, message):
    tx = tmp_path / "tx.csv"
    tx.write_text("customer_id,timestamp,amount\n1,2024-01-01,1\n1,2024-01-02,-1\n")
    base = ["features", "--transactions", tx, "--out", tmp_path / "f.parquet"]
    if "--as-of" not in args:
        base += ["--as-of", "2024-06-30"]
    res = run(*base, *args)
    assert res.exit_code == 2
    assert "error:" in res.stderr and message in " ".join(res.stderr.split())
    assert "Traceback" not in res.stderr + res.stdout
    assert not (tmp_path / "f.parquet").exists()


def test_missing_file_and_bad_option_value(tmp_path):
    res = run(
        "features",
        "--transactions",
        tmp_path / "nope.csv",
        "--as-of",
        "2024-01-01",
        "--out",
        tmp_path / "f.parquet",
    )
    assert res.exit_code == 2 and "nope.csv: transactions file not found" in res.stderr
    res = run(
        "features",
        "--transactions",
        tmp_path / "nope.csv",
        "--as-of",
        "2024-01-01",
        "--out",
        tmp_path / "f.parquet",
        "--time-unit",
        "M",
    )
    assert res.exit_code == 2 and "--time-unit" in res.stderr
    res = run(
        "features",
        "--transactions",
        tmp_path / "nope.csv",
        "--as-of",
        "2024-01-01",
        "--out",
        tmp_path / "f.json",
    )
    assert res.exit_code == 2 and "f.json" in res.stderr and ".csv or .parquet" in res.stderr


def test_generate_writes_the_four_files(tmp_path):
    res = run("generate", "--customers", 200, "--out", tmp_path / "base", "--seed", 3)
    assert res.exit_code == 0, res.stderr
    assert res.stdout == ""
    names = sorted(p.name for p in (tmp_path / "base").iterdir())
    assert names == ["params.json", "surveys.parquet", "transactions.parquet", "truth.parquet"]
    assert pl.read_parquet(tmp_path / "base" / "truth.parquet").height == 200


def _main(monkeypatch, capsys, *args):
    """Run the console script's entry point; return (exit code, stdout, stderr)."""
    from cx_models.cli import main

    with pytest.raises(SystemExit) as exit_info:
        main([str(a) for a in args])
    captured = capsys.readouterr()
    return exit_info.value.code, captured.out, captured.err


def test_usage_errors_are_one_error_line_with_exit_2(monkeypatch, capsys):
    code, _, err = _main(monkeypatch, capsys, "features", "--as-of", "2024-01-01")
    assert code == 2
    assert err.strip().splitlines() == [
        "error: Missing option '--out'. (see cx-models features --help)"
    ]
    code, _, err = _main(monkeypatch, capsys, "features", "--as-of", "2024-01-01", "--out",
                         "f.parquet")
    assert code == 2
    assert err.strip().splitlines() == [
        "error: give --transactions, or --subscriptions for a subscription business"
    ]
    code, _, err = _main(monkeypatch, capsys, "score", "--horizon-days", "0", "--model", "m")
    assert code == 2 and "--horizon-days" in err and len(err.strip().splitlines()) == 1
    code, _, err = _main(monkeypatch, capsys, "features", "--time-unit", "M")
    assert code == 2 and "'M' is not one of" in err and "Traceback" not in err


def test_version(monkeypatch, capsys):
    from cx_models import __version__

    code, out, _ = _main(monkeypatch, capsys, "--version")
    assert code == 0 and out == f"cx-models {__version__}\n"


@pytest.mark.parametrize(
    "verb", [["features"], ["train"], ["score"], ["serve"], ["demo"], ["clv", "fit"]]
)
def test_help_shows_no_bool_metavar_and_every_option_has_help(verb):
    from cx_models.cli import app as cli_app

    res = runner.invoke(cli_app, [*verb, "--help"], env={"COLUMNS": "200"}, terminal_width=200)
    assert res.exit_code == 0
    lines = [line for line in res.stdout.splitlines() if "--" in line and "--help" not in line]
    assert lines and not [line for line in lines if "<bool>" in line]
    # every option line carries a help text after its metavar
    for line in lines:
        text = line.strip("│ ").split()
        assert len(text) >= 2, line


def test_train_help_says_the_config_holds_every_setting():
    res = runner.invoke(app, ["train", "--help"], terminal_width=200)
    text = " ".join(res.stdout.replace("│", " ").split())
    assert "[nco.weights]" in text and "training settings" in text
    for option in ("--quarantine-out", "--strict", "--drop-duplicates", "--lookback-days"):
        assert option in text


def test_no_quarantined_rows_is_said_so(tmp_path, small_base_dir):
    q = tmp_path / "q.csv"
    res = run(
        "features",
        "--transactions",
        small_base_dir / "transactions.parquet",
        "--as-of",
        "2025-06-30",
        "--out",
        tmp_path / "f.parquet",
        "--quarantine-out",
        q,
    )
    assert res.exit_code == 0, res.stderr
    assert "quarantined rows written" not in res.stderr
    assert "no row was quarantined" in res.stderr and q.exists()


def test_renamed_clv_option_keeps_its_old_spelling_with_one_warning(tmp_path, small_base_dir):
    common = ["clv", "fit", "--transactions", small_base_dir / "transactions.parquet"]
    common += ["--as-of", "2025-06-30"]
    old = run(*common, "--out", tmp_path / "old.json", "--model", "mbgnbd")
    new = run(*common, "--out", tmp_path / "new.json", "--clv-model", "mbgnbd")
    assert old.exit_code == 0 and new.exit_code == 0, old.stderr + new.stderr
    warnings_seen = [line for line in old.stderr.splitlines() if "deprecated" in line]
    assert warnings_seen == ["warning: --model is deprecated; use --clv-model"]
    assert "deprecated" not in new.stderr
    assert json.loads(old.stdout)["model"] == json.loads(new.stdout)["model"] == "mbgnbd"


def test_nested_columns_and_a_repeated_header_are_one_error_line(tmp_path):
    nested = tmp_path / "nested.parquet"
    pl.DataFrame(
        {"customer_id": [1, 2], "timestamp": ["2025-01-01", "2025-01-02"], "amount": [[1.0], [2]]}
    ).write_parquet(nested)
    structs = tmp_path / "structs.parquet"
    pl.DataFrame(
        {"customer_id": [{"a": 1}], "timestamp": ["2025-01-01"], "amount": [1.0]}
    ).write_parquet(structs)
    repeated = tmp_path / "repeated.csv"
    repeated.write_text("customer_id,timestamp,amount,amount\n1,2025-01-01,5,7\n")
    expected = {
        nested: "column 'amount' (amount) has type List(Float64); expected one number",
        structs: "column 'customer_id' (customer_id) has type Struct",
        repeated: "the header names column 'amount' twice (columns 3 and 4)",
    }
    for path, message in expected.items():
        for verb in (["features"], ["score", "--model", "models:/x@champion"]):
            res = run(*verb, "--transactions", path, "--as-of", "2025-12-31",
                      "--out", tmp_path / "o.parquet")
            assert res.exit_code == 2, (verb, path, res.stderr)
            errors = [line for line in res.stderr.splitlines() if "error" in line.lower()]
            assert message in res.stderr and len(errors) == 1 and errors[0].startswith("error:")
            assert "Traceback" not in res.stderr


def test_training_hints_name_the_real_options(small_base_dir, tmp_path):
    tx = small_base_dir / "transactions.parquet"
    res = run("train", "--transactions", tx, "--as-of", "2025-12-31", "--horizon-days", 1070,
              "--tracking-uri", f"sqlite:///{tmp_path}/m.db")
    assert res.exit_code == 2
    first = pl.read_parquet(tx)["timestamp"].min().date()
    largest = (dt.date(2025, 12, 31) - first).days - 30
    assert f"the largest horizon that works is {largest} days" in res.stderr, res.stderr
    assert "the earliest as_of that works is" in res.stderr
    res = run("train", "--transactions", tx, "--as-of", "2025-12-31", "--horizon-days", 100000)
    assert res.exit_code == 2 and "at most 36,525, got 100000" in res.stderr
    assert "--penalizer" in run("train", "--help").stdout
    res = run("train", "--transactions", tx, "--as-of", "2025-12-31", "--dropout-covariates",
              " region, plan", "--tracking-uri", f"sqlite:///{tmp_path}/m.db")
    assert res.exit_code == 2 and "Traceback" not in res.stderr
    assert "CLV covariate(s) 'region', 'plan' must be customer attributes" in res.stderr
