"""Where outputs go: never onto an input, always through a job's own scratch folder.

Three rules every writer follows (the command line, :func:`cx_models.serving.batch.score_files`
and every file the library writes):

* **An output never overwrites an input.** :func:`check_distinct` refuses, before
  anything is read, an output that is, contains or lies inside one of the job's inputs
  or another of its outputs — compared on resolved paths and, where both exist, on
  device and inode, so links and other spellings are caught.
* **A job's temporary files are recognisably its own.** :func:`job_scratch` makes one
  hidden folder per job beside the output, ``.NAME.cx-HOST-PID.tmp``; everything
  temporary goes in it and it is removed when the job ends, however it ends, short of
  SIGKILL. The next job writing the same output removes the scratch folders of jobs
  whose process no longer exists (on this host) and logs that it did.
* **An output appears whole or not at all.** :func:`atomic_output` writes into the
  scratch folder and renames into place; a failed write (a full disk, say) leaves the
  old file, if any, untouched and raises :class:`~cx_models.errors.CXDataError`.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import shutil
import socket
from collections.abc import Iterator, Mapping
from pathlib import Path

from cx_models.errors import CXDataError

__all__ = [
    "atomic_output",
    "check_destination",
    "check_distinct",
    "job_scratch",
    "remove_stale_scratch",
    "write_errno",
    "write_failure",
]

log = logging.getLogger("cx_models.outputs")

_HOST = "".join(c if c.isalnum() else "_" for c in socket.gethostname())[:40] or "host"
_ACTIVE: dict[Path, list] = {}  # scratch folders of this process: path -> [users]


def _resolved(path) -> Path:
    return Path(os.path.abspath(os.path.expanduser(str(path)))).resolve(strict=False)


def _same(a: Path, b: Path) -> bool:
    if a == b:
        return True
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def _inside(inner: Path, outer: Path) -> bool:
    return inner != outer and outer in inner.parents


def check_distinct(inputs: Mapping[str, object], outputs: Mapping[str, object]) -> None:
    """Refuse outputs that would overwrite an input or another output.

    Parameters
    ----------
    inputs, outputs : mapping
        Label (an option name such as ``--transactions``) to path; ``None`` values
        are skipped. Inputs that are not paths (a data frame) are skipped too.

    Raises
    ------
    CXDataError
        When an output is the same file as an input or another output, or one of
        them lies inside the other (a folder output would replace the input).

    Examples
    --------
    >>> import os, tempfile
    >>> folder = tempfile.mkdtemp()
    >>> tx = os.path.join(folder, "tx.parquet")
    >>> _ = open(tx, "w").close()
    >>> check_distinct({"--transactions": tx}, {"--out": os.path.join(folder, "s.parquet")})
    >>> again = os.path.join(folder, ".", "tx.parquet")
    >>> try:
    ...     check_distinct({"--transactions": tx}, {"--out": again})
    ... except Exception as exc:
    ...     print(str(exc).replace(folder, "F"))
    --out F/./tx.parquet is the same file as --transactions F/tx.parquet: an output never \
