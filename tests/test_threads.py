"""Thread pools sized from the CPUs a process may use, and one setting to cap them."""

import json
import os
import subprocess
import sys

import pytest

from cx_models.errors import CXDataError
from cx_models.threads import ENV, available_cpus, thread_count

PROBE = (
    "import json, cx_models, polars, numba\n"
    "from cx_models.threads import thread_count\n"
    "from cx_models.models._booster import BoosterSettings\n"
    "print(json.dumps([thread_count(), polars.thread_pool_size(), numba.get_num_threads(),\n"
    "    BoosterSettings().params(['x'], learning_rate=0.1, seed=0)['nthread']]))\n"
)


def _probe(env_extra: dict, cpus: set | None = None) -> list[int]:
    env = {k: v for k, v in os.environ.items()
           if k not in (ENV, "POLARS_MAX_THREADS", "NUMBA_NUM_THREADS", "OMP_NUM_THREADS")}
    env.update(env_extra)
    pin = (lambda: os.sched_setaffinity(0, cpus)) if cpus else None
    out = subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True, text=True,
                         preexec_fn=pin, check=True, timeout=120)
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="needs Linux affinity")
def test_a_process_pinned_to_one_cpu_runs_every_pool_on_one_thread():
    first = min(os.sched_getaffinity(0))
    assert _probe({}, {first}) == [1, 1, 1, 1]


def test_the_setting_caps_every_pool_and_never_exceeds_the_cpus():
    assert _probe({ENV: "1"}) == [1, 1, 1, 1]
    many = _probe({ENV: "64"})
    assert many == [available_cpus()] * 4


def test_a_bad_setting_is_an_error_naming_the_variable(monkeypatch):
    for text in ("two", "0", "-3", "1.5"):
        monkeypatch.setenv(ENV, text)
        with pytest.raises(CXDataError, match=f"{ENV}=.*at least 1"):
            thread_count()
    monkeypatch.setenv(ENV, " 1 ")
    assert thread_count() == 1
