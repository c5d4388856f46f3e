"""Nothing lost, nothing left behind: outputs never overwrite inputs, kills leave no debris."""

import errno
import hashlib
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cx_models.cli import app
from cx_models.errors import CXDataError
from cx_models.outputs import atomic_output, check_distinct, job_scratch, remove_stale_scratch

AS_OF = "2025-12-31"
runner = CliRunner()


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture()
def inputs(tmp_path, small_base_dir):
    """Copies of the base's inputs (the tests try to overwrite them) and a feature table."""
    folder = tmp_path / "in"
    folder.mkdir()
    for name in ("transactions.parquet", "surveys.parquet"):
        (folder / name).write_bytes((small_base_dir / name).read_bytes())
    res = runner.invoke(
        app,
        ["features", "--transactions", str(folder / "transactions.parquet"), "--as-of", AS_OF,
         "--out", str(folder / "features.parquet")],
    )
    assert res.exit_code == 0, res.stderr
    (folder / "clv.json").write_text("{}")
    (folder / "reference.json").write_text("{}")
    return folder


def _verbs(d: Path) -> dict[str, list[str]]:
    """Every writing verb, with --out (or another output) aimed at one of its inputs."""
    names = ("transactions.parquet", "surveys.parquet", "features.parquet")
    tx, sv, ft = (str(d / n) for n in names)
    same_tx = str(d / "." / "transactions.parquet")  # another spelling of the same file
    return {
        "features": ["features", "--transactions", tx, "--as-of", AS_OF, "--out", same_tx],
        "features quarantine": ["features", "--transactions", tx, "--surveys", sv, "--as-of",
                                AS_OF, "--out", str(d / "new.parquet"), "--quarantine-out", sv],
        "score": ["score", "--model", "models:/x@champion", "--transactions", tx, "--as-of",
                  AS_OF, "--out", same_tx],
        "score features": ["score", "--model", "models:/x@champion", "--features", ft,
                           "--out", ft],
        "score spark": ["score", "--model", "models:/x@champion", "--features", ft,
                        "--engine", "spark", "--out", str(d)],
        "clv fit": ["clv", "fit", "--transactions", tx, "--as-of", AS_OF, "--out", tx],
        "clv predict": ["clv", "predict", "--model-file", str(d / "clv.json"), "--transactions",
                        tx, "--as-of", AS_OF, "--horizon-days", "90", "--out", str(d / "clv.json")],
        "clv validate": ["clv", "validate", "--transactions", tx, "--calibration-end",
                         "2025-06-30", "--holdout-end", AS_OF, "--out", tx],
        "report": ["report", "--scored", ft, "--out", ft],
        "train": ["train", "--transactions", tx, "--as-of", AS_OF, "--quarantine-out", tx],
        "nco reference": ["nco", "reference", "--clv-from", ft, "--out", ft],
        "nco score": ["nco", "score", "--input", ft, "--reference", str(d / "reference.json"),
                      "--out", str(d / "reference.json")],
        "nco summarise": ["nco", "summarise", "--scored", ft, "--out", ft],
    }


@pytest.mark.parametrize("verb", list(_verbs(Path("x"))))
def test_no_verb_writes_over_its_input(inputs, verb):
    before = {p.name: _digest(p) for p in inputs.iterdir()}
    res = runner.invoke(app, _verbs(inputs)[verb])
    assert res.exit_code == 2, (verb, res.stderr)
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: --"), res.stderr
    assert "never overwrites" in lines[0] or "folder holding" in lines[0]
    assert {p.name: _digest(p) for p in inputs.iterdir()} == before  # nothing touched


def test_a_hard_link_or_a_symlink_is_the_same_file(tmp_path):
    source = tmp_path / "tx.parquet"
    source.write_bytes(b"data")
    os.link(source, tmp_path / "hard.parquet")
    (tmp_path / "soft.parquet").symlink_to(source)
    for other in ("hard.parquet", "soft.parquet"):
        with pytest.raises(CXDataError, match="same file as --transactions"):
            check_distinct({"--transactions": source}, {"--out": tmp_path / other})
    check_distinct({"--transactions": source}, {"--out": tmp_path / "new.parquet"})
    with pytest.raises(CXDataError, match="--quarantine-out .* another output"):
        check_distinct({}, {"--out": tmp_path / "a.csv", "--quarantine-out": tmp_path / "a.csv"})


def test_unwritable_destinations_are_one_line_before_any_work(inputs, tmp_path):
    tx = str(inputs / "transactions.parquet")
    plain_file = tmp_path / "plain.txt"
    plain_file.write_text("x")
    (tmp_path / "folder").mkdir()
    cases = {
        str(tmp_path / "folder"): "is an existing folder",
        str(plain_file / "f.parquet"): "is a file, not a folder",
    }
    for out, message in cases.items():
        res = runner.invoke(app, ["features", "--transactions", tx, "--as-of", AS_OF,
                                  "--out", out])
        assert res.exit_code == 2 and message in res.stderr, res.stderr
        assert len(res.stderr.strip().splitlines()) == 1


