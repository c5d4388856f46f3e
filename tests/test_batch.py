import datetime as dt
import gc
import os
import re
import shutil
import subprocess
from html.parser import HTMLParser

import numpy as np
import pandas as pd
import pytest
from cx_models.serving.batch import EXTRA_COLUMNS, score_events, score_features
from cx_models.serving.report import ReportContext, render_report
from cx_models.training.pipeline import TrainingConfig, train_scorer

from cx_models.features import build_customer_features
from cx_models.io import read_table_metadata, write_table
from cx_models.schemas import validate_surveys, validate_transactions
from cx_models.scoring import SCORE_COLUMNS
from cx_models.sources import EventInputs
from cx_models.synthetic import generate_customer_base

AS_OF = "2025-12-31"


@pytest.fixture(scope="module")
def setup():
    base = generate_customer_base(5_000, seed=31)
    tx = validate_transactions(base.transactions, as_of=AS_OF).data
    sv = validate_surveys(base.surveys, as_of=AS_OF).data
    result = train_scorer(tx, sv, TrainingConfig(as_of=AS_OF, max_snapshots=3))
    return base, result.scorer


def test_output_columns_and_dtypes(setup):
    base, scorer = setup
    res = score_events(scorer, base.transactions, base.surveys, as_of=AS_OF, chunk_customers=1000)
    scored = res.scored
    assert list(scored.columns) == [*SCORE_COLUMNS, *EXTRA_COLUMNS]
    assert str(scored["customer_id"].dtype) == "Int64"
    for col in SCORE_COLUMNS[1:-2]:
        assert scored[col].dtype == np.float64, col
    assert scored["priority_rank"].dtype == np.int64
    assert scored["drivers"].map(type).eq(str).all()
    assert len(scored) == base.transactions["customer_id"].n_unique()
    assert sorted(scored["priority_rank"]) == list(range(1, len(scored) + 1))
    assert res.chunks == 5


def test_chunked_equals_one_chunk(setup):
    base, scorer = setup
    one = score_events(
        scorer, base.transactions, base.surveys, as_of=AS_OF, chunk_customers=10**7
    ).scored
    many = score_events(
        scorer, base.transactions, base.surveys, as_of=AS_OF, chunk_customers=777
    ).scored
    pd.testing.assert_frame_equal(
        one.sort_values("customer_id").reset_index(drop=True),
        many.sort_values("customer_id").reset_index(drop=True),
    )
    feats = score_features(scorer, _features(base), chunk_customers=333)
    pd.testing.assert_frame_equal(
        feats.reset_index(drop=True), one.sort_values("customer_id").reset_index(drop=True)
    )


def _features(base):
    from cx_models.features import build_customer_features

    return build_customer_features(base.transactions, base.surveys, as_of=AS_OF)


def test_quarantine_counts_reconcile(setup):
    base, scorer = setup
    tx = base.transactions.to_pandas()
    tx.loc[::500, "amount"] = -1.0  # 10 bad rows per 5,000
    tx["customer_id"] = tx["customer_id"].astype("Int64")
    tx.loc[3, "customer_id"] = pd.NA
    res = score_events(scorer, tx, base.surveys, as_of="2025-06-30", chunk_customers=2000)
    r = res.transactions
    assert r.rows_in == len(tx)
    assert r.rows_in == r.rows_used + r.rows_quarantined + r.rows_after_as_of
    assert r.reasons["negative_amount"] >= 1 and r.reasons["missing_customer_id"] == 1
    assert r.rows_after_as_of > 0


class _Failing:
    def __init__(self, scorer):
        self.scorer, self.calls = scorer, 0

    def predict(self, frame, params=None):
        self.calls += 1
        if self.calls == 2:
            raise RuntimeError("killed mid-job")
        return self.scorer.score(frame, explain=False)


