"""The command line on databases: inputs from tables and queries, scores and quarantine to tables.

DuckDB always; PostgreSQL (marked ``db``) where ``CX_TEST_POSTGRES_URI`` names a server.
"""

import tempfile
from pathlib import Path

import duckdb
import numpy as np
import polars as pl
import pytest
from cx_models.training.pipeline import TrainingConfig, train_scorer
from pg_server import POSTGRES, needs_postgres, require_server
from typer.testing import CliRunner

from cx_models.cli import app
from cx_models.schemas import validate_surveys, validate_transactions
from cx_models.synthetic import generate_customer_base

AS_OF = "2025-12-31"


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """A small base with a few bad rows, in Parquet and in DuckDB, and a scorer."""
    base = generate_customer_base(2_000, seed=5)
    tx = base.transactions.select("customer_id", "timestamp", "amount")
    tx = tx.with_columns(pl.col("amount").round(2), pl.col("customer_id").cast(pl.String))
    bad = pl.DataFrame({
        "customer_id": [None, "7", "8"],
        "timestamp": tx["timestamp"].head(3),
        "amount": [10.0, -5.0, 3.0],
    })
    tx = pl.concat([tx, bad])
    sv = base.surveys.with_columns(pl.col("customer_id").cast(pl.String))
    folder = tmp_path_factory.mktemp("dbcli")
    tx.write_parquet(folder / "tx.parquet")
    sv.write_parquet(folder / "sv.parquet")
    con = duckdb.connect(str(folder / "shop.duckdb"))
    con.register("t", tx.to_arrow())
    con.register("s", sv.to_arrow())
    con.execute(
        "CREATE TABLE orders (id INTEGER PRIMARY KEY, customer_id VARCHAR, "
        "timestamp TIMESTAMPTZ, amount DECIMAL(12, 2), paid BOOLEAN)"
    )
    con.execute(
        "INSERT INTO orders SELECT row_number() OVER () AS id, customer_id, "
        "CAST(timestamp AS TIMESTAMPTZ), CAST(amount AS DECIMAL(12, 2)), true FROM t"
    )
    con.execute("CREATE TABLE answers AS SELECT * FROM s")
    con.close()
    clean = base.transactions
    scorer = train_scorer(
        validate_transactions(clean, as_of="2025-06-30").data,
        validate_surveys(base.surveys, as_of="2025-06-30").data,
        TrainingConfig(as_of="2025-06-30", max_snapshots=2),
    ).scorer
    return folder, len(tx), scorer


@pytest.fixture
def use_scorer(setup, monkeypatch):
    import cx_models.training.tracking as tracking
    from cx_models.serving.batch import as_predictor

    scorer = setup[2]
    monkeypatch.setattr(tracking, "load_model", lambda uri, tracking_uri=None: as_predictor(scorer))
    monkeypatch.setattr(tracking, "describe_model", lambda uri, tracking_uri=None: {})


def _cli(*args):
    res = CliRunner().invoke(app, [str(a) for a in args])
    return res.exit_code, res.stdout, res.stderr


def _score(transactions, surveys, out, *extra):
    return _cli(
        "score", "--model", "models:/cx@champion", "--as-of", AS_OF, "--chunk-customers", 700,
        "--transactions", *transactions, "--surveys", *surveys, "--out", *out, *extra,
    )


def _table(uri_path, name):
    con = duckdb.connect(str(uri_path), read_only=True)
    try:
        return pl.from_arrow(con.sql(f"SELECT * FROM {name}").to_arrow_table())
    finally:
        con.close()


def _assert_same_scores(a: pl.DataFrame, b: pl.DataFrame):
    a, b = a.sort("customer_id"), b.sort("customer_id")
    assert a.columns == b.columns and a.height == b.height > 1900
    for col in a.columns:
        if a[col].dtype.is_numeric():
            np.testing.assert_allclose(a[col].cast(pl.Float64).to_numpy(),
                                       b[col].cast(pl.Float64).to_numpy(),
                                       atol=1e-9, rtol=0, equal_nan=True, err_msg=col)
        else:
            assert a[col].to_list() == b[col].to_list(), col


