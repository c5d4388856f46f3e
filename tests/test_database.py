"""Inputs from and outputs to databases: DuckDB always; PostgreSQL where a server is given.

PostgreSQL tests (marked ``db``) run against the server in ``CX_TEST_POSTGRES_URI``
(e.g. ``postgresql://postgres@127.0.0.1:5432/postgres``); without it they skip.
"""


import duckdb
import numpy as np
import pandas as pd
import polars as pl
import pytest
from pg_server import POSTGRES, needs_postgres, require_server

from cx_models.database import DatabaseSource, DatabaseTarget, read_source, write_target
from cx_models.datasets import load_cdnow
from cx_models.errors import CXDataError
from cx_models.features import build_features

AS_OF = "1998-06-30"


@pytest.fixture(scope="module")
def shop(tmp_path_factory):
    """CDNOW's sample in a DuckDB file: numeric(12,2) amounts, timestamptz times."""
    path = tmp_path_factory.mktemp("db") / "shop.duckdb"
    tx = pl.from_pandas(load_cdnow("sample")).select("customer_id", "timestamp", "amount")
    con = duckdb.connect(str(path))
    con.register("t", tx.to_arrow())
    con.execute(
        "CREATE TABLE orders (id INTEGER PRIMARY KEY, customer_id VARCHAR, "
        "timestamp TIMESTAMPTZ, amount DECIMAL(12, 2), flagged BOOLEAN)"
    )
    con.execute(
        "INSERT INTO orders SELECT row_number() OVER () AS id, customer_id, "
        "CAST(timestamp AS TIMESTAMPTZ), CAST(amount AS DECIMAL(12, 2)), false FROM t"
    )
    con.close()
    return f"duckdb:///{path}", tx


def test_features_from_duckdb_equal_those_from_the_same_rows_in_parquet(shop, tmp_path):
    uri, tx = shop
    parquet = tmp_path / "orders.parquet"
    tx.with_columns(pl.col("amount").round(2)).write_parquet(parquet)
    from_db = build_features(DatabaseSource(uri, table="orders"), None, as_of=AS_OF)
    from_file = build_features(parquet, None, as_of=AS_OF)
    a, b = from_db.features, from_file.features
    assert len(a) == len(b) == 2357
    for col in ("frequency", "recency", "T", "monetary_value"):
        np.testing.assert_allclose(a[col].to_numpy(float), b[col].to_numpy(float), atol=1e-9)
    report = from_db.transactions.to_dict()
    assert report["rows_in"] == report["rows_used"] + report["rows_quarantined"] + report[
        "rows_after_as_of"] == len(tx)
    assert report["source"] == f"{uri} (table orders)"


def test_a_query_is_a_source_and_tables_read_in_primary_key_order(shop):
    uri, tx = shop
    frame, name = read_source(DatabaseSource(uri, query="SELECT * FROM orders WHERE id <= 10"),
                              what="transactions")
    assert name.endswith("(query)") and frame["id"].to_list() == list(range(1, 11))
    whole, _ = read_source(DatabaseSource(uri, table="orders"), what="transactions")
    assert whole["id"].to_list() == sorted(whole["id"].to_list())
    assert whole.schema["amount"] == pl.Decimal(12, 2)


def test_database_errors_name_the_source(shop, tmp_path):
    uri, _ = shop
    with pytest.raises(CXDataError, match=r"\(table nowhere\): cannot read the transactions"):
        read_source(DatabaseSource(uri, table="nowhere"), what="transactions")
    with pytest.raises(CXDataError, match=r"\(query\): cannot read"):
        read_source(DatabaseSource(uri, query="SELEC oops"), what="transactions")
    with pytest.raises(CXDataError, match="database file not found"):
        read_source(DatabaseSource(f"duckdb:///{tmp_path}/none.duckdb", table="t"), what="x")
    with pytest.raises(CXDataError, match="is not a table name"):
        DatabaseSource(uri, table="orders; DROP TABLE orders")
    with pytest.raises(CXDataError, match="a table or a query"):
        DatabaseSource(uri)
    with pytest.raises(CXDataError, match="not a database URI"):
        DatabaseSource("mysql://shop", table="orders")


def _scores(n, shift=0.0):
    return pd.DataFrame({"customer_id": [f"c{i}" for i in range(n)],
                         "churn_risk": np.linspace(0, 1, n) + shift})