def test_a_failed_job_leaves_no_output(setup, tmp_path, monkeypatch):
    import cx_models.training.tracking as tracking
    from typer.testing import CliRunner

    from cx_models.cli import app

    base, scorer = setup
    data = tmp_path / "data"
    from cx_models.synthetic import write_customer_base

    write_customer_base(base, data)
    monkeypatch.setattr(tracking, "load_model", lambda uri, tracking_uri=None: _Failing(scorer))
    monkeypatch.setattr(tracking, "describe_model", lambda uri, tracking_uri=None: {})
    out = tmp_path / "scored.parquet"
    args = ["score", "--model", "models:/x@champion", "--as-of", AS_OF, "--quiet"]
    args += ["--transactions", str(data / "transactions.parquet"), "--out", str(out)]
    args += ["--chunk-customers", "1000"]
    res = CliRunner().invoke(app, args)
    assert res.exit_code != 0
    assert gc.isenabled() and gc.get_freeze_count() == 0  # the job's GC settings undone
    assert not out.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".scored")]
    # and the same job with a working model writes the file, with metadata
    monkeypatch.setattr(
        tracking,
        "load_model",
        lambda uri, tracking_uri=None: __import__(
            "cx_models.serving.batch", fromlist=["as_predictor"]
        ).as_predictor(scorer),
    )
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, res.stderr
    assert gc.isenabled() and gc.get_freeze_count() == 0
    assert res.stderr == ""  # --quiet
    meta = read_table_metadata(out)
    assert meta["as_of"] == AS_OF and meta["model_uri"] == "models:/x@champion"
    written = pd.read_parquet(out)
    assert sorted(written["priority_rank"]) == list(range(1, len(written) + 1))
    top = written.loc[written["priority_rank"] == 1, "value_at_risk"].iloc[0]
    assert top == written["value_at_risk"].max()