def test_score_from_duckdb_to_duckdb_equals_the_parquet_scores(setup, use_scorer):
    folder, rows, _ = setup
    shop = f"duckdb:///{folder}/shop.duckdb"
    crm = folder / "crm.duckdb"
    code, _, err = _score(
        [f"{folder}/tx.parquet"], [f"{folder}/sv.parquet"], [f"{folder}/s.parquet"],
        "--quarantine-out", f"{folder}/q.parquet",
    )
    assert code == 0, err
    db_args = (
        [shop, "--transactions-table", "orders"],
        [shop, "--surveys-query", "SELECT * FROM answers"],
        [f"duckdb:///{crm}", "--out-table", "cx_scores"],
        "--quarantine-out", f"duckdb:///{crm}", "--quarantine-table", "cx_quarantine",
    )
    code, _, err = _score(*db_args)
    assert code == 0, err
    assert f"to duckdb:///{crm} (table cx_scores)" in err
    _assert_same_scores(_table(crm, "cx_scores"), pl.read_parquet(folder / "s.parquet"))
    meta = dict(_table(crm, "cx_scores_meta").iter_rows())
    assert meta["as_of"] == AS_OF and meta["model_uri"] == "models:/cx@champion"
    # rows in = used + quarantined + after as_of; the quarantine holds each rejected row
    quarantine = _table(crm, "cx_quarantine")
    from_file = pl.read_parquet(folder / "q.parquet")
    assert quarantine.height == from_file.height == 2  # the missing id, the negative amount
    assert sorted(quarantine["reason"].to_list()) == sorted(from_file["reason"].to_list())
    assert f"{rows:,}" in err
    # a view on the scores survives the next run; nothing is left in the scratch folder
    con = duckdb.connect(str(crm))
    con.execute("CREATE VIEW risky AS SELECT customer_id FROM cx_scores WHERE churn_risk > 0.5")
    con.close()
    code, _, err = _score(*db_args)
    assert code == 0, err
    assert _table(crm, "risky").height > 0
    scratch = Path(tempfile.gettempdir()) / "cx-models"
    assert not [p for p in scratch.glob("*") if "cx_scores" in p.name]


def test_database_options_fail_in_one_line(setup, use_scorer):
    folder, _, _ = setup
    shop = f"duckdb:///{folder}/shop.duckdb"
    out = ["--out", f"{folder}/never.parquet"]

    def features(*args):
        code, _, err = _cli("features", "--as-of", AS_OF, *out, *args)
        assert code == 2 and len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
        return err

    assert "give --transactions-table or --transactions-query" in features(
        "--transactions", shop)
    assert "one of them" in features(
        "--transactions", shop, "--transactions-table", "orders", "--transactions-query", "x")
    assert "needs a database URI as --transactions" in features(
        "--transactions", f"{folder}/tx.parquet", "--transactions-table", "orders")
    assert "(table nowhere): cannot read the transactions" in features(
        "--transactions", shop, "--transactions-table", "nowhere")
    err = features("--transactions", shop, "--transactions-query",
                   "SELECT customer_id, timestamp, paid AS amount FROM orders")
    assert "column 'amount' (amount) has type boolean" in err
    assert "(query): the transactions are empty" in features(
        "--transactions", shop, "--transactions-query", "SELECT * FROM orders WHERE id < 0")
    err = features("--transactions", "postgresql://ann:s3cret@127.0.0.1:1/shop",
                   "--transactions-table", "orders")
    assert "cannot connect" in err and "s3cret" not in err
    code, _, err = _score([shop, "--transactions-table", "orders"], [f"{folder}/sv.parquet"],
                          [f"duckdb:///{folder}/crm.duckdb"])
    assert code == 2 and "give --out-table" in err
    assert not (folder / "never.parquet").exists()


def test_features_to_a_duckdb_table_equal_the_parquet_features(setup):
    folder, _, _ = setup
    shop = f"duckdb:///{folder}/shop.duckdb"
    code, _, err = _cli("features", "--as-of", AS_OF, "--transactions", f"{folder}/tx.parquet",
                        "--out", f"{folder}/f.parquet")
    assert code == 0, err
    code, _, err = _cli("features", "--as-of", AS_OF, "--transactions", shop,
                        "--transactions-table", "orders", "--out", shop, "--out-table", "feats")
    assert code == 0, err
    assert f"to {shop} (table feats)" in err
    from_file = pl.read_parquet(f"{folder}/f.parquet")
    _assert_same_scores(_table(folder / "shop.duckdb", "feats"), from_file)
    meta = dict(_table(folder / "shop.duckdb", "feats_meta").iter_rows())
    assert meta["as_of"] == f'"{AS_OF}"' or meta["as_of"] == AS_OF


