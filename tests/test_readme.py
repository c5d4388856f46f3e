"""The README's Quickstart runs as written (scaled to a few thousand customers).

Marked slow (about 45 s): ``make test-slow`` runs it, and CI runs that too.
"""

import os
import re
import shlex
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pandas as pd
import polars as pl
import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
CUSTOMERS = 2_500

pytestmark = pytest.mark.slow


def _block(heading: str, language: str) -> str:
    text = README.read_text()
    start = text.index(heading)
    match = re.compile(rf"```{language}\n(.*?)```", re.S).search(text, start)
    return match.group(1)


def _commands(block: str) -> list[list[str]]:
    joined = re.sub(r"\\\n\s*", " ", block)
    commands = []
    for line in joined.splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            commands.append(shlex.split(line))
    return commands


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _cli(args: list[str], cwd: Path, env: dict) -> subprocess.CompletedProcess:
    exe = [sys.executable, "-c", "from cx_models.cli import main; main()"]
    return subprocess.run([*exe, *args], cwd=cwd, env=env, capture_output=True, text=True)


@pytest.fixture(scope="module")
def quickstart(tmp_path_factory):
    """Run every command of the Quickstart's command-line block in a fresh folder."""
    cwd = tmp_path_factory.mktemp("readme")
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    env["MLFLOW_DISABLE_TELEMETRY"] = "true"
    served = None
    for command in _commands(_block("### Command line", "bash")):
        assert command[0] == "cx-models", command
        args = command[1:]
        if args[0] == "generate":
            args[args.index("--customers") + 1] = str(CUSTOMERS)
        if args[0] == "serve":
            args[args.index("--port") + 1] = str(port := _free_port())
            served = (args, port)
            continue
        done = _cli(args, cwd, env)
        assert done.returncode == 0, f"{command}\n{done.stderr}"
    return cwd, env, served


def test_quickstart_commands_write_what_they_say(quickstart):
    cwd, _, _ = quickstart
    features = pd.read_parquet(cwd / "features.parquet")
    scored = pd.read_parquet(cwd / "scored.parquet")
    assert (
        len(scored) == pl.read_parquet(cwd / "base/transactions.parquet")["customer_id"].n_unique()
    )
    assert 0 < len(features) <= len(scored)
    assert sorted(scored["priority_rank"]) == list(range(1, len(scored) + 1))
    assert "<html" in (cwd / "report.html").read_text()[:200].lower()
    assert (cwd / "mlruns" / "mlflow.db").exists() and (cwd / "mlruns" / "artifacts").is_dir()


def test_quickstart_serve_answers_readyz(quickstart):
    cwd, env, served = quickstart
    assert served is not None
    args, port = served
    exe = [sys.executable, "-c", "from cx_models.cli import main; main()"]
    server = subprocess.Popen(
        [*exe, *args], cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    try:
        deadline, status = time.monotonic() + 60, None
        while time.monotonic() < deadline and status != 200:
            time.sleep(0.3)
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2) as r:
                    status = r.status
            except OSError:
                continue
        assert status == 200
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_python_quickstart_runs(quickstart, monkeypatch):
    cwd, _, _ = quickstart
    base = cwd / "base"
    pl.read_parquet(base / "transactions.parquet").write_csv(cwd / "orders.csv")
    pl.read_parquet(base / "surveys.parquet").write_csv(cwd / "surveys.csv")
    monkeypatch.chdir(cwd)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    namespace: dict = {}
    exec(compile(_block("### Python", "python"), "README.md", "exec"), namespace)
    assert list(namespace["scored"].columns[:2]) == ["customer_id", "p_alive"]
    assert namespace["features"].attrs["time_unit"] == "W"


def test_demo_writes_every_output_it_names(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    env["MLFLOW_DISABLE_TELEMETRY"] = "true"
    done = _cli(["demo", "--customers", "2000"], tmp_path, env)
    assert done.returncode == 0, done.stderr
    out = tmp_path / "cx-demo"
    for name in ("features.parquet", "scored.parquet", "report.html", "churn_evaluation.json",
                 "plan.parquet", "profit_curve.svg"):
        assert (out / name).exists(), name
    plan = pd.read_parquet(out / "plan.parquet")
    scored = pd.read_parquet(out / "scored.parquet")
    assert len(plan) == len(scored) and plan["contact"].any()
    assert (plan.loc[plan["contact"], "expected_gain"] > 0).all()


def test_subscriptions_commands_run_as_written(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    env["MLFLOW_DISABLE_TELEMETRY"] = "true"
    for command in _commands(_block("## Subscriptions: contractual churn and CLV", "bash")):
        assert command[0] == "cx-models", command
        args = command[1:]
        if args[0] == "generate":
            args[args.index("--customers") + 1] = "3000"
        done = _cli(args, tmp_path, env)
        assert done.returncode == 0, f"{command}\n{done.stderr}"
    scored = pd.read_parquet(tmp_path / "subs-scored.parquet")
    subs = pl.read_parquet(tmp_path / "subs/subscriptions.parquet")
    assert len(scored) == subs["end"].null_count()
    assert set(pl.read_csv(tmp_path / "curves.csv")["group"]) == {"basic", "plus", "premium"}
    assert "Retention rate by acquisition cohort" in (tmp_path / "subs-report.html").read_text()