class _Collect(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags, self.attrs = [], []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self.attrs.extend(attrs)


def test_report_structure(setup):
    base, scorer = setup
    scored = score_events(scorer, base.transactions, base.surveys, as_of=AS_OF).scored
    scored["region"] = np.where(scored["customer_id"] % 2 == 0, "north", "south")
    page = render_report(scored, top=50, segment="region", context=ReportContext(as_of=AS_OF))
    parser = _Collect()
    parser.feed(page)
    assert parser.tags.count("svg") == 3  # churn, CLV, NCO distributions
    assert parser.tags.count("table") == 2  # segments + at-risk list
    assert parser.tags.count("tr") == 1 + 50 + 1 + 2
    # self-contained: no external scripts, styles, fonts or images
    assert "link" not in parser.tags and "img" not in parser.tags
    assert not [v for k, v in parser.attrs if k in ("src", "href")]
    assert not re.search(r"https?://(?!www\.w3\.org/2000/svg)", page)
    # the list is ranked by value at risk
    first = scored.sort_values("priority_rank").iloc[0]
    assert f'data-v="{first["customer_id"]}"' in page
    end_of_list = page.index("</tbody></table></div><script")
    assert page.index(f'data-v="{first["customer_id"]}"') < end_of_list


def test_report_says_what_each_number_means(setup):
    from cx_models.serving.report_text import parse_drivers

    from cx_models.campaign import CampaignSettings, plan_campaign
    from cx_models.realised import observed_churn_history

    base, scorer = setup
    scored = score_events(scorer, base.transactions, base.surveys, as_of=AS_OF).scored
    ctx = ReportContext(horizon_days=90, clv_months=12, discount_rate=0.1, currency="EUR",
                        as_of=AS_OF)
    history = observed_churn_history(base.transactions, as_of=AS_OF, horizon_days=90, windows=2)
    plan, summary = plan_campaign(scored, CampaignSettings(contact_cost=5, save_rate=0.15))
    plan.attrs["campaign"] = summary
    page = render_report(scored, top=40, context=ctx, history=history, plan=plan)
    text = " ".join(re.sub(r"<[^>]+>", " ", page).split())
    # headline numbers carry horizon, unit and scale
    for words in ("mean churn risk, next 90 days", "CLV, next 12 months, discounted 10 %/yr, EUR",
                  "CES 1–7, lower is better", "NPS, −100 to 100", "mean NCO, 0–100"):
        assert words in text, words
    assert "<h2>How to read this</h2>" in page
    for term in ("Churn risk", "Value at risk", "NCO, the Net Customer Outcome", "Coverage"):
        assert f"<dt>{term}</dt>" in page
    # why at risk: only factors that raise the risk, in words, no log-odds
    listed = scored.sort_values("priority_rank").head(40)
    cells = re.findall(r'<td class="text why" data-v="([^"]*)"', page)
    assert len(cells) == 40 and not any("(+" in c or "(-" in c for c in cells)
    raising = [sum(c > 0 for _, _, c in parse_drivers(d)) for d in listed["drivers"]]
    assert [0 if c == "–" else len(c.split("; ")) for c in cells] == raising
    # the listed customers' share of the value at risk, computed here
    share = listed["value_at_risk"].sum() / scored["value_at_risk"].sum()
    assert f"hold {100 * share:.1f} % of the total value at risk" in text
    # observed churn of past windows, recomputed independently for the newest one
    day = dt.date.fromisoformat(AS_OF) - dt.timedelta(days=90)
    tx = base.transactions.to_pandas()
    seen = set(tx.loc[tx["timestamp"] < pd.Timestamp(day) + pd.Timedelta(days=1), "customer_id"])
    after = tx[(tx["timestamp"] >= pd.Timestamp(day) + pd.Timedelta(days=1))
               & (tx["timestamp"] < pd.Timestamp(AS_OF) + pd.Timedelta(days=1))]
    churned = len(seen - set(after["customer_id"])) / len(seen)
    assert history[0]["customers"] == len(seen)
    assert history[0]["observed_churn_rate"] == pytest.approx(churned)
    assert f"{100 * churned:.1f} %" in text and "Churn: predicted and observed" in text
    # the campaign plan, and whom to contact in the list
    assert "Campaign plan" in text and f"{summary['contacted']:,}" in text
    contact = re.findall(r'<td class="text" data-v="(yes|no)">', page)
    assert len(contact) == 40


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("chromium") is None, reason="Debian's chromium is not installed")
def test_report_renders_and_sorts_in_headless_chromium(setup, tmp_path):
    from cx_models.campaign import CampaignSettings, plan_campaign
    from cx_models.realised import observed_churn_history

    base, scorer = setup
    scored = score_events(scorer, base.transactions, base.surveys, as_of=AS_OF).scored
    scored["region"] = np.where(scored["customer_id"] % 2 == 0, "north", "south")
    plan, summary = plan_campaign(scored, CampaignSettings(contact_cost=5, save_rate=0.15))
    plan.attrs["campaign"] = summary
    history = observed_churn_history(base.transactions, as_of=AS_OF, horizon_days=90)
    ctx = ReportContext(horizon_days=90, clv_months=12, discount_rate=0.1, currency="EUR",
                        as_of=AS_OF, model_uri="models:/cx-scorer/1")
    page = tmp_path / "report.html"
    page.write_text(
        render_report(scored, top=300, segment="region", context=ctx, history=history, plan=plan)
    )
    flags = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={tmp_path / 'profile'}",
        "--enable-logging=stderr",
        "--v=0",
        "--virtual-time-budget=3000",
    ]
    for width in (1400, 800):  # a desktop and a narrow window: no cell's content overflows
        run = subprocess.run(
            ["chromium", *flags, f"--window-size={width},1000", "--dump-dom",
             f"file://{page}#selftest"],
            capture_output=True,
            text=True,
            timeout=120,
            env={**os.environ, "HOME": str(tmp_path)},
        )
        assert 'data-selftest="sorted"' in run.stdout
        assert 'data-overflowing="0"' in run.stdout, (width, re.findall(r'data-overflowing="\d+"',
                                                                       run.stdout))
        console = [line for line in run.stderr.splitlines() if "CONSOLE" in line]
        assert not [line for line in console if "Uncaught" in line or "Error" in line], console