def test_duckdb_target_is_replaced_in_one_transaction_keeping_its_views(tmp_path):
    uri = f"duckdb:///{tmp_path}/crm.duckdb"
    target = DatabaseTarget(uri, "cx_scores")
    write_target(_scores(5), target, metadata={"as_of": "2025-12-31", "horizons": [90]})
    con = duckdb.connect(f"{tmp_path}/crm.duckdb")
    con.execute("CREATE VIEW risky AS SELECT * FROM cx_scores WHERE churn_risk > 0.5")
    con.close()
    write_target(_scores(8, 0.1), target, metadata={"as_of": "2026-01-31"})
    con = duckdb.connect(f"{tmp_path}/crm.duckdb")
    assert con.execute("SELECT count(*) FROM cx_scores").fetchone()[0] == 8
    assert con.execute("SELECT count(*) FROM risky").fetchone()[0] == 5  # the view survived
    assert dict(con.execute("SELECT * FROM cx_scores_meta").fetchall()) == {
        "as_of": "2026-01-31"}
    con.close()
    wrong = pd.DataFrame({"customer_id": ["x"], "other": [1.0]})
    with pytest.raises(CXDataError, match="the table has columns"):
        write_target(wrong, target)
    con = duckdb.connect(f"{tmp_path}/crm.duckdb")
    assert con.execute("SELECT count(*) FROM cx_scores").fetchone()[0] == 8  # unchanged
    con.close()


# ---------------------------------------------------------------- PostgreSQL


@pytest.fixture(scope="module")
def pg(shop):
    require_server()
    from adbc_driver_postgresql import dbapi

    _, tx = shop
    with dbapi.connect(POSTGRES) as con, con.cursor() as cur:
        cur.execute("DROP TABLE IF EXISTS cx_orders CASCADE")
        cur.execute("CREATE TABLE cx_orders (id serial PRIMARY KEY, customer_id text, "
                    "timestamp timestamptz, amount numeric(12, 2))")
        cur.adbc_ingest("cx_orders_raw", tx.to_arrow(), mode="replace")
        cur.execute("INSERT INTO cx_orders (customer_id, timestamp, amount) SELECT "
                    "customer_id, timestamp AT TIME ZONE 'UTC', amount FROM cx_orders_raw")
        cur.execute("DROP TABLE cx_orders_raw")
        con.commit()
    return POSTGRES, tx


@pytest.mark.db
@needs_postgres
def test_postgres_rows_give_the_features_of_the_same_rows_in_parquet(pg, tmp_path):
    uri, tx = pg
    parquet = tmp_path / "orders.parquet"
    tx.with_columns(pl.col("amount").round(2)).write_parquet(parquet)
    a = build_features(DatabaseSource(uri, table="cx_orders"), None, as_of=AS_OF).features
    b = build_features(parquet, None, as_of=AS_OF).features
    assert len(a) == len(b) == 2357
    for col in ("frequency", "recency", "T", "monetary_value"):
        np.testing.assert_allclose(a[col].to_numpy(float), b[col].to_numpy(float), atol=1e-9)


@pytest.mark.db
@needs_postgres
def test_postgres_target_keeps_views_and_grants_over_two_runs(pg):
    from adbc_driver_postgresql import dbapi

    uri, _ = pg
    target = DatabaseTarget(uri, "cx_scores")
    with dbapi.connect(uri) as con, con.cursor() as cur:
        cur.execute("DROP TABLE IF EXISTS cx_scores CASCADE")
        cur.execute("DROP TABLE IF EXISTS cx_scores_meta")
        con.commit()
    write_target(_scores(5), target, metadata={"as_of": "2025-12-31"})
    with dbapi.connect(uri) as con, con.cursor() as cur:
        cur.execute("CREATE VIEW cx_risky AS SELECT * FROM cx_scores WHERE churn_risk > 0.5")
        cur.execute("GRANT SELECT ON cx_scores TO PUBLIC")
        con.commit()
    write_target(_scores(8, 0.1), target, metadata={"as_of": "2026-01-31"})
    with dbapi.connect(uri) as con, con.cursor() as cur:
        cur.execute("SELECT count(*) FROM cx_scores")
        assert cur.fetchone()[0] == 8
        cur.execute("SELECT count(*) FROM cx_risky")
        assert cur.fetchone()[0] == 5
        cur.execute("SELECT has_table_privilege('public', 'cx_scores', 'SELECT')")
        assert cur.fetchone()[0] is True
        cur.execute("SELECT key, value FROM cx_scores_meta")
        assert dict(cur.fetchall()) == {"as_of": "2026-01-31"}
        cur.execute("SELECT count(*) FROM pg_tables WHERE tablename LIKE '%cx_staging%'")
        assert cur.fetchone()[0] == 0


@pytest.mark.db
@needs_postgres
def test_postgres_errors_name_the_source_without_the_password():
    bad = "postgresql://ann:s3cret@127.0.0.1:1/none"
    with pytest.raises(CXDataError) as info:
        read_source(DatabaseSource(bad, table="orders"), what="transactions")
    assert "s3cret" not in str(info.value) and "cannot connect" in str(info.value)
    with pytest.raises(CXDataError, match=r"\(table nowhere\): cannot read"):
        read_source(DatabaseSource(POSTGRES, table="nowhere"), what="transactions")
