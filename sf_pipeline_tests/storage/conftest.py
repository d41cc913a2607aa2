from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from sf_pipeline.secrets import Cipher
from sf_pipeline.storage.database import Database
from sf_pipeline_tests.dbs import migrated_database

TEST_KEY = "x1hqBG2mPmNn1zxuHzW5rkGt3pZ5nyhoa8bvk5Oqa0A="


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    """A freshly migrated application database, on SQLite and on PostgreSQL."""
    with migrated_database(request.param, tmp_path) as database:
        yield database


@pytest.fixture
def sqlite_database(tmp_path: Path) -> Iterator[Database]:
    """For checks whose outcome cannot depend on the backend (input validation before any write)."""
    with migrated_database("sqlite", tmp_path) as database:
        yield database


@pytest.fixture
def cipher() -> Cipher:
    return Cipher(TEST_KEY, source="the test key")