def test_streamed_files_equal_in_memory_and_keep_row_numbers(setup, tmp_path):
    from cx_models.serving.batch import score_files

    from cx_models.schemas import quarantine_table

    base, scorer = setup
    tx = base.transactions.to_pandas()
    tx["timestamp"] = tx["timestamp"].dt.strftime("%Y-%m-%d %H:%M:%S")
    tx["amount"] = tx["amount"].astype(str)
    tx.loc[[5, 4000], "amount"] = ["-3", "lots"]
    tx.loc[77, "customer_id"] = None
    tx_path = tmp_path / "tx.csv"
    tx.to_csv(tx_path, index=False)
    sv_path = tmp_path / "sv.parquet"
    base.surveys.write_parquet(sv_path)
    out = tmp_path / "scored.parquet"
    streamed = score_files(
        scorer,
        EventInputs(tx_path, sv_path),
        as_of=AS_OF,
        out=out,
        chunk_customers=700,
        metadata={"as_of": AS_OF},
    )
    assert streamed.chunks == 8 and streamed.customers == pd.read_parquet(out).shape[0]
    r = streamed.transactions
    assert r.rows_in == len(tx) == r.rows_used + r.rows_quarantined + r.rows_after_as_of
    q = quarantine_table(r)
    assert q.select("row", "reason").rows() == [
        (5, "negative_amount"),
        (77, "missing_customer_id"),
        (4000, "non_numeric_amount"),
    ]
    assert streamed.surveys.rows_in == base.surveys.height
    in_memory = score_events(scorer, tx_path, sv_path, as_of=AS_OF).scored
    written = pd.read_parquet(out)
    pd.testing.assert_frame_equal(
        written.sort_values("customer_id").reset_index(drop=True),
        in_memory.sort_values("customer_id").reset_index(drop=True),
        check_dtype=False,
    )
    assert read_table_metadata(out) == {"as_of": AS_OF}


def test_streamed_files_structural_errors(setup, tmp_path):
    from cx_models.serving.batch import score_files

    from cx_models.errors import CXDataError

    _, scorer = setup
    bad = tmp_path / "tx.csv"
    bad.write_text("cust,timestamp,amount\n1,2024-01-01,3\n")
    with pytest.raises(CXDataError, match=r"required column 'customer_id'.*--customer-col"):
        score_files(scorer, bad, as_of=AS_OF, out=tmp_path / "o.parquet")
    late = tmp_path / "late.csv"
    late.write_text("customer_id,timestamp,amount\n1,2030-01-01,3\n")
    with pytest.raises(CXDataError, match="no usable transaction"):
        score_files(scorer, late, as_of=AS_OF, out=tmp_path / "o.parquet")
    assert not (tmp_path / "o.parquet").exists()
    assert not list(tmp_path.glob(".o.parquet*"))
    with pytest.raises(CXDataError, match="transactions file not found"):
        score_files(scorer, tmp_path / "none.parquet", as_of=AS_OF, out=tmp_path / "o.parquet")


def test_chunks_are_prepared_ahead_and_more_while_the_model_loads():
    from concurrent.futures import ThreadPoolExecutor

    from cx_models.serving.batch_files import _ahead

    submitted = []

    class CountingPool(ThreadPoolExecutor):
        def submit(self, fn, piece):
            submitted.append(piece)
            return super().submit(fn, piece)

    seen_by_first = []

    def prepare(piece):
        if piece == 0:
            seen_by_first.extend(submitted)
        return piece * 10

    loading = [True]
    with CountingPool(max_workers=2) as pool:
        chunks = _ahead(pool, prepare, list(range(7)), lambda: loading[0])
        assert next(chunks) == 0
        assert seen_by_first == [0]  # the first chunk is prepared alone
        assert submitted == [0, 1, 2, 3]  # then three ahead while the model loads
        loading[0] = False
        got = [next(chunks) for _ in range(3)]
        assert got == [10, 20, 30] and submitted == [0, 1, 2, 3, 4]  # then one ahead
        assert list(chunks) == [40, 50, 60] and submitted == list(range(7))


