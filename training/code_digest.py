"""Digests of a logged model's files: the code MLflow runs when it loads the model.

A CX scorer is logged with MLflow's models-from-code: loading it *executes*
``cx_pyfunc.py`` and imports the package copy under ``code/``. Whoever can write to
the artifact store can therefore make every later ``score`` or ``serve`` run their
code. At logging time cx-models records one SHA-256 over every file of the logged
model (:func:`model_digest`) in the tracking database — as a tag of the registered
version and of the run, which live apart from the artifacts — and every load by
cx-models recomputes it on the downloaded copy before MLflow runs anything
(:func:`check_model_files`).

This module only hashes files; :mod:`cx_models.training.registry` fetches the
model and the recorded digest.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path

from cx_models.errors import CXDataError

__all__ = [
    "DIGEST_TAG",
    "MANIFEST_NAME",
    "check_model_files",
    "file_manifest",
    "model_digest",
]

#: The tag (on the registered version and on the run) holding the model's digest.
DIGEST_TAG = "cx.model_sha256"
#: The run artifact listing each file's digest (to name the files that changed).
MANIFEST_NAME = "cx_model_manifest.json"
#: Written by the registry when a version is created, not part of what was logged.
_SKIPPED = {"registered_model_meta"}


def file_manifest(model_dir) -> dict[str, str]:
    """Return ``{relative path: sha256}`` for every file of a model directory.

    Examples
    --------
    >>> import tempfile
    >>> d = Path(tempfile.mkdtemp())
    >>> _ = (d / "MLmodel").write_text("flavors: {}")
    >>> list(file_manifest(d))
    ['MLmodel']
    """
    root = Path(model_dir)
    manifest = {}
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        relative = path.relative_to(root).as_posix()
        if relative in _SKIPPED or "__pycache__" in path.parts:
            continue
        manifest[relative] = hashlib.sha256(path.read_bytes()).hexdigest()
    return manifest


def model_digest(manifest: dict[str, str]) -> str:
    """Return one SHA-256 over a manifest (paths and their digests, in order).

    Examples
    --------
    >>> model_digest({"a": "0" * 64}) == model_digest({"a": "0" * 64})
    True
    >>> model_digest({"a": "0" * 64}) == model_digest({"a": "1" * 64})
    False
    """
    text = json.dumps(sorted(manifest.items()), separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def check_model_files(
    model_dir,
    expected: str | None,
    *,
    model_uri: str,
    logged: Callable[[], dict | None] | None = None,
) -> str | None:
    """Refuse a model whose files differ from those logged; return a warning or ``None``.

    Parameters
    ----------
    model_dir : path
        The downloaded model (what MLflow is about to run).
    expected : str or None
        The digest recorded at logging time; ``None`` for a model logged before
        cx-models recorded one (then a warning is returned instead).
    model_uri : str
        For messages.
    logged : callable, optional
        Returns the manifest logged with the run, to name the files that changed;
        called only on a mismatch (fetching it costs a download).

    Raises
    ------
    CXDataError
        When the files' digest is not the recorded one.
    """
    manifest = file_manifest(model_dir)
    if expected is None:
        return (
            f"model {model_uri} has no recorded digest (logged before cx-models recorded one): "
            "its files are loaded unverified"
        )
    if model_digest(manifest) == expected:
        return None
    changed = []
    logged = logged() if logged is not None else None
    if logged:
        names = sorted(set(logged) | set(manifest))
        changed = [n for n in names if logged.get(n) != manifest.get(n)]
    listing = f" (changed: {', '.join(changed[:5])}{', ...' if len(changed) > 5 else ''})"
    raise CXDataError(
        f"model {model_uri}: its files differ from those logged{listing if changed else ''}; "
        "loading it would run code that was not logged with it. Log the model again, or "
        "give --trust-modified-model (CX_TRUST_MODIFIED_MODEL=1 for the server) if you "
        "changed them on purpose"
    )
