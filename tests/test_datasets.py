from cx_models.datasets import load_cdnow, load_cdnow_summary


def test_cdnow_master_shape_and_free_orders():
    tx = load_cdnow("master")
    assert len(tx) == 69_659
    assert tx["customer_id"].nunique() == 23_570
    assert int((tx["amount"] == 0).sum()) == 80
    assert str(tx["timestamp"].min().date()) == "1997-01-01"
    assert str(tx["timestamp"].max().date()) == "1998-06-30"


def test_cdnow_sample_is_a_subset_of_master():
    sample, master = load_cdnow("sample"), load_cdnow("master")
    assert sample["customer_id"].nunique() == 2_357
    assert sample["sample_id"].min() == 1 and sample["sample_id"].max() == 2_357
    assert set(sample["customer_id"]) <= set(master["customer_id"])


def test_published_summary():
    s = load_cdnow_summary()
    assert len(s) == 2_357
    assert int((s["frequency"] > 0).sum()) == 946  # the repeat buyers of the Gamma-Gamma note