overwrites an input; choose another --out
    """
    ins = [(k, str(v), _resolved(v)) for k, v in inputs.items() if isinstance(v, (str, Path))]
    outs = [(k, str(v), _resolved(v)) for k, v in outputs.items() if isinstance(v, (str, Path))]
    for i, (label, text, path) in enumerate(outs):
        for other_label, other_text, other in ins:
            _conflict(label, text, path, other_label, other_text, other, "an input")
        for other_label, other_text, other in outs[:i]:
            _conflict(label, text, path, other_label, other_text, other, "another output")
    _check_tables(inputs, outputs)


def _check_tables(inputs: Mapping[str, object], outputs: Mapping[str, object]) -> None:
    """Refuse a database output that writes a table an input reads or another output writes."""
    from cx_models.sources import table_clash

    def tables(values, kind):
        return [(k, v) for k, v in values.items() if type(v).__name__ == kind]

    sources, targets = tables(inputs, "DatabaseSource"), tables(outputs, "DatabaseTarget")
    for i, (label, target) in enumerate(targets):
        others = [(k, v, "reads", "an input") for k, v in sources]
        others += [(k, v, "writes", "another output") for k, v in targets[:i]]
        for other_label, other, verb, what in others:
            if table_clash(target, other):
                raise CXDataError(
                    f"{label} {target.name} writes a table (or its _meta) that {other_label} "
                    f"{other.name} {verb}: an output never overwrites {what}; choose another "
                    f"{label}-table"
                )


def _conflict(label, text, path, other_label, other_text, other, what) -> None:
    if _same(path, other):
        relation = "is the same file as"
    elif _inside(other, path):
        relation = "is a folder holding"
    elif _inside(path, other):
        relation = "lies inside"
    else:
        return
    raise CXDataError(
        f"{label} {text} {relation} {other_label} {other_text}: an output never overwrites "
        f"{what}; choose another {label}"
    )


def check_destination(label: str, path, *, directory: bool = False) -> None:
    """Refuse a destination that cannot be written, before any work is done.

    A file output must not be an existing folder; every existing ancestor must be a
    folder, and the nearest one writable.

    Examples
    --------
    >>> import os, tempfile
    >>> folder = tempfile.mkdtemp()
    >>> check_destination("--out", os.path.join(folder, "new", "s.parquet"))
    >>> check_destination("--out", folder)
    Traceback (most recent call last):
    ...
    cx_models.errors.CXDataError: --out ...: is an existing folder; give a file name
    """
    target = _resolved(path)
    if not directory and target.is_dir():
        raise CXDataError(f"{label} {path}: is an existing folder; give a file name")
    ancestor = target.parent
    while not ancestor.exists():
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise CXDataError(f"{label} {path}: cannot write there: {ancestor} is a file, not a folder")
    if not os.access(ancestor, os.W_OK | os.X_OK):
        raise CXDataError(f"{label} {path}: cannot write there: {ancestor} is not writable")


#: Operating-system errors that mean "this destination cannot take the output".
WRITE_ERRNOS = {
    errno.ENOSPC: "no space left on device",
    errno.EDQUOT: "disk quota exceeded",
    errno.EFBIG: "the file is too large for the file system",
    errno.EROFS: "the file system is read-only",
    errno.EACCES: "permission denied",
    errno.EPERM: "permission denied",
    errno.ENOTDIR: "a part of the path is a file, not a folder",
    errno.EISDIR: "it is an existing folder",
}


def write_errno(exc: BaseException) -> int | None:
    """Return the write errno of ``exc`` (also for Arrow's errors, which carry only text).

    Examples
    --------
    >>> write_errno(OSError("IOError: No space left on device")) == errno.ENOSPC
    True
    >>> write_errno(ValueError("x")) is None
    True
    """
    if not isinstance(exc, OSError):
        return None
    if exc.errno in WRITE_ERRNOS:
        return exc.errno
    text = str(exc)
    for code in WRITE_ERRNOS:
        if os.strerror(code) in text:
            return code
    return None


def write_failure(path, exc: OSError) -> CXDataError:
    """Return the one-line error for an operating-system failure writing ``path``.

    Examples
    --------
    >>> import errno
    >>> print(write_failure("s.parquet", OSError(errno.ENOSPC, "No space left on device")))
    cannot write s.parquet: no space left on device (temporary files removed)
    """
    code = write_errno(exc)
    reason = WRITE_ERRNOS[code] if code is not None else (exc.strerror or str(exc))
    return CXDataError(f"cannot write {path}: {reason} (temporary files removed)")


def _scratch_name(out: Path, pid: int) -> str:
    return f".{out.name}.cx-{_HOST}-{pid}.tmp"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale_scratch(out) -> list[Path]:
    """Remove the scratch folders for ``out`` left by jobs of this host that have ended.

    Returns the folders removed (each is also logged on ``cx_models.outputs``).
    """
    out = Path(out)
    prefix = f".{out.name}.cx-{_HOST}-"
    removed = []
    try:
        candidates = list(out.parent.glob(f"{prefix}*.tmp"))
    except OSError:
        return removed
    for folder in candidates:
        pid_text = folder.name[len(prefix) : -len(".tmp")]
        if not pid_text.isdigit() or int(pid_text) == os.getpid() or _alive(int(pid_text)):
            continue
        shutil.rmtree(folder, ignore_errors=True)
        removed.append(folder)
        log.warning(
            "removed %s: temporary files of an interrupted job (process %s)", folder, pid_text
        )
    return removed


@contextlib.contextmanager
def job_scratch(out) -> Iterator[Path]:
    """Yield this job's scratch folder beside ``out``; remove it when the block ends.

    Nested blocks for the same ``out`` share one folder, removed by the outermost.

    Examples
    --------
    >>> import os, tempfile
    >>> out = os.path.join(tempfile.mkdtemp(), "s.parquet")
    >>> with job_scratch(out) as scratch:
    ...     scratch.name.startswith(".s.parquet.cx-") and scratch.is_dir()
    True
    >>> os.listdir(os.path.dirname(out))
    []
    """
    out = _resolved(out)
    folder = out.parent / _scratch_name(out, os.getpid())
    if folder in _ACTIVE:
        _ACTIVE[folder].append(None)
        try:
            yield folder
        finally:
            _ACTIVE[folder].pop()
        return
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        remove_stale_scratch(out)
        folder.mkdir(exist_ok=True)
    except OSError as exc:
        raise write_failure(out, exc) from None
    _ACTIVE[folder] = []
    try:
        yield folder
    finally:
        del _ACTIVE[folder]
        shutil.rmtree(folder, ignore_errors=True)


@contextlib.contextmanager
def atomic_output(path, *, directory: bool = False) -> Iterator[Path]:
    """Yield a temporary path in the job's scratch folder; rename it into place on success.

    The scratch folder sits beside ``path``, so the rename is atomic; on any failure
    the temporary is removed and ``path`` is untouched. An operating-system error
    while writing (a full disk, a read-only destination) becomes one
    :class:`~cx_models.errors.CXDataError`. A file gets the permissions the umask
    allows. With ``directory=True`` the block writes a folder (e.g. a Parquet
    dataset), which replaces an existing one at ``path``.

    Examples
    --------
    >>> import tempfile, os
    >>> out = Path(tempfile.mkdtemp()) / "r.txt"
    >>> with atomic_output(out) as tmp:
    ...     _ = tmp.write_text("done")
    >>> out.read_text(), sorted(os.listdir(out.parent))
    ('done', ['r.txt'])
    """
    path = Path(path)
    with job_scratch(path) as scratch:
        tmp = scratch / f"{len(os.listdir(scratch))}.{path.name}"
        try:
            yield tmp
            if directory:
                if path.is_dir():
                    shutil.rmtree(path)
                elif path.exists():
                    path.unlink()
            elif tmp.exists():
                umask = os.umask(0)
                os.umask(umask)
                os.chmod(tmp, 0o666 & ~umask)
            os.replace(tmp, path)
        except OSError as exc:
            if write_errno(exc) is None:
                raise
            raise write_failure(path, exc) from None
        finally:
            if tmp.is_dir():
                shutil.rmtree(tmp, ignore_errors=True)
            else:
                tmp.unlink(missing_ok=True)