def test_an_output_table_never_overwrites_an_input_table(setup, use_scorer):
    """The scores, features or quarantine never replace a table (or its _meta) being read."""
    from cx_models.serving.batch import score_files

    from cx_models.database import DatabaseSource, DatabaseTarget
    from cx_models.errors import CXDataError
    from cx_models.sources import EventInputs

    folder, _, scorer = setup
    shop = f"duckdb:///{folder}/shop.duckdb"
    before = _table(folder / "shop.duckdb", "orders")
    same = f"duckdb:///{folder}/./shop.duckdb"  # the same file by another spelling
    cases = [
        (["--transactions-table", "orders"], ["--out", same, "--out-table", "ORDERS"]),
        (["--transactions-table", "main.orders"], ["--out", shop, "--out-table", "orders"]),
        (["--transactions-query", "SELECT * FROM orders WHERE amount > 0"],
         ["--out", shop, "--out-table", "orders"]),
        (["--transactions-table", "orders_meta"], ["--out", shop, "--out-table", "orders"]),
        (["--transactions-table", "orders"], ["--out", f"{folder}/x.parquet",
                                              "--quarantine-out", shop, "--quarantine-table",
                                              "orders"]),
    ]
    for source, target in cases:
        for verb in ("features", "score"):
            extra = ["--model", "models:/cx@champion"] if verb == "score" else []
            code, _, err = _cli(verb, "--as-of", AS_OF, "--transactions", shop, *source, *target,
                                *extra)
            assert code == 2 and "an output never overwrites an input" in err, (verb, source, err)
            assert len(err.strip().splitlines()) == 1
    # two outputs on one table, and the Python API
    code, _, err = _cli("features", "--as-of", AS_OF, "--transactions", f"{folder}/tx.parquet",
                        "--out", shop, "--out-table", "q", "--quarantine-out", shop,
                        "--quarantine-table", "q")
    assert code == 2 and "another output" in err
    with pytest.raises(CXDataError, match="never overwrites an input"):
        score_files(scorer, EventInputs(DatabaseSource(shop, table="orders")), as_of=AS_OF,
                    out=DatabaseTarget(shop, "orders"))
    assert _table(folder / "shop.duckdb", "orders").equals(before)
    # another table of the same database, or the same name in another database, is fine
    code, _, err = _cli("features", "--as-of", AS_OF, "--transactions", shop,
                        "--transactions-table", "orders", "--out", f"duckdb:///{folder}/crm.duckdb",
                        "--out-table", "orders")
    assert code == 0, err


@pytest.mark.db
@needs_postgres
def test_score_from_postgres_to_postgres_equals_the_parquet_scores(setup, use_scorer):
    from adbc_driver_postgresql import dbapi

    require_server()
    folder, _, _ = setup
    tx = pl.read_parquet(folder / "tx.parquet")
    with dbapi.connect(POSTGRES) as con, con.cursor() as cur:
        for name in ("cx_cli_orders", "cx_cli_scores", "cx_cli_scores_meta"):
            cur.execute(f"DROP TABLE IF EXISTS {name} CASCADE")
        cur.execute("CREATE TABLE cx_cli_orders (id serial PRIMARY KEY, customer_id text, "
                    "timestamp timestamptz, amount numeric(12, 2))")
        cur.adbc_ingest("cx_cli_raw", tx.to_arrow(), mode="replace")
        cur.execute("INSERT INTO cx_cli_orders (customer_id, timestamp, amount) SELECT "
                    "customer_id, timestamp AT TIME ZONE 'UTC', amount FROM cx_cli_raw")
        cur.execute("DROP TABLE cx_cli_raw")
        con.commit()
    if not (folder / "s.parquet").exists():
        code, _, err = _score([f"{folder}/tx.parquet"], [f"{folder}/sv.parquet"],
                              [f"{folder}/s.parquet"])
        assert code == 0, err
    code, _, err = _score([POSTGRES, "--transactions-table", "cx_cli_orders"],
                          [f"{folder}/sv.parquet"],
                          [POSTGRES, "--out-table", "cx_cli_scores"])
    assert code == 0, err
    with dbapi.connect(POSTGRES) as con, con.cursor() as cur:
        cur.execute("SELECT * FROM cx_cli_scores")
        scores = pl.from_arrow(cur.fetch_arrow_table())
        cur.execute("SELECT value FROM cx_cli_scores_meta WHERE key = 'as_of'")
        assert cur.fetchone()[0] == AS_OF
    _assert_same_scores(scores, pl.read_parquet(folder / "s.parquet"))