def test_a_full_disk_is_one_line_and_leaves_nothing(inputs, tmp_path, monkeypatch):
    import pyarrow.parquet as pq

    def full(table, where, **kwargs):
        Path(where).write_bytes(b"partial")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(pq, "write_table", full)
    out_dir = tmp_path / "out"
    res = runner.invoke(app, ["features", "--transactions", str(inputs / "transactions.parquet"),
                              "--as-of", AS_OF, "--out", str(out_dir / "f.parquet")])
    assert res.exit_code == 2, res.stderr
    assert "no space left on device (temporary files removed)" in res.stderr
    assert "Traceback" not in res.stderr
    assert list(out_dir.iterdir()) == []


def test_scratch_folders_are_the_jobs_own_and_stale_ones_go(tmp_path):
    out = tmp_path / "s.parquet"
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    pid = int(dead.stdout)
    with job_scratch(out) as mine:
        stale = mine.with_name(mine.name.replace(f"-{os.getpid()}.", f"-{pid}."))
        stale.mkdir()
        (stale / "part").write_bytes(b"x" * 100)
        alive = mine.with_name(mine.name.replace(f"-{os.getpid()}.", f"-{os.getppid()}."))
        alive.mkdir()
    assert not mine.exists()
    assert remove_stale_scratch(out) == [stale]  # the dead job's, not the living one's
    assert alive.exists()
    with pytest.raises(RuntimeError), atomic_output(out) as tmp:
        tmp.write_text("half")
        raise RuntimeError("boom")
    assert sorted(p.name for p in tmp_path.iterdir()) == [alive.name]


_SCRIPT = textwrap.dedent(
    """
    import sys
    import cx_models.training.tracking as tracking
    from cx_models.scoring import CXScorer
    from cx_models.serving.batch import as_predictor

    scorer = CXScorer.load(sys.argv[1])
    tracking.load_model = lambda uri, tracking_uri=None: as_predictor(scorer)
    tracking.describe_model = lambda uri, tracking_uri=None: {}
    from cx_models.cli import main

    main(sys.argv[2:])
    """
)


@pytest.fixture(scope="module")
def saved_scorer(tmp_path_factory, small_base):
    from cx_models.training.pipeline import TrainingConfig, train_scorer

    from cx_models.schemas import validate_surveys, validate_transactions

    tx = validate_transactions(small_base.transactions, as_of=AS_OF).data
    sv = validate_surveys(small_base.surveys, as_of=AS_OF).data
    scorer = train_scorer(tx, sv, TrainingConfig(as_of=AS_OF, max_snapshots=2)).scorer
    return scorer.save(tmp_path_factory.mktemp("scorer") / "scorer")


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL])
def test_a_killed_job_leaves_nothing_once_the_next_has_started(
    saved_scorer, small_base_dir, tmp_path, sig
):
    script = tmp_path / "run.py"
    script.write_text(_SCRIPT)
    out = tmp_path / "scored.parquet"
    args = [sys.executable, str(script), str(saved_scorer), "score", "--model", "models:/x@c",
            "--transactions", str(small_base_dir / "transactions.parquet"),
            "--surveys", str(small_base_dir / "surveys.parquet"), "--as-of", AS_OF,
            "--out", str(out), "--quiet"]
    job = subprocess.Popen([*args, "--chunk-customers", "20"], stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while not [p for p in tmp_path.iterdir() if ".cx-" in p.name]:
        assert time.monotonic() < deadline and job.poll() is None
        time.sleep(0.02)
    time.sleep(0.3)  # mid-job: chunks are being scored
    job.send_signal(sig)
    _, stderr = job.communicate(timeout=60)
    left = [p.name for p in tmp_path.iterdir() if p.name.startswith(".")]
    if sig == signal.SIGTERM:
        assert job.returncode == 143, stderr
        assert stderr.strip().splitlines() == [
            "error: terminated (SIGTERM); temporary files removed"
        ]
        assert left == [] and not out.exists()
        return
    assert job.returncode == -signal.SIGKILL and len(left) == 1  # SIGKILL cannot be caught
    again = subprocess.run(args, capture_output=True, text=True, timeout=120)
    assert again.returncode == 0, again.stderr
    assert f"note: removed {tmp_path / left[0]}" in again.stderr
    assert f"process {job.pid})" in again.stderr
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []
    assert out.exists()


@pytest.mark.slow
def test_a_real_full_disk_is_one_line(saved_scorer, small_base_dir, tmp_path):
    mount = tmp_path / "small"
    mount.mkdir()
    made = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=200k", "tmpfs", str(mount)],
                          capture_output=True)
    if made.returncode != 0:
        pytest.skip("cannot mount a small file system here (needs root)")
    try:
        script = tmp_path / "run.py"
        script.write_text(_SCRIPT)
        done = subprocess.run(
            [sys.executable, str(script), str(saved_scorer), "score", "--model", "models:/x@c",
             "--transactions", str(small_base_dir / "transactions.parquet"), "--as-of", AS_OF,
             "--out", str(mount / "scored.parquet"), "--quiet"],
            capture_output=True, text=True, timeout=120,
        )
        assert done.returncode == 2
        assert done.stderr.strip().splitlines() == [
            f"error: cannot write {mount / 'scored.parquet'}: no space left on device "
            "(temporary files removed)"
        ]
        assert os.listdir(mount) == []
    finally:
        subprocess.run(["umount", str(mount)], check=False)