@pytest.mark.slow  # default suite under two minutes; CI runs it
@pytest.mark.parametrize("failure", ["no partitioned sink", "disk full"])
def test_inputs_split_once_or_filtered_per_chunk_give_the_same_scores(
    setup, tmp_path, monkeypatch, failure
):
    # the inputs are split into one file per chunk in one pass (polars' partitioned sink,
    # marked unstable); without it each chunk filters the inputs: same rows, same scores
    import polars as pl
    from cx_models.serving import batch

    def disk_full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    base, scorer = setup
    tx = base.transactions.to_pandas()
    tx.loc[[10, 20], "customer_id"] = None
    tx_path = tmp_path / "tx.parquet"
    tx.to_parquet(tx_path)
    sv_path = tmp_path / "sv.parquet"
    base.surveys.write_parquet(sv_path)
    results = {}
    for how in ("split", "filtered"):
        if how == "filtered" and failure == "no partitioned sink":
            monkeypatch.delattr(pl, "PartitionBy")
        elif how == "filtered":
            monkeypatch.setattr(pl.LazyFrame, "sink_ipc", disk_full)
        out = tmp_path / f"{how}.parquet"
        inputs = EventInputs(tx_path, sv_path)
        r = batch.score_files(scorer, inputs, as_of=AS_OF, out=out, chunk_customers=900)
        results[how] = (pd.read_parquet(out), r.transactions.to_dict(), r.surveys.to_dict())
        assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
            ["tx.parquet", "sv.parquet", *(f"{h}.parquet" for h in results)]
        )  # the split files are gone
    split, filtered = results["split"], results["filtered"]
    pd.testing.assert_frame_equal(split[0], filtered[0])
    assert split[1:] == filtered[1:]
    assert split[1]["rows_quarantined"] == 2 and len(split[0]) == base.truth.height


def test_one_extreme_value_never_sinks_the_base(setup, tmp_path, monkeypatch):
    """1e39 and 1e308 amounts (events) and inf / 1e39 features (a table) cost only their rows."""
    import cx_models.training.tracking as tracking
    from cx_models.serving.batch import as_predictor
    from typer.testing import CliRunner

    from cx_models.cli import app

    base, scorer = setup
    monkeypatch.setattr(tracking, "load_model", lambda uri, tracking_uri=None: as_predictor(scorer))
    monkeypatch.setattr(tracking, "describe_model", lambda uri, tracking_uri=None: {})
    tx = base.transactions.to_pandas()
    ids = sorted(tx["customer_id"].unique())
    tx.loc[tx.index[0], "amount"] = 1e39
    tx.loc[tx["customer_id"] == ids[1], "amount"] = 1e308  # every row of one customer
    tx_path = tmp_path / "tx.parquet"
    tx.to_parquet(tx_path)
    res = CliRunner().invoke(app, ["score", "--model", "models:/x@c", "--transactions",
                                   str(tx_path), "--as-of", AS_OF, "--out",
                                   str(tmp_path / "s.parquet"), "--quarantine-out",
                                   str(tmp_path / "q.csv"), "--quiet"])
    assert res.exit_code == 0, res.stderr
    scored = pd.read_parquet(tmp_path / "s.parquet")
    assert ids[1] not in set(scored["customer_id"]) and len(scored) == len(ids) - 1
    assert np.isfinite(scored["clv"]).all() and scored["churn_risk"].between(0, 1).all()
    q = pd.read_csv(tmp_path / "q.csv")
    assert set(q["reason"]) == {"amount_too_large"}
    assert len(q) == 1 + int((tx["customer_id"] == ids[1]).sum())

    features = build_customer_features(base.transactions, base.surveys, as_of=AS_OF)
    features.loc[3, "monetary_value"] = np.inf
    features.loc[8, "total_spend"] = 1e39
    write_table(features, tmp_path / "f.parquet", metadata=dict(features.attrs))
    res = CliRunner().invoke(app, ["score", "--model", "models:/x@c", "--features",
                                   str(tmp_path / "f.parquet"), "--out",
                                   str(tmp_path / "s2.parquet"), "--quarantine-out",
                                   str(tmp_path / "q2.csv")])
    assert res.exit_code == 0, res.stderr
    assert f"2 of {len(features):,} customers quarantined (feature_out_of_range" in res.stderr
    scored = pd.read_parquet(tmp_path / "s2.parquet")
    assert len(scored) == len(features) - 2
    q = pd.read_csv(tmp_path / "q2.csv")
    assert q["row"].tolist() == [3, 8] and set(q["reason"]) == {"feature_out_of_range"}
