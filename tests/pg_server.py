"""The PostgreSQL server of the tests marked ``db``: its URI, and the skip without one.

``CX_TEST_POSTGRES_URI`` names it (``.ci/postgres`` starts a throw-away one); without it
the tests skip with one line saying how to run them, except under ``CI=true``, where
:func:`require_server` fails them.
"""

import os

import pytest

POSTGRES = os.environ.get("CX_TEST_POSTGRES_URI")
needs_postgres = pytest.mark.skipif(
    not POSTGRES and os.environ.get("CI") != "true",
    reason="set CX_TEST_POSTGRES_URI=postgresql://user@127.0.0.1:5432/db to run the "
    "PostgreSQL tests",
)


def require_server() -> str:
    """Return the server's URI; fail (not skip) when CI=true and there is none."""
    if not POSTGRES:
        pytest.fail("CI=true but CX_TEST_POSTGRES_URI is not set: no PostgreSQL server")
    return POSTGRES
