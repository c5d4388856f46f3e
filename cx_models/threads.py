"""How many threads cx-models uses: the CPUs this process may run on, or the user's cap.

Every engine under cx-models keeps its own thread pool — polars, numba's
parallel kernels, XGBoost (OpenMP) — and some size it from the machine's CPU
count rather than from the CPUs the process is allowed to use. On a shared
host, in a container with a CPU quota or pinned by ``taskset``, that
oversubscribes the cores and everything slows down. So one number rules them:

* :func:`available_cpus` — the CPUs of the process's affinity mask
  (``os.sched_getaffinity``), lowered to the cgroup CPU quota when there is one;
* :func:`thread_count` — that, or fewer when ``CX_MODELS_THREADS`` says so (the
  one setting: a whole number ≥ 1; larger than the available CPUs is lowered).

:func:`configure_threads` runs when :mod:`cx_models` is imported: it sets
``POLARS_MAX_THREADS``, ``NUMBA_NUM_THREADS`` and ``OMP_NUM_THREADS`` to
:func:`thread_count` unless they are set already (polars reads its variable
once, when it is first imported: set ``CX_MODELS_THREADS`` before importing
polars yourself). XGBoost gets :func:`thread_count` as ``nthread``.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

from cx_models.errors import CXDataError

__all__ = ["ENV", "available_cpus", "configure_threads", "thread_count"]

#: The environment variable that caps every thread pool.
ENV = "CX_MODELS_THREADS"
_POOLS = ("POLARS_MAX_THREADS", "NUMBA_NUM_THREADS", "OMP_NUM_THREADS")


def _cgroup_quota() -> int | None:
    """Return the CPUs the cgroup's quota allows (rounded up), or ``None`` without a quota."""
    try:  # cgroup v2: "max 100000" or "150000 100000"
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()[:2]
        if quota != "max":
            return max(math.ceil(int(quota) / int(period)), 1)
        return None
    except (OSError, ValueError):
        pass
    try:  # cgroup v1
        quota = int(Path("/sys/fs/cgroup/cpu/cpu.cfs_quota_us").read_text())
        period = int(Path("/sys/fs/cgroup/cpu/cpu.cfs_period_us").read_text())
        return max(math.ceil(quota / period), 1) if quota > 0 and period > 0 else None
    except (OSError, ValueError):
        return None


def available_cpus() -> int:
    """Return the CPUs this process may use: its affinity mask, capped by a cgroup quota.

    Examples
    --------
    >>> 1 <= available_cpus() <= (os.cpu_count() or 1)
    True
    """
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        cpus = os.cpu_count() or 1
    quota = _cgroup_quota()
    return max(min(cpus, quota) if quota else cpus, 1)


def thread_count() -> int:
    """Return the threads each engine may use: :func:`available_cpus` or ``CX_MODELS_THREADS``.

    Raises
    ------
    CXDataError
        When ``CX_MODELS_THREADS`` is not a whole number of at least 1.

    Examples
    --------
    >>> os.environ["CX_MODELS_THREADS"] = "1"
    >>> thread_count()
    1
    >>> del os.environ["CX_MODELS_THREADS"]
    """
    cpus = available_cpus()
    text = os.environ.get(ENV, "").strip()
    if not text:
        return cpus
    try:
        cap = int(text)
    except ValueError:
        cap = 0
    if cap < 1:
        raise CXDataError(f"{ENV}={text!r}: expected a whole number of threads, at least 1")
    return min(cap, cpus)


def configure_threads() -> int:
    """Size the engines' thread pools (unless set already) and return the thread count."""
    try:
        count = thread_count()
    except CXDataError:
        count = available_cpus()  # reported where the number is used (XGBoost's nthread)
    for name in _POOLS:
        os.environ.setdefault(name, str(count))
    return count
