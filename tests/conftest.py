import os
import sys

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")

import pytest  # noqa: E402
from hypothesis import settings  # noqa: E402

# Property tests are seeded too: the same examples on every run and machine.
settings.register_profile("cx", derandomize=True, deadline=None, print_blob=True)
settings.load_profile("cx")

from cx_models.synthetic import generate_customer_base  # noqa: E402


@pytest.fixture(scope="session")
def small_base():
    """A seeded synthetic base of 3,000 customers."""
    return generate_customer_base(3_000, seed=11)


@pytest.fixture(scope="session")
def small_base_dir(tmp_path_factory, small_base):
    from cx_models.synthetic import write_customer_base

    out = tmp_path_factory.mktemp("base")
    write_customer_base(small_base, out)
    return out


@pytest.fixture(scope="session")
def contract_trained():
    """A subscription base of 3,000 (seed 9) and the contractual scorer trained on it."""
    from cx_models.training.contract_pipeline import train_contract_scorer
    from cx_models.training.pipeline import TrainingConfig

    from cx_models.schemas import validate_surveys
    from cx_models.subscriptions import SubscriptionSpec, validate_subscriptions
    from cx_models.synthetic_subscriptions import generate_subscription_base

    base = generate_subscription_base(3_000, seed=9)
    subs = validate_subscriptions(base.subscriptions, as_of="2025-12-31").data
    surveys = validate_surveys(base.surveys, as_of="2025-12-31").data
    result = train_contract_scorer(
        subs, surveys, TrainingConfig(as_of="2025-12-31", horizon_days=91),
        spec=SubscriptionSpec(period=30),
    )
    return base, result


@pytest.fixture(scope="module")
def spark():
    """A local Spark session on two cores for one test module (``pytest -m spark``)."""
    pytest.importorskip("pyspark")
    # the executors of a local session must run this very interpreter (and its venv)
    os.environ["PYSPARK_PYTHON"] = sys.executable
    os.environ["PYSPARK_DRIVER_PYTHON"] = sys.executable
    from cx_models.serving import spark as cx_spark

    session = cx_spark.spark_session("local[2]")
    yield session
    session.stop()
